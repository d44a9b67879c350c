"""Errors raised by library code. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Iterable, Literal

# The exit codes of every verb; cli.py is the one place that turns errors and Ctrl-C into them.
EXIT_OK = 0
EXIT_RUNTIME = 1  # something outside the user's input failed, or the training run failed
EXIT_CONFIG = 2  # bad input: config, command line, a file the user named
EXIT_ENVIRONMENT = 2  # the environment lacks what the verb needs (an extra, a package of the training interpreter)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) with the user's input.

    `key` is a dotted path such as `network.network_dim`; `line` is 1-based when known.
    """

    message: str
    key: str = ""
    file: str = ""
    line: int | None = None
    fix: str = ""
    value: object = None
    severity: Severity = "error"

    def as_error(self) -> Problem:
        """The same problem as an error (what `--strict` makes of a warning)."""
        return dataclasses.replace(self, severity="error")

    def as_dict(self) -> dict[str, object]:
        """The one JSON shape of a problem on every verb's --json: file, line, key, severity, message, fix."""
        return {
            "file": self.file,
            "line": self.line,
            "key": self.key,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }

    def where(self) -> str:
        place = self.file
        if place and self.line is not None:
            place += f":{self.line}"
        return place

    def render(self) -> str:
        head = ": ".join(part for part in (self.where(), self.key) if part)
        text = f"{head}: {self.message}" if head else self.message
        if self.fix:
            text += f" ({self.fix})"
        return text


def close_matches(word: str, candidates: Iterable[str], n: int = 1) -> list[str]:
    """The candidates closest to a misspelt word (difflib's ratio of at least 0.6), best first."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)


def did_you_mean(word: str, candidates: Iterable[str], *, n: int = 1, quote: bool = True) -> str:
    """The one did-you-mean hint: "did you mean 'x'?" (or "'x', 'y'" for n > 1), or "" when nothing is close."""
    close = close_matches(word, candidates, n)
    if not close:
        return ""
    return "did you mean " + ", ".join(repr(c) if quote else c for c in close) + "?"


class LoratrainError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str = "", problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems: list[Problem] = list(problems or [])


class ConfigError(LoratrainError):
    """Bad input: the config, a command line, a file the user named. Exit 2."""

    exit_code = EXIT_CONFIG

    def __init__(self, problems: list[Problem] | str, message: str = ""):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        text = message or "\n".join(p.render() for p in problems)
        super().__init__(text, problems)


class UsageError(ConfigError):
    """A bad command-line argument of loratrain itself (also exit 2)."""


class RuntimeFailure(LoratrainError):
    """Something outside the user's input went wrong (a tool missing, a process failed). Exit 1."""

    exit_code = EXIT_RUNTIME


class MissingExtra(LoratrainError):
    """An optional dependency of a verb is not installed: one line naming the extra that brings it. Exit 2, as
    every other environment problem (doctor's findings) exits."""

    exit_code = EXIT_ENVIRONMENT

    def __init__(self, verb: str, extra: str, missing: list[str]):
        self.verb, self.extra, self.missing = verb, extra, list(missing)
        which, it = ("is", "it") if len(missing) == 1 else ("are", "them")
        super().__init__(
            f"loratrain {verb} needs {', '.join(missing)}, which {which} not installed; "
            f"install {it} with: pip install 'loratrain[{extra}]'"
        )


# What each verb with an extra imports (import name -> distribution), read before the first heavy import. The
# distributions are those of pyproject.toml's extras of the same name (tests/test_plain_install.py checks).
EXTRA_MODULES: dict[str, dict[str, str]] = {
    "shrink": {"torch": "torch", "safetensors": "safetensors"},
    "report": {"numpy": "numpy", "tensorboard": "tensorboard", "PIL": "pillow", "matplotlib": "matplotlib"},
    "audit": {"PIL": "pillow", "numpy": "numpy"},
}


def require_extra(verb: str, extra: str, without: Iterable[str] = ()) -> None:
    """Raise MissingExtra when a module of `extra` (EXTRA_MODULES, less `without`) cannot be imported; the modules
    are looked up, not imported."""
    import importlib.util

    missing = []
    for module, dist in EXTRA_MODULES[extra].items():
        if module in without:
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(dist)
    if missing:
        raise MissingExtra(verb, extra, missing)
