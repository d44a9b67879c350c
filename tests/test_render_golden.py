"""Every shipped config renders to exactly its golden argv (regenerate: LORATRAIN_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import json
import os
import sys

import pytest
from helpers import CONFIGS, ROOT, run_cli

from loratrain.config.loader import load_config
from loratrain.render import build_command

GOLDEN = ROOT / "tests" / "golden"
SHIPPED = sorted(CONFIGS.glob("*.toml"))


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_renders_its_golden_argv(config):
    cmd = build_command(load_config(config).config, "/opt/sd-scripts")
    golden = GOLDEN / f"{config.stem}.argv.json"
    if os.environ.get("LORATRAIN_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(cmd.argv, indent=1) + "\n", encoding="utf-8")
    assert cmd.argv == json.loads(golden.read_text(encoding="utf-8"))


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_passes_strict_check_and_opens_with_a_comment(config):
    result = run_cli("check", "--no-preflight", "--strict", str(config))
    assert result.returncode == 0, result.stderr
    first = config.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 20


def test_every_shipped_config_has_a_golden_file():
    assert {p.stem for p in SHIPPED} == {p.name.split(".")[0] for p in GOLDEN.glob("*.argv.json")}
    assert len(SHIPPED) >= 4


def test_dry_run_json_prints_argv_and_warnings(write_config):
    from helpers import BASE

    path = write_config(BASE + '[logging]\nlog_prefix = "x"\n')
    result = run_cli("run", str(path), "--dry-run", "--json", "--sd-scripts", "/sd")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["argv"][:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "/sd/sdxl_train_network.py" in data["argv"]
    assert any("log_prefix" in w for w in data["warnings"])


def test_dry_run_without_sd_scripts_shows_a_visible_placeholder(write_config, monkeypatch):
    from helpers import BASE

    path = write_config(BASE)
    result = run_cli("run", str(path), "--dry-run", env={"LORATRAIN_SD_SCRIPTS": ""})
    assert result.returncode == 0
    assert "'<sd-scripts>/sdxl_train_network.py'" in result.stdout


def test_python_key_launches_through_the_training_interpreter(write_config):
    from helpers import BASE

    path = write_config('python = "/venv/bin/python"\n' + BASE)
    result = run_cli("run", str(path), "--dry-run", "--json")
    argv = json.loads(result.stdout)["argv"]
    assert argv[:3] == ["/venv/bin/python", "-m", "accelerate.commands.launch"]
