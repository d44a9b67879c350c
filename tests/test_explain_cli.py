"""`loratrain explain` through the real entry point."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli


@pytest.mark.parametrize("name", ["network_alpha", "--network_alpha", "network.network_alpha"])
def test_explain_accepts_every_spelling_of_a_flag(name):
    result = run_cli("explain", name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("network.network_alpha")
    assert "rendered:  --network_alpha=4" in result.stdout
    assert "guide:" in result.stdout


def test_explain_flag_option_and_network_args_key():
    result = run_cli("explain", "--flag", "network_args.algo")
    assert result.returncode == 0
    assert "allowed:   lora, locon, loha, lokr" in result.stdout
    assert "--network_args algo=locon" in result.stdout


def test_explain_accelerate_option():
    result = run_cli("explain", "accelerate.num_processes")
    assert result.returncode == 0 and "accelerate launch --num_processes=2" in result.stdout


def test_explain_pass_through_flag_shows_type_and_sd_scripts_default():
    result = run_cli("explain", "--json", "min_snr_gamma")
    entry = json.loads(result.stdout)[0]
    assert entry["key"] == "extra.min_snr_gamma" and entry["type"].startswith("number")


def test_explain_unknown_name_suggests_and_exits_2():
    result = run_cli("explain", "netwrk_alpha")
    assert result.returncode == 2
    assert "did you mean" in result.stderr and "network_alpha" in result.stderr


def test_explain_list_covers_every_table():
    result = run_cli("explain", "--list")
    assert result.returncode == 0
    for section in ("[model]", "[network.network_args]", "[accelerate]", "[extra]"):
        assert section in result.stdout


def test_every_pass_through_flag_has_an_example_that_validates_and_renders():
    from helpers import BASE, tomllib

    from loratrain.config.loader import validate
    from loratrain.errors import ConfigError
    from loratrain.explain import build_index

    entries = [e for e in build_index().values() if e.table == "extra"]
    assert len(entries) > 100
    for entry in entries:
        assert entry.toml.startswith("[extra]\n") and entry.rendered.startswith("--"), entry.key
        data = tomllib.loads(BASE + entry.toml)
        try:
            validate(data, "t.toml")
        except ConfigError as exc:
            # Cross-key rules may object to a flag on its own (v2 on SDXL); the value itself must be well typed.
            typed = [
                p
                for p in exc.problems
                if p.key == entry.key and ("wrong type" in p.message or "not allowed" in p.message)
            ]
            assert typed == [], entry.key
