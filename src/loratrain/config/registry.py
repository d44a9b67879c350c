"""The one list of rule modules, and the check that runs them all on a validated config.

A new rule goes into one of these modules under `@rule`; a new module of rules goes into MODULES.
"""

from __future__ import annotations

from loratrain.config import optimizer_rules, rules
from loratrain.config.rule_kit import Rule
from loratrain.effective import Effective
from loratrain.errors import Problem
from loratrain.schema.root import TrainConfig

MODULES = (rules, optimizer_rules)


def all_rules() -> list[Rule]:
    return [r for module in MODULES for r in module.RULES]


def check(cfg: TrainConfig) -> list[Problem]:
    """Every rule's problems, in the modules' order; the effective view is built once for all of them (GPUs
    are not counted here: no rule depends on them)."""
    view = Effective.from_config(cfg)
    return [p for r in all_rules() for p in r(cfg, view)]
