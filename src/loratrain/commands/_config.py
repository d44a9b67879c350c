"""Options shared by the verbs that read a config, and the loading they do."""

from __future__ import annotations

from typing import Optional

import typer

SET_HELP = "Override a value: table.key=value (TOML literal; bare words are strings). Repeatable."
STRICT_HELP = "Treat warnings as errors."
SD_SCRIPTS_HELP = "sd-scripts folder (else the config's sd_scripts, else LORATRAIN_SD_SCRIPTS)."

SetOption = typer.Option(None, "--set", help=SET_HELP, metavar="TABLE.KEY=VALUE")


def load(path: str, overrides: Optional[list[str]], strict: bool = False, quiet: bool = False):
    """Load and validate; print warnings (unless `quiet`); with `strict`, warnings fail like errors."""
    from loratrain.commands._output import print_problems
    from loratrain.config.loader import load_config

    loaded = load_config(path, overrides or [])
    if loaded.warnings:
        fail_if_strict(loaded.warnings, strict)
        if not quiet:
            print_problems(loaded.warnings)
    return loaded


def fail_if_strict(warnings: list, strict: bool) -> None:
    """`--strict`, in one place: with it, any warning fails the verb as an error (exit 2)."""
    from loratrain.errors import ConfigError

    if strict and warnings:
        raise ConfigError([w.as_error() for w in warnings])


def launcher(cfg) -> list[str]:
    """How the command starts, identical for --dry-run and a real launch: accelerate's launch module run by the
    training interpreter (the config's `python`, else the interpreter running loratrain)."""
    import sys

    from loratrain.render import launcher_for

    return launcher_for(cfg.python or sys.executable)


def effective(cfg):
    """The effective view of a validated config (loratrain/effective.py), built once per verb: the GPUs are
    counted (nvidia-smi, no torch) only where num_processes is "auto"."""
    from loratrain.effective import Effective
    from loratrain.launch.gpus import visible_count

    return Effective.from_config(cfg, visible_count(cfg.accelerate.model_dump()))
