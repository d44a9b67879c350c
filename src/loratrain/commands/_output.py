"""Shared printing for the verb modules: problems as one line each, warnings, JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from loratrain.errors import LoratrainError, Problem


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_problems(problems: list[Problem]) -> None:
    """One line per problem on stderr: `file:line: key: what was wrong (what to do)`."""
    console = _stderr_console()
    for p in problems:
        label = "warning" if p.severity == "warning" else "error"
        style = "yellow" if p.severity == "warning" else "red"
        console.print(f"[{style}]{label}[/{style}]: ", end="")
        console.print(p.render(), markup=False)


def print_error(exc: LoratrainError) -> None:
    if exc.problems:
        print_problems(exc.problems)
        errors = sum(1 for p in exc.problems if p.severity != "warning")
        if errors > 1:
            _stderr_console().print(f"{errors} problems found; nothing was run.", markup=False)
    else:
        _stderr_console().print("[red]error[/red]: ", end="")
        _stderr_console().print(str(exc), markup=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
