"""Bring an existing training setup into a loratrain config.

Each importer reads one kind of source and returns an `Imported`: the sd-scripts arguments it stands for (by
dest, typed as sd-scripts' parser would type them), the accelerate launch options, the root keys, notes, and
the keys it could not carry. `output.py` turns that into loratrain TOML. Importers never print and never write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from loratrain.errors import Problem


@dataclass
class Imported:
    source: str  # what to name in the header comment (a path, "stdin")
    kind: str  # "shell command", "sd-scripts config file", "kohya_ss GUI config"
    script_args: dict[str, Any] = field(default_factory=dict)
    accelerate: dict[str, Any] = field(default_factory=dict)
    root: dict[str, Any] = field(default_factory=dict)
    notes: list[Problem] = field(default_factory=list)  # severity "warning"
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (key as written, why it was not imported)


KINDS = ("command", "toml", "kohya-json")

# the refusal for a file in some other tool's format
FOREIGN = "not an sd-scripts config / kohya_ss JSON / command"


def detect_kind(name: str, text: str) -> str:
    """Guess the source kind from the file name, then from the text."""
    lower = name.lower()
    if lower.endswith(".json") or text.lstrip().startswith("{"):
        return "kohya-json"
    if lower.endswith(".toml"):
        return "toml"
    return "command"


def import_text(
    text: str, source: str, kind: str | None = None, base_dir: str = ".", env: Mapping[str, str] | None = None
) -> Imported:
    """Dispatch to the importer for `kind` (guessed when None). Raises ConfigError with every problem.
    `env`: values for the shell variables of a command (None: every variable is reported, none replaced)."""
    kind = kind or detect_kind(source, text)
    if kind == "command":
        from loratrain.importers.command import from_command

        return from_command(text, source, base_dir=base_dir, env=env)
    if kind == "toml":
        from loratrain.importers.sd_toml import from_sd_toml

        return from_sd_toml(text, source)
    from loratrain.importers.kohya_gui import from_kohya_json

    return from_kohya_json(text, source)
