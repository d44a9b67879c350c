"""`loratrain import SOURCE`: a shell command, an sd-scripts config TOML or a kohya_ss GUI JSON -> loratrain TOML."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Optional

import typer

from loratrain.errors import ConfigError, Problem, UsageError


def _read_source(source: str) -> tuple[str, str, str]:
    """(text, name for messages, folder relative paths in it are relative to)."""
    if source == "-":
        return sys.stdin.read(), "<stdin>", os.getcwd()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), source, str(path.parent)
    except FileNotFoundError:
        raise ConfigError(
            [Problem("file not found", file=source, fix="give a file path, or - to read stdin")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem("not a UTF-8 text file", file=source)]) from None
    except OSError as exc:
        raise ConfigError([Problem(f"cannot read it: {exc.strerror}", file=source)]) from None


def check_output_target(output: Optional[Path], force: bool, source: str) -> None:
    if output is None:
        return
    if source != "-" and output.resolve() == Path(source).resolve():
        raise UsageError([Problem("the output file is the source file", file=str(output), fix="choose another -o")])
    if output.exists() and not force:
        raise UsageError(
            [Problem("already exists; nothing was written", file=str(output), fix="pass --force to overwrite it")]
        )
    if output.exists() and output.is_dir():
        raise UsageError([Problem("is a folder", file=str(output), fix="give a file name")])


def _variables(pairs: list[str], from_environment: bool) -> Mapping[str, str] | None:
    """The values for a command's shell variables: the current environment (when asked), then --env on top."""
    if not pairs and not from_environment:
        return None
    values = dict(os.environ) if from_environment else {}
    bad = [p for p in pairs if "=" not in p or not p.partition("=")[0]]
    if bad:
        raise UsageError(
            [
                Problem(f"--env {p!r} is not NAME=VALUE", fix="write it as --env MODEL=/models/sdxl.safetensors")
                for p in bad
            ]
        )
    values.update(p.partition("=")[::2] for p in pairs)
    return values


def register(app: typer.Typer) -> None:
    @app.command(
        "import",
        help=(
            "Turn an existing setup into a loratrain config: a shell command (accelerate launch ... "
            "sdxl_train_network.py --flags) in a file or on stdin (-), an sd-scripts --config_file TOML, or a "
            "kohya_ss GUI JSON. The command is read as text, never run. Prints the config, or writes it with -o."
        ),
    )
    def import_command(
        source: str = typer.Argument(..., help="File to import, or - to read a command line from stdin."),
        output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the config here instead of stdout."),
        force: bool = typer.Option(False, "--force", help="Overwrite the -o file if it exists."),
        kind: Optional[str] = typer.Option(
            None,
            "--from",
            help="What SOURCE is: command, toml (sd-scripts --config_file) or kohya-json. Guessed by default.",
        ),
        env_values: Optional[list[str]] = typer.Option(
            None,
            "--env",
            metavar="NAME=VALUE",
            help="A value for a shell variable in the command ($NAME, ${NAME}, %NAME%, $env:NAME); repeatable.",
        ),
        expand_env: bool = typer.Option(
            False,
            "--expand-env",
            help="Take the command's shell variables from the current environment.",
        ),
    ) -> int:
        from loratrain.commands._output import print_problems
        from loratrain.importers import KINDS, import_text
        from loratrain.importers.finish import finish

        if kind is not None and kind not in KINDS:
            raise UsageError([Problem(f"--from {kind!r} is not one of: {', '.join(KINDS)}")])
        check_output_target(output, force, source)
        text, name, base_dir = _read_source(source)
        env = _variables(env_values or [], expand_env)
        imported = import_text(text, name, kind, base_dir=base_dir, env=env)
        result = finish(imported)  # validates; raises ConfigError and nothing is written
        print_problems(imported.notes + result.warnings)
        if output is None:
            sys.stdout.write(result.text)
        else:
            from loratrain.atomic import write_text

            write_text(output, result.text)
            typer.echo(f"wrote {output}", err=True)
        return 0
