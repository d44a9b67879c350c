"""`loratrain schema`: the JSON Schema of the config file, for editors (taplo / Even Better TOML)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command(
        "schema",
        help=(
            "Print the JSON Schema of the loratrain config (with every key's description). Save it and point "
            "your editor at it, e.g. a first line `#:schema ./loratrain.schema.json` for taplo / Even Better TOML."
        ),
    )
    def schema_command() -> int:
        from loratrain.commands._output import print_json
        from loratrain.schema import TrainConfig

        print_json(TrainConfig.model_json_schema())
        return 0
