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


def failure_problems(exc: LoratrainError) -> list[Problem]:
    """The error's problems, or the error itself as one problem."""
    return list(exc.problems) or [Problem(str(exc))]


def print_failure_json(exc: LoratrainError) -> None:
    """What every verb's --json prints when it fails: `{"ok": false, "problems": [...]}` on stdout."""
    print_json({"ok": False, "problems": [p.as_dict() for p in failure_problems(exc)]})


def duration(seconds: float | None) -> str:
    """A run's length as people read it: 42s, 3m05s, 1h02m03s; "-" when unknown."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def short_path(path: Any) -> str:
    """A path relative to the current folder when it lies below it."""
    import os

    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


def card_for(gpu: str, vram: float | None) -> tuple[str | None, float | None]:
    """(description, GiB) of the card fit judges against: --vram, a --gpu name from fit's table, or "auto" (the
    smallest GPU nvidia-smi lists here); (None, None) when "auto" finds none."""
    from loratrain.fit import cards

    if vram is not None:
        return f"{vram:g} GiB (--vram)", vram
    if gpu.lower() != "auto":
        return cards.gpu_by_name(gpu)
    from loratrain.launch import gpus

    found = gpus.memory_totals()
    if not found:
        return None, None
    smallest = min(found, key=lambda pair: pair[1])
    return f"GPU {smallest[0].index}: {smallest[0].name}", smallest[1]


def verdict_line(view: Any) -> str | None:
    """The one line `check` and `plan` print: fit's predicted peak for this effective view against the detected
    GPU (None if fit cannot say)."""
    from loratrain.fit import cards, model

    try:
        est = model.estimate(view)
    except LoratrainError:
        return None
    card, vram_gib = card_for("auto", None)
    if vram_gib is None:
        return (
            f"fit: predicted peak {est.peak / cards.GIB:.1f} GiB per GPU (no GPU detected; `loratrain fit` for details)"
        )
    return f"fit: {cards.verdict(est.peak, vram_gib)} ({card}; `loratrain fit` for details)"
