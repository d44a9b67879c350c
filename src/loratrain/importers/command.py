"""Import a shell command line: `accelerate launch [options] .../sdxl_train_network.py --flag ...`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

from loratrain.errors import ConfigError, Problem
from loratrain.importers import Imported
from loratrain.importers.accelerate_argv import CARRIED, parse_accelerate
from loratrain.importers.sd_argv import parse_script_argv
from loratrain.importers.shell_command import basename, dirname, parse_command
from loratrain.render import SCRIPT_PLACEHOLDER
from loratrain.sdscripts import flags

SCRIPT = flags.SCRIPT_NAME


def from_command(text: str, source: str, base_dir: str = ".", env: Mapping[str, str] | None = None) -> Imported:
    cmd = parse_command(text, source, env)
    imported = Imported(source=source, kind="shell command", notes=list(cmd.notes))
    errors: list[Problem] = []

    script_name = basename(cmd.script)
    if script_name != SCRIPT:
        errors.append(
            Problem(
                f"the command runs {script_name}; loratrain trains SDXL LoRA/LyCORIS with {SCRIPT}",
                file=source,
                fix=f"import a command that runs {SCRIPT}",
            )
        )
    folder = dirname(cmd.script)
    if folder and folder not in (".", SCRIPT_PLACEHOLDER):  # the placeholder of `run --dry-run`
        imported.root["sd_scripts"] = folder
    else:
        imported.notes.append(
            Problem(
                "the command runs the script from the current folder, so the sd-scripts folder is not known",
                key="sd_scripts",
                file=source,
                fix='add sd_scripts = "/path/to/sd-scripts" to the config (or pass it when running)',
                severity="warning",
            )
        )
    if cmd.interpreter and not _is_own_interpreter(cmd.interpreter):
        # loratrain launches with `<python> -m accelerate...`; its own interpreter is the default already.
        imported.root["python"] = cmd.interpreter
    if cmd.launcher != "accelerate":
        imported.notes.append(
            Problem(
                "the command runs the script without accelerate; loratrain launches it with `accelerate launch`",
                file=source,
                severity="warning",
            )
        )
    for name in cmd.env:
        imported.dropped.append((name, "an environment setting in front of the command"))
        imported.notes.append(
            Problem(
                f"the environment setting {name}=... is not part of a loratrain config",
                file=source,
                fix=f"set {name} in your shell before `loratrain run`",
                severity="warning",
            )
        )

    accelerate, accel_errors = parse_accelerate(cmd.accelerate_argv, source)
    errors.extend(accel_errors)
    imported.accelerate = accelerate

    try:
        parsed = parse_script_argv(cmd.script_argv, source)
    except ConfigError as exc:
        errors.extend(_accelerate_hint(p) for p in exc.problems)
        parsed = None
    if parsed is not None:
        imported.notes.extend(parsed.notes)
        args = dict(parsed.values)
        if args.pop("output_config", None):
            errors.append(
                Problem(
                    "--output_config only writes a config file and exits; it is not a training run",
                    file=source,
                    fix="remove --output_config",
                )
            )
        config_file = args.pop("config_file", None)
        if config_file is not None:
            args = _merge_config_file(config_file, args, source, base_dir, imported, errors)
        imported.script_args = args
    if errors:
        raise ConfigError(errors)
    return imported


def _accelerate_hint(problem: Problem) -> Problem:
    """An accelerate option written after the script is passed to the script, which rejects it: say so."""
    token = problem.value if isinstance(problem.value, str) else ""
    name = token.partition("=")[0].lstrip("-").replace("-", "_")
    if token.startswith("--") and name in CARRIED:
        return dataclasses.replace(
            problem,
            fix=f"{token.partition('=')[0]} is an option of accelerate launch: move it before the script path",
        )
    return problem


def _merge_config_file(
    config_file: str, cli_args: dict, source: str, base_dir: str, imported: Imported, errors: list[Problem]
) -> dict:
    """sd-scripts reads --config_file after the command line and lets the command line win; do the same."""
    from loratrain.importers.sd_toml import args_from_flat, flatten, parse_toml_text

    path = Path(config_file if config_file.endswith(".toml") else config_file + ".toml")
    if not path.is_absolute():
        path = Path(base_dir) / path
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        # sd-scripts reads it with toml.load, which needs UTF-8 as well; say so instead of a traceback.
        errors.append(
            Problem(
                f"the command reads --config_file {config_file} ({path}), which is not a UTF-8 text file",
                key="config_file",
                file=source,
                fix="save that file as UTF-8, or import it separately",
            )
        )
        return cli_args
    except OSError as exc:
        errors.append(
            Problem(
                f"the command reads --config_file {config_file}, which cannot be read here: {exc.strerror or exc}",
                key="config_file",
                file=source,
                fix="run the import from the folder the command was run in, or import that file separately",
            )
        )
        return cli_args
    try:
        data = parse_toml_text(text, str(path))
    except ConfigError as exc:
        errors.extend(exc.problems)
        return cli_args
    from_file = Imported(source=str(path), kind="sd-scripts config file")
    errors.extend(args_from_flat(flatten(data, str(path), imported.notes), str(path), from_file))
    imported.notes.extend(from_file.notes)
    imported.dropped.extend(from_file.dropped)
    imported.notes.append(
        Problem(f"merged the values of --config_file {path} (the command line wins)", file=source, severity="warning")
    )
    merged = dict(from_file.script_args)
    merged.update(cli_args)
    return merged


def _is_own_interpreter(path: str) -> bool:
    """True when the command names the interpreter running loratrain (what a dry-run prints by default)."""
    import os
    import sys

    # Compare paths, not inodes: a venv's python is a link to the base interpreter, which is another environment.
    return os.path.abspath(path) == os.path.abspath(sys.executable)
