"""The `loratrain` command line: builds the typer app from the verb modules and owns exit codes.

Library modules raise `LoratrainError`; this is the one place that turns them into messages and exit
codes. Verb modules live in `loratrain.commands` and each exposes `register(app)`; they import heavy
packages (torch, accelerate, lycoris) only inside the command body, so `--help` stays fast.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

import typer

from loratrain.errors import EXIT_INTERRUPTED, LoratrainError

# One entry per verb module under loratrain/commands/. Order is the order in `--help`.
COMMAND_MODULES = [
    "run",
    "runs",
    "logs",
    "attach",
    "stop",
    "diagnose",
    "check",
    "doctor",
    "explain",
    "plan",
    "audit",
    "fit",
    "prompts",
    "setup",
    "slurm",
    "shrink",
    "report",
    "sweep",
    "compare",
    "import_",
    "init",
    "schema",
]

app = typer.Typer(
    name="loratrain",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    help="Validate, explain and launch SDXL LoRA/LyCORIS training runs (kohya-ss sd-scripts) from one TOML file.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _guard(callback: Callable[..., Any]) -> Callable[..., Any]:
    """The one boundary between verbs and exit codes: a LoratrainError becomes its message and exit code,
    Ctrl-C (KeyboardInterrupt) becomes exit 130 without a traceback, a returned int becomes the exit code. With
    --json the failure is also printed on stdout as `{"ok": false, "problems": [...]}` (Problem.as_dict)."""

    @functools.wraps(callback)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            code = callback(*args, **kwargs)
        except LoratrainError as exc:
            from loratrain.commands._output import print_error, print_failure_json

            print_error(exc)
            if kwargs.get("as_json") or kwargs.get("json_out"):  # --json: one JSON object on stdout, failure too
                print_failure_json(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if isinstance(code, int) and code:
            raise typer.Exit(code)
        return code

    return guarded


def _register() -> None:
    if app.registered_commands:
        return
    for name in COMMAND_MODULES:
        importlib.import_module(f"loratrain.commands.{name}").register(app)
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = _guard(info.callback)


def _print_version(value: bool) -> None:
    # An eager option's own callback runs while the command line is parsed, before click asks for a command
    # (checking the value in the group callback came too late: "Missing command", exit 2).
    if value:
        from loratrain import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print loratrain's version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    pass


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Usage errors exit 2 (typer's own handling); a LoratrainError prints its
    problems without a traceback and exits with its code; otherwise the verb's return code is the exit code."""
    _register()
    app(args=argv, prog_name="loratrain")
