"""Optimizer arguments from public reports: every harmful set is caught before launch, every good recipe passes
and renders so that sd-scripts' ast.literal_eval reads back exactly the table's values.

The cases and their sources (issue and pull-request URLs) are in tests/data/optimizer_args/.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from helpers import BASE, tomllib

from loratrain.config.loader import validate
from loratrain.errors import ConfigError
from loratrain.render import build_command
from loratrain.sdscripts.optimizers import items_to_table, python_value

DATA = Path(__file__).parent / "data" / "optimizer_args"
HARMFUL = json.loads((DATA / "harmful.json").read_text(encoding="utf-8"))["cases"]
GOOD = json.loads((DATA / "good.json").read_text(encoding="utf-8"))["cases"]


def _config(tables: dict) -> dict:
    data = tomllib.loads(BASE)
    for table, values in tables.items():
        target = data.setdefault(table, {})
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    return data


def _problems(data: dict):
    try:
        return list(validate(data, "run.toml").warnings)
    except ConfigError as exc:
        return list(exc.problems)


def test_the_report_sets_are_big_enough_and_name_their_sources():
    assert len(HARMFUL) >= 30 and len(GOOD) >= 20
    for case in HARMFUL + GOOD:
        assert case["source"].startswith("https://github.com/"), case["id"]
    assert len({c["id"] for c in HARMFUL + GOOD}) == len(HARMFUL) + len(GOOD)


@pytest.mark.parametrize("case", HARMFUL, ids=[c["id"] for c in HARMFUL])
def test_a_harmful_argument_set_from_a_public_report_is_caught_before_launch(case):
    data = _config(case["config"])
    if case["config"]["network"]["network_args"] if "network" in case["config"] else False:
        data["network"]["network_module"] = "networks.lora"
    found = _problems(data)
    want = case["expect"]
    hits = [p for p in found if p.key == want["key"] and p.severity == want["severity"]]
    assert hits, f"expected a {want['severity']} on {want['key']}; got " + "; ".join(p.render() for p in found)
    if want["severity"] == "error":
        with pytest.raises(ConfigError):
            validate(data, "run.toml")
    for p in hits:
        assert p.fix or "ignored" in p.message or "drops" in p.message, p.render()  # says what to do


def _tables(case: dict) -> tuple[dict, dict]:
    """The recipe as a typed config, and the Python values sd-scripts should receive per args key."""
    optimizer = dict(case["optimizer"])
    expected = {}
    for key in ("optimizer_args", "lr_scheduler_args"):
        if key in case:
            table = items_to_table(case[key])
            assert table is not None, f"{case['id']}: {key} does not convert to a table"
            optimizer[key] = table
            expected[key] = {k: python_value(v) for k, v in table.items()}
    tables = {"optimizer": optimizer}
    if "extra" in case:
        tables["extra"] = case["extra"]
    return _config(tables), expected


@pytest.mark.parametrize("case", GOOD, ids=[c["id"] for c in GOOD])
def test_a_known_good_recipe_passes_and_reads_back_equal(case):
    data, expected = _tables(case)
    loaded = validate(data, "run.toml")  # raises on any error
    opt_warnings = [w for w in loaded.warnings if w.key.startswith(("optimizer.", "extra.lr_", "extra.fused"))]
    if case.get("unchecked"):
        assert [w.key for w in opt_warnings] == ["optimizer.optimizer_type"]  # "passed unchecked"
    else:
        assert not opt_warnings, [w.render() for w in opt_warnings]
    argv = build_command(loaded.config).argv
    for key, values in expected.items():
        start = argv.index(f"--{key}") + 1
        items = []
        for token in argv[start:]:
            if token.startswith("--"):
                break
            items.append(token)
        read_back = {}
        for item in items:
            name, text = item.split("=")  # exactly what get_optimizer / get_scheduler_fix do
            read_back[name] = ast.literal_eval(text)
        assert read_back == values
        assert all(type(read_back[k]) is type(v) for k, v in values.items())


@pytest.mark.parametrize("case", GOOD, ids=[c["id"] for c in GOOD])
def test_a_known_good_recipe_also_passes_in_the_list_form(case):
    optimizer = dict(case["optimizer"])
    for key in ("optimizer_args", "lr_scheduler_args"):
        if key in case:
            optimizer[key] = list(case[key])
    tables = {"optimizer": optimizer, **({"extra": case["extra"]} if "extra" in case else {})}
    validate(_config(tables), "run.toml")
