"""The `loratrain` command line: builds the typer app from the verb modules and owns exit codes.

Library modules raise `LoratrainError`; this is the one place that turns them into messages and exit
codes. Verb modules live in `loratrain.commands` and each exposes `register(app)`; they import heavy
packages (torch, accelerate, lycoris) only inside the command body, so `--help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer

from loratrain.errors import EXIT_CONFIG, EXIT_INTERRUPTED, LoratrainError

# One entry per verb module under loratrain/commands/. Order is the order in `--help`.
COMMAND_MODULES = [
    "run",
    "check",
    "explain",
    "plan",
    "prompts",
    "setup",
    "slurm",
    "shrink",
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


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"loratrain.commands.{name}").register(app)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print loratrain's version and exit.", is_eager=True),
) -> None:
    if version:
        from loratrain import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Never shows a traceback for a `LoratrainError`."""
    _register()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="loratrain", standalone_mode=False)
    except click.exceptions.Abort:
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code if exc.exit_code else EXIT_CONFIG
    except LoratrainError as exc:
        from loratrain.commands._output import print_error

        print_error(exc)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else 0)
