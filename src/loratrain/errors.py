"""Errors raised by library code. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


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
    severity: str = "error"  # "error" or "warning"

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
