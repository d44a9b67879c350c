"""The sd-scripts install: where it is, which commit it is, what its own parser accepts, how to set it up.

Everything that needs the training environment (its Python, its packages, sd-scripts' modules) runs
in that interpreter as a subprocess, so loratrain's own process never imports torch or sd-scripts.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from loratrain.errors import ConfigError, Problem, RuntimeFailure
from loratrain.sdscripts import flags
from loratrain.sdscripts.flags import SCRIPT_NAME

ENV_VAR = "LORATRAIN_SD_SCRIPTS"
DEFAULT_REPO = "https://github.com/kohya-ss/sd-scripts.git"
LYCORIS_REQUIREMENT = "lycoris_lora==4.1.3"


def normalize(value: str | os.PathLike) -> Path:
    """A folder as the launch uses it: `~` expanded, absolute (from the current folder), links resolved.

    No existence check: `run --dry-run` shows the command for a folder that may not exist yet.
    """
    try:
        return Path(value).expanduser().resolve()
    except RuntimeError:  # `~name` of a user this machine does not know
        raise ConfigError(
            [
                Problem(
                    f"the sd-scripts folder {value} names an unknown home folder",
                    key="sd_scripts",
                    value=str(value),
                    fix="write the folder's full path",
                )
            ]
        ) from None


def chosen(
    cli_value: str | None, config_value: str | None, env: Mapping[str, str] | None = None
) -> tuple[str, Path] | None:
    """(where it came from, normalized folder) of the first sd-scripts folder given; None when none is.

    `--sd-scripts` wins, then the config's `sd_scripts`, then LORATRAIN_SD_SCRIPTS: the config
    describes this run, the variable is the machine's default for configs that do not say.
    """
    env = os.environ if env is None else env
    for origin, value in (("--sd-scripts", cli_value), ("sd_scripts", config_value), (ENV_VAR, env.get(ENV_VAR))):
        if value:
            return origin, normalize(value)
    return None


def locate(cli_value: str | None, config_value: str | None, env: Mapping[str, str] | None = None) -> Path:
    """The sd-scripts folder to launch from (see `chosen`); ConfigError when it is not an sd-scripts checkout."""
    found = chosen(cli_value, config_value, env)
    if found is None:
        raise ConfigError(
            [
                Problem(
                    "the sd-scripts folder is unknown",
                    key="sd_scripts",
                    fix=f'pass --sd-scripts DIR, set `sd_scripts = "DIR"` in the config or {ENV_VAR}; `loratrain setup DIR` installs one',
                )
            ]
        )
    origin, folder = found
    if not folder.is_dir():
        raise ConfigError(
            [
                Problem(
                    f"sd-scripts folder {folder} (from {origin}) does not exist",
                    key="sd_scripts",
                    value=str(folder),
                    fix=f"install it with `loratrain setup {folder}` or point {origin} at your checkout",
                )
            ]
        )
    if not (folder / SCRIPT_NAME).is_file():
        raise ConfigError(
            [
                Problem(
                    f"{folder} (from {origin}) has no {SCRIPT_NAME}; it is not an sd-scripts checkout",
                    key="sd_scripts",
                    value=str(folder),
                    fix="point it at the folder that holds sdxl_train_network.py",
                )
            ]
        )
    return folder


def read_commit(folder: Path) -> str | None:
    """The checked-out commit of an sd-scripts folder, or None when it is not a git checkout of its own.

    A folder inside some other repository (a copy placed in a project) is not an sd-scripts
    checkout: that repository's HEAD says nothing about sd-scripts.
    """
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != 2:
        return None
    top, commit = lines
    if Path(top).resolve() != Path(folder).resolve() or len(commit) != 40:
        return None
    return commit


def commit_problem(commit: str | None, folder: Path) -> Problem | None:
    """A warning when the installed commit is not the one loratrain's flag table was read from."""
    if commit is None:
        return Problem(
            f"cannot tell which sd-scripts commit {folder} is (not a git checkout); loratrain's flags were checked against {flags.source_commit()[:7]}",
            key="sd_scripts",
            severity="warning",
            fix="`loratrain check --verify-parser` tests the flags against this install",
        )
    if commit != flags.source_commit():
        return Problem(
            f"sd-scripts at {folder} is commit {commit[:7]}, loratrain's flag table is from {flags.source_commit()[:7]}",
            key="sd_scripts",
            severity="warning",
            fix=f"`loratrain check --verify-parser` tests the flags against this install; `git -C {folder} checkout {flags.source_commit()[:7]}` matches the table",
        )
    return None


def script_args_of(argv: Sequence[str]) -> list[str]:
    """The arguments after the training script in a rendered launch command."""
    for i, item in enumerate(argv):
        if Path(item).name == SCRIPT_NAME:
            return list(argv[i + 1 :])
    raise ValueError(f"{SCRIPT_NAME} is not in the command")


