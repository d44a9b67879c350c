"""The shipped configs: `src/loratrain/presets/*.toml`, their one home (package data, no copy or link).

Each file's opening comment says what it is for; its first line is the summary `loratrain init --list` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from loratrain.errors import ConfigError, Problem, did_you_mean


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    text: str


def _summary(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            summary = stripped.lstrip("#").strip()
            if summary and not summary.startswith(":schema"):
                return summary
            continue
        break
    return "(no description)"


def available() -> list[Preset]:
    found = []
    folder = resources.files("loratrain").joinpath("presets")
    if not folder.is_dir():
        return []
    for entry in folder.iterdir():
        if entry.name.endswith(".toml") and entry.is_file():
            text = entry.read_text(encoding="utf-8")
            found.append(Preset(entry.name[: -len(".toml")], _summary(text), text))
    return sorted(found, key=lambda p: p.name)


def get(name: str) -> Preset:
    items = {p.name: p for p in available()}
    key = name[: -len(".toml")] if name.endswith(".toml") else name
    if key in items:
        return items[key]
    fix = did_you_mean(key, items, quote=False) or "see `loratrain init --list`"
    known = ", ".join(items) or "none are installed"
    raise ConfigError([Problem(f"no shipped config named {name!r} (shipped: {known})", fix=fix)])
