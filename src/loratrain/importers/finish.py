"""Validate an import with loratrain's own config rules, and produce the final TOML text."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from loratrain.errors import ConfigError, Problem
from loratrain.importers import Imported
from loratrain.importers.output import config_dict, toml_text


@dataclass
class Finished:
    doc: dict
    text: str
    warnings: list[Problem] = field(default_factory=list)


def validate(doc: dict, source: str) -> tuple[list[Problem], list[Problem]]:
    """Validate with the core's rules. Returns (warnings, missing); raises ConfigError on real errors.

    `missing` are the core's errors about keys the source never set (no base model, no output folder):
    the imported config is a starting point, so those are written as comments to fill in, not refused.
    An error about a value the source did set refuses the import.
    """
    from loratrain.config.loader import validate as core_validate

    try:
        loaded = core_validate(doc, source)
    except ConfigError as exc:
        errors = [p for p in exc.problems if p.severity != "warning"]
        missing = [p for p in errors if p.key and not _present(doc, p.key)]
        real = [p for p in errors if p not in missing]
        if real:
            # only the source's real errors: the unset paths are "still to fill in", as in a successful import
            raise ConfigError(real) from None
        warnings = [p for p in exc.problems if p.severity == "warning"]
        return warnings, [dataclasses.replace(p, severity="warning") for p in missing]
    return list(loaded.warnings), []


def _present(doc: dict, dotted: str) -> bool:
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def finish(imported: Imported) -> Finished:
    doc = config_dict(imported)
    warnings, missing = validate(doc, imported.source)
    text = toml_text(doc, imported, warnings, missing)
    return Finished(doc=doc, text=text, warnings=missing + warnings)
