"""The same CLI on every verb: --json prints one JSON object on stdout in failure too, a problem is placed as
`file:line: table.key` everywhere, run --json needs --dry-run, check lists every problem without sd-scripts,
slurm prints the config's warnings, --strict is accepted by the config-taking verbs."""

from __future__ import annotations

import json

import pytest
from helpers import BASE, FIXTURE_SD_SCRIPTS, run_cli

PROBLEM_KEYS = {"file", "line", "key", "severity", "message", "fix"}
BAD = BASE.replace("network_dim = 8", "network_dim = -3")  # line 9


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "--json", "--vram", "24"],
        ["plan", "--json"],
        ["check", "--json", "--no-preflight"],
        ["run", "--dry-run", "--json"],
        ["doctor", "--json"],
    ],
    ids=lambda a: a[0],
)
def test_json_failure_is_one_object_on_stdout(write_config, argv):
    path = write_config(BAD)
    result = run_cli(argv[0], str(path), *argv[1:])
    assert result.returncode == 2, result.stderr
    data = json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout
    assert data["ok"] is False
    (problem,) = [p for p in data["problems"] if p["key"] == "network.network_dim"]
    assert set(problem) >= PROBLEM_KEYS
    assert (problem["file"], problem["line"], problem["severity"]) == (str(path), 9, "error")
    assert "Traceback" not in result.stderr


def test_plan_places_a_problem_as_check_does(write_config, tmp_path):
    path = write_config(BASE.replace('"/data"', f'"{tmp_path / "missing"}"'))
    plan = run_cli("plan", str(path))
    data = json.loads(run_cli("plan", str(path), "--json").stdout)
    (problem,) = [p for p in data["problems"] if "does not exist" in p["message"]]
    assert (problem["key"], problem["line"]) == ("dataset.train_data_dir", 5)
    assert f"{path}:5: dataset.train_data_dir: " in plan.stderr


def test_run_json_without_dry_run_or_detach_is_an_error(write_config):
    result = run_cli("run", str(write_config(BASE)), "--json")
    assert result.returncode == 2
    assert "--json goes with --dry-run (the command) or --detach (the run id)" in result.stderr
    assert json.loads(result.stdout)["ok"] is False


def test_check_lists_every_problem_when_sd_scripts_is_unknown(write_config):
    result = run_cli("check", str(write_config(BASE)), env={"LORATRAIN_SD_SCRIPTS": ""})
    assert result.returncode == 2
    assert "the sd-scripts folder is unknown" in result.stderr
    assert "model.pretrained_model_name_or_path: model /models/sdxl.safetensors does not exist" in result.stderr
    assert "dataset.train_data_dir: /data does not exist" in result.stderr


def test_slurm_prints_the_configs_warnings_and_strict_fails_on_them(write_config):
    path = write_config(BASE + "[training]\nmax_train_epochs = 2\nmax_train_steps = 10\n")
    args = ["slurm", str(path), "--sd-scripts", str(FIXTURE_SD_SCRIPTS)]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "training.max_train_steps: is ignored" in result.stderr
    assert run_cli(*args, "--strict").returncode == 2


@pytest.mark.parametrize("verb", ["fit", "plan", "check", "slurm"])
def test_strict_is_accepted_by_the_config_verbs(write_config, verb):
    path = write_config(BASE + "[training]\nmax_train_epochs = 2\nmax_train_steps = 10\n")
    extra = {"fit": ["--vram", "80"], "check": ["--no-preflight"], "slurm": ["--sd-scripts", str(FIXTURE_SD_SCRIPTS)]}
    result = run_cli(verb, str(path), "--strict", *extra.get(verb, []))
    assert result.returncode == 2 and "max_train_steps" in result.stderr
