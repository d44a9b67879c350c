"""Helpers for the import/init/schema tests: run the real CLI, and sd-scripts' parser rebuilt from its flag table."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

GUIDE_COMMAND = Path(__file__).parent / "data" / "guide_command.sh"


def run_cli(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m loratrain ARGS` (the shared helper, with stdin named as these tests call it)."""
    from cli_helpers import run_cli as shared_run_cli

    return shared_run_cli(*args, cwd=cwd, input=stdin)


def flag_table_path() -> Path:
    return Path(__file__).resolve().parents[2] / "src" / "loratrain" / "data" / "sd_scripts_args.json"


def _int_or_float(text: str):
    # sd-scripts' behaviour as documented in the reference notes: "1.0" is rejected
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    number = float(text)
    return int(text) if number >= 1 else number


def reference_parser() -> argparse.ArgumentParser:
    """A plain argparse parser built from sd-scripts' 197 recorded actions: sd-scripts' own parsing rules."""
    data = json.loads(flag_table_path().read_text(encoding="utf-8"))
    types = {"str": str, "int": int, "float": float, "int_or_float": _int_or_float, "Path": str}
    parser = argparse.ArgumentParser(exit_on_error=False, add_help=False)
    for action in data["arguments"]:
        if action["action"] == "help":
            continue
        if action["action"] == "store_true":
            parser.add_argument(*action["option_strings"], action="store_true")
            continue
        kwargs = {"type": types[action["type"]], "default": action["default"]}
        if action["nargs"]:
            kwargs["nargs"] = action["nargs"]
        if action["choices"]:
            kwargs["choices"] = action["choices"]
        parser.add_argument(*action["option_strings"], **kwargs)
    return parser


_PARSER: argparse.ArgumentParser | None = None


def reference_parse(argv: list[str]) -> dict:
    """All dests as sd-scripts' parser sets them for argv; raises (ArgumentError/SystemExit) where it would stop."""
    global _PARSER
    if _PARSER is None:
        _PARSER = reference_parser()
    return vars(_PARSER.parse_args(argv))


def reference_default(dest: str):
    return reference_parser_cached().get_default(dest)


def reference_parser_cached() -> argparse.ArgumentParser:
    global _PARSER
    if _PARSER is None:
        _PARSER = reference_parser()
    return _PARSER


