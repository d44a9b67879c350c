"""`loratrain init`: list the shipped configs, or write one (with its comments) to start from."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from loratrain.errors import Problem, UsageError


def register(app: typer.Typer) -> None:
    @app.command(
        "init",
        help="Start a config from a shipped one: --list shows them; NAME -o FILE writes one with its comments.",
    )
    def init_command(
        name: Optional[str] = typer.Argument(None, help="Shipped config to write (see --list)."),
        output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write it here instead of stdout."),
        force: bool = typer.Option(False, "--force", help="Overwrite the -o file if it exists."),
        list_: bool = typer.Option(False, "--list", help="List the shipped configs, one line each."),
    ) -> int:
        from loratrain.config import shipped as presets

        if list_:
            items = presets.available()
            width = max((len(p.name) for p in items), default=0)
            for preset in items:
                typer.echo(f"{preset.name.ljust(width)}  {preset.summary}")
            return 0
        if name is None:
            raise UsageError(
                [Problem("name a shipped config, or pass --list to see them", fix="loratrain init --list")]
            )
        preset = presets.get(name)  # ConfigError with a suggestion when unknown
        if output is None:
            sys.stdout.write(preset.text)
            return 0
        from loratrain.atomic import write_text
        from loratrain.commands.import_ import check_output_target

        check_output_target(output, force, "-")
        write_text(output, preset.text)
        typer.echo(f"wrote {output} (from {preset.name})", err=True)
        return 0
