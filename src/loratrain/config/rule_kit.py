"""What a rule module needs: the Rule signature, error() / warning(), and a per-module list to register in.

A rule reads a validated TrainConfig and its effective view (loratrain/effective.py: what sd-scripts will
really do, derived once) and yields Problems. Rule modules are listed in config/registry.py.
"""

from __future__ import annotations

from typing import Callable, Iterator

from loratrain.effective import Effective
from loratrain.errors import Problem
from loratrain.schema.root import TrainConfig

Rule = Callable[[TrainConfig, Effective], Iterator[Problem]]


def collect() -> tuple[list[Rule], Callable[[Rule], Rule]]:
    """A module's rule list and the `@rule` decorator that appends to it, in source order."""
    found: list[Rule] = []

    def rule(fn: Rule) -> Rule:
        found.append(fn)
        return fn

    return found, rule


def error(key: str, message: str, fix: str = "") -> Problem:
    return Problem(message=message, key=key, fix=fix, severity="error")


def warning(key: str, message: str, fix: str = "") -> Problem:
    return Problem(message=message, key=key, fix=fix, severity="warning")
