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
_RESULT_MARK = "LORATRAIN-RESULT "


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


# Builds the script's own parser in the training interpreter and parses the rendered arguments.
# parser.error is replaced so that a rejection comes back as data instead of exit status 2.
_VERIFY = r"""
import importlib.util, json, os, sys
folder, script, argv = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, folder)
os.chdir(folder)
spec = importlib.util.spec_from_file_location("_loratrain_verify_target", script)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
parser = module.setup_parser()
class Rejected(Exception):
    pass
def error(message):
    raise Rejected(message)
parser.error = error
try:
    namespace, unknown = parser.parse_known_args(argv)
    result = {"unknown": unknown, "error": None}
except Rejected as exc:
    result = {"unknown": [], "error": str(exc)}
print("LORATRAIN-RESULT " + json.dumps(result))
"""


def verify_parser(
    python: str, folder: Path, script_argv: Sequence[str], env: Mapping[str, str] | None = None
) -> list[Problem]:
    """Parse `script_argv` with the installed script's `setup_parser()`; one Problem per rejection."""
    script = folder / SCRIPT_NAME
    try:
        done = subprocess.run(
            [python, "-c", _VERIFY, str(folder), str(script), json.dumps(list(script_argv))],
            capture_output=True,
            text=True,
            env=dict(env) if env else None,
            timeout=600,
        )
    except OSError as exc:
        raise RuntimeFailure(f"could not run the training interpreter {python}: {exc.strerror or exc}") from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RESULT_MARK)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeFailure(f"could not build the argument parser of {script} with {python}:\n" + "\n".join(tail))
    result = json.loads(lines[-1][len(_RESULT_MARK) :])
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

# Probe scripts (this one and launch/doctor.py's) find a dotted module on disk with this one function.
FINDABLE_SOURCE = r"""
def findable(name):
    # Locate a dotted module on disk without importing its packages (lycoris/__init__ imports torch).
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    places = list(spec.submodule_search_locations or [])
    for part in parts[1:]:
        found = None
        for place in places:
            candidate = os.path.join(place, part)
            if os.path.isdir(candidate):
                found = [candidate]
                break
            try:
                names = os.listdir(place)
            except OSError:
                continue
            if part + ".py" in names or any(n.startswith(part + ".") and n.endswith((".so", ".pyd")) for n in names):
                found = []
                break
        if found is None:
            return False
        places = found
    return True
"""

_PROBE = r"""
import importlib.metadata as md, importlib.util, json, os, sys
request = json.loads(sys.argv[1])
if request.get("path"):
    sys.path.insert(0, request["path"])
versions = {"python": sys.version.split()[0]}
for dist in request["dists"]:
    try:
        versions[dist] = md.version(dist)
    except md.PackageNotFoundError:
        versions[dist] = None
{findable}modules = {name: findable(name) for name in request["modules"]}
print("LORATRAIN-RESULT " + json.dumps({"versions": versions, "modules": modules, "executable": sys.executable}))
""".replace("{findable}", FINDABLE_SOURCE)

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
    request = {"dists": list(TRAINING_DISTS), "modules": list(modules), "path": str(folder) if folder else None}
    try:
        done = subprocess.run(
            [python, "-c", _PROBE, json.dumps(request)],
            capture_output=True,
            text=True,
            env=dict(env) if env else None,
            timeout=120,
        )
    except OSError as exc:
        raise ConfigError(
            [
                Problem(
                    f"the training interpreter {python} cannot be run: {exc.strerror or exc}",
                    key="python",
                    value=python,
                    fix="set `python` in the config to the interpreter of your sd-scripts environment",
                )
            ]
        ) from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RESULT_MARK)]
    if done.returncode != 0 or not lines:
        raise ConfigError(
            [
                Problem(
                    f"the training interpreter {python} failed to start: {done.stderr.strip()[-300:]}",
                    key="python",
                    value=python,
                    fix="set `python` in the config to a working Python 3 interpreter",
                )
            ]
        )
    data = json.loads(lines[-1][len(_RESULT_MARK) :])
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
