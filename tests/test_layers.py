"""The package is layered by pipeline: no module imports a higher layer (function-local imports included).

README's "Layout" section lists the same order; a new package goes into this list at its level.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

# Lowest first. Modules directly under loratrain/ are named by file; packages by folder.
LAYERS = [
    {"loratrain", "errors", "atomic", "safetensors_header", "toml_positions", "untrusted"},  # leaf helpers
    {"sdscripts"},  # sd-scripts' flag table, flag docs, install
    {"schema"},  # one model per config table
    {"render", "effective"},  # config -> argv (pure); what sd-scripts will do with it
    {"plan"},  # dataset scan and sd-scripts' bucket/step arithmetic
    {"fit"},  # fit's memory model, read from the effective view
    {"config"},  # loading, positions, cross-key rules, shipped configs
    {"launch", "importers", "explain", "shrink", "report", "audit", "sweep"},  # the pipelines
    {"commands"},  # one module per verb (the only code that prints)
    {"cli", "__main__"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
PACKAGE = ROOT / "src" / "loratrain"


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "loratrain":
        return None
    return "loratrain" if len(parts) == 1 else parts[1]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_every_module_belongs_to_a_layer():
    units = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert units - set(LEVEL) == set(), "add the new module or package to LAYERS (and README's Layout)"


def test_no_module_imports_a_higher_layer():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        here = _unit(".".join(p for p in rel.parts if p != "__init__"))
        for module in _imports(path):
            there = _unit(module)
            if there is not None and there != here and LEVEL[there] > LEVEL[here]:
                upward.append(f"{path.relative_to(ROOT)} imports {module}")
    assert upward == []
