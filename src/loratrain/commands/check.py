"""`loratrain check`: validate a config and report every problem."""

from __future__ import annotations

from typing import Optional

import typer

from loratrain.commands._config import STRICT_HELP, SetOption, load


def register(app: typer.Typer) -> None:
    @app.command("check", help="Validate a config: every error and warning at once. Exit 0 when it can run, 2 when not.")
    def check(
        config: str = typer.Argument(..., help="The run's TOML file."),
        set_: Optional[list[str]] = SetOption,
        strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print {ok, warnings} as JSON."),
    ) -> int:
        from loratrain.commands._output import print_json

        loaded = load(config, set_, strict)
        if as_json:
            print_json({"ok": True, "warnings": [w.render() for w in loaded.warnings]})
        else:
            note = f" ({len(loaded.warnings)} warning(s))" if loaded.warnings else ""
            typer.echo(f"{config}: OK{note}")
        return 0
