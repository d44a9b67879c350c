"""The flag table of sd-scripts' `sdxl_train_network.py`, read from its real argparse parser.

`data/sd_scripts_args.json` lists every argparse action (dest, type, default, choices, nargs) at the sd-scripts
commit named in `SOURCE_COMMIT`. It types the `[extra]` pass-through table and lets us parse command lines by
sd-scripts' own rules without importing sd-scripts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

SCRIPT_NAME = "sdxl_train_network.py"
# The file name sd-scripts gives the final model when output_name is unset (train_util.DEFAULT_LAST_OUTPUT_NAME).
LAST_OUTPUT_NAME = "last"


@dataclass(frozen=True)
class FlagSpec:
    dest: str
    option_strings: tuple[str, ...]
    kind: str  # "store_true" | "value" | "list"
    type: str  # "bool" | "str" | "int" | "float" | "int_or_float" | "Path"
    default: Any
    choices: tuple[Any, ...] | None
    defined_in: str  # sd-scripts function that adds it, e.g. "add_training_arguments"

    @property
    def option(self) -> str:
        """The full option name, as loratrain always renders it."""
        longs = [o for o in self.option_strings if o.startswith("--")]
        return longs[0] if longs else self.option_strings[0]


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    text = resources.files("loratrain").joinpath("data/sd_scripts_args.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def all_flags() -> dict[str, FlagSpec]:
    """Every sd-scripts argument by dest, in parser order (argparse's own -h is left out)."""
    flags: dict[str, FlagSpec] = {}
    for action in _table()["arguments"]:
        if action["action"] == "help":
            continue
        if action["action"] == "store_true":
            kind, typ = "store_true", "bool"
        elif action["nargs"] in ("*", "+"):
            kind, typ = "list", action["type"]
        else:
            kind, typ = "value", action["type"]
        choices = action["choices"]
        flags[action["dest"]] = FlagSpec(
            dest=action["dest"],
            option_strings=tuple(action["option_strings"]),
            kind=kind,
            type=typ,
            default=action["default"],
            choices=tuple(c for c in choices if c is not None) if choices else None,
            defined_in=action["defined_in"]["function"],
        )
    return flags


def source_commit() -> str:
    """The sd-scripts commit the flag table was read from (the one place that names it)."""
    return _table()["commit"]


def default(dest: str) -> Any:
    """sd-scripts' argparse default of a flag: what applies when loratrain leaves the flag out."""
    return all_flags()[dest].default


def choices(dest: str) -> tuple[Any, ...]:
    """The values sd-scripts' parser accepts for a flag with a choice list."""
    spec = all_flags()[dest]
    assert spec.choices is not None, f"{dest} has no choice list"
    return spec.choices


def get(dest: str) -> FlagSpec | None:
    return all_flags().get(dest)


def parse_int_or_float(text: str) -> int | float:
    """sd-scripts' `int_or_float`, the one parser every caller shares: "100" -> 100, "0.05" -> 0.05,
    "50%" -> 0.5, "0" -> 0.0; a value of 1 or more must be written as an integer ("1.0" is rejected)."""
    text = text.strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    number = float(text)
    if number >= 1:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r}: a float here is a ratio below 1; write whole steps as an integer") from None
    return number