def verify_parser(
    python: str, folder: Path, script_argv: Sequence[str], env: Mapping[str, str] | None = None
) -> list[Problem]:
    """Parse `script_argv` with the installed script's `setup_parser()`; one Problem per rejection."""
    from loratrain.sdscripts import probes

    script = folder / SCRIPT_NAME
    try:
        ended = probes.run(python, "parser_probe", [str(folder), str(script), json.dumps(list(script_argv))], env, 600)
    except OSError as exc:
        raise RuntimeFailure(f"could not run the training interpreter {python}: {exc.strerror or exc}") from exc
    except probes.TimedOut:
        raise RuntimeFailure(f"building the argument parser of {script} with {python} took over 600 s") from None
    result = ended.result
    if ended.returncode != 0 or result is None:
        tail = (ended.stderr or ended.stdout).strip().splitlines()[-5:]
        raise RuntimeFailure(f"could not build the argument parser of {script} with {python}:\n" + "\n".join(tail))
    problems = []
    if result["error"]:
        problems.append(
            Problem(
                f"sd-scripts' parser rejects the command: {result['error']}",
                key="sd_scripts",
                fix="fix the value in the config, or install the sd-scripts commit loratrain knows",
            )
        )
    unknown = [item for item in result["unknown"] if item.startswith("-")]
    for item in unknown:
        flag = item.split("=", 1)[0]
        problems.append(
            Problem(
                f"{flag} is not accepted by the installed {SCRIPT_NAME}",
                key=flag.lstrip("-"),
                fix=f"remove it from the config, or install sd-scripts {flags.source_commit()[:7]} (`loratrain setup`)",
            )
        )
    return problems


# ---- what is installed in the training interpreter (no heavy imports) ----

TRAINING_DISTS = ("torch", "accelerate", "lycoris_lora", "transformers", "diffusers")


@dataclass
class Environment:
    """What the training interpreter has, read without importing any of it."""

    python: str
    executable: str = ""
    versions: dict[str, str | None] = field(default_factory=dict)
    modules: dict[str, bool] = field(default_factory=dict)


def probe(
    python: str, folder: Path | None = None, modules: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Environment:
    from loratrain.sdscripts import probes

    request = {"dists": list(TRAINING_DISTS), "modules": list(modules), "path": str(folder) if folder else None}
    try:
        ended = probes.run(python, "metadata_probe", [probes.request_arg(request)], env, 120)
    except OSError as exc:
        raise ConfigError([probes.cannot_run(python, exc)]) from exc
    except probes.TimedOut:
        raise ConfigError(
            [Problem(f"the training interpreter {python} did not answer in 120 s", key="python", value=python)]
        ) from None
    if ended.returncode != 0 or ended.result is None:
        raise ConfigError([probes.failed_to_start(python, ended)])
    data = ended.result
    return Environment(python=python, executable=data["executable"], versions=data["versions"], modules=data["modules"])


# ---- `loratrain setup` ----


@dataclass(frozen=True)
class Step:
    title: str
    argv: list[str]
    cwd: str | None = None


def setup_steps(dest: Path, ref: str, python: str, repo: str = DEFAULT_REPO, install: bool = True) -> list[Step]:
    """The commands that install sd-scripts at `ref` into `dest` and its requirements into `python`."""
    steps = []
    if dest.exists() and not dest.is_dir():
        raise ConfigError(
            [
                Problem(
                    f"{dest} is a file, not a folder",
                    value=str(dest),
                    fix="give the folder sd-scripts should go into (a new one, or an earlier checkout)",
                )
            ]
        )
    try:
        occupied = dest.exists() and any(dest.iterdir())
    except OSError as exc:
        raise ConfigError(
            [
                Problem(
                    f"{dest} cannot be read: {exc.strerror or exc}",
                    value=str(dest),
                    fix="choose a folder you can write to",
                )
            ]
        ) from None
    if (dest / ".git").exists():
        steps.append(
            Step(
                f"fetch {repo} into the existing checkout {dest}",
                ["git", "-C", str(dest), "fetch", "--quiet", repo, "+refs/heads/*:refs/remotes/origin/*", "--tags"],
            )
        )
    elif occupied:
        raise ConfigError(
            [
                Problem(
                    f"{dest} exists, is not empty and is not a git checkout",
                    value=str(dest),
                    fix="choose a new folder for sd-scripts, or empty this one",
                )
            ]
        )
    else:
        steps.append(Step(f"clone {repo} into {dest}", ["git", "clone", "--quiet", "--no-checkout", repo, str(dest)]))
    steps.append(
        Step(
            f"check out {ref}",
            ["git", "-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", ref],
        )
    )
    if install:
        # requirements.txt ends with `-e .`, so pip must run inside the checkout.
        steps.append(
            Step(
                f"install sd-scripts' requirements into {python}",
                [python, "-m", "pip", "install", "-r", "requirements.txt"],
                cwd=str(dest),
            )
        )
        steps.append(
            Step(f"install {LYCORIS_REQUIREMENT} into {python}", [python, "-m", "pip", "install", LYCORIS_REQUIREMENT])
        )
    return steps


def run_steps(steps: Sequence[Step], on_step: Callable[[int, Step], None] | None = None) -> None:
    """Run each step in order with its output on the terminal; the first failure stops everything."""
    for number, step in enumerate(steps, start=1):
        if on_step:
            on_step(number, step)
        try:
            done = subprocess.run(step.argv, cwd=step.cwd)
        except OSError as exc:
            raise RuntimeFailure(
                f"step {number} ({step.title}) could not start {step.argv[0]}: {exc.strerror or exc}"
            ) from exc
        if done.returncode != 0:
            raise RuntimeFailure(f"step {number} ({step.title}) failed with exit status {done.returncode}")


def __getattr__(name: str) -> str:
    # FLAG_TABLE_COMMIT reads the commit recorded in the flag table itself (flags.source_commit()).
    if name == "FLAG_TABLE_COMMIT":
        return flags.source_commit()
    raise AttributeError(name)
