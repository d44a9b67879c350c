"""Launch orchestration with a recording runner: what reaches the training process, what is recorded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import FIXTURE_SD_SCRIPTS, loratrain, make_project

from loratrain.config.loader import load_config
from loratrain.errors import ConfigError
from loratrain.launch import prepare as launch
from loratrain.launch.gpus import Gpu, GpuScan
from loratrain.launch.runner import RunResult

ONE_GPU = GpuScan([Gpu(0, "NVIDIA A100-SXM4-40GB", 8.0)], "test")


class RecordingRunner:
    """Stands in for runner.run: keeps what it was asked to start and writes the output a run would."""

    def __init__(self, exit_code: int = 0):
        self.calls: list[dict] = []
        self.exit_code = exit_code

    def __call__(
        self, argv, env, *, log_path=None, sink=None, cwd=None, grace_s=30.0, on_signal=None, watch=None, started=None
    ):
        self.calls.append({"argv": list(argv), "env": dict(env), "cwd": cwd, "log_path": log_path})
        Path(cwd, "out", "mychar.safetensors").write_bytes(b"lora")
        Path(log_path).write_text("steps: 100%|##########| 5/5 [00:01<00:00, 1.00it/s, avr_loss=0.1]\n")
        return RunResult(exit_code=self.exit_code, child_code=self.exit_code, received_signal=None, duration_s=1.5)


@pytest.fixture
def project(tmp_path, monkeypatch, without_environment_probe) -> Path:
    # wandb is not installed here, which the doctor probe rightly reports (tests/run/test_doctor.py); these
    # tests are about what reaches the launch, so preflight runs without that one check.
    root = tmp_path / "p"
    config = make_project(root, extra='[logging]\nlog_with = "wandb"\nwandb_api_key = "s3cret-value"\n')
    monkeypatch.chdir(root)
    return config


def test_secrets_reach_the_training_process_only_through_its_environment(project):
    loaded = load_config(project.name)
    opts = launch.LaunchOptions()
    prepared = launch.prepare(loaded, opts, gpu_scanner=lambda: ONE_GPU)
    runner = RecordingRunner()
    result, record = launch.run_prepared(prepared, opts, runner=runner)
    (call,) = runner.calls
    assert call["env"]["WANDB_API_KEY"] == "s3cret-value" and call["env"]["PYTHONUNBUFFERED"] == "1"
    assert not any("s3cret-value" in a for a in call["argv"])
    assert call["argv"][:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--log_with=wandb" in call["argv"]
    for path in record.folder.iterdir():
        assert "s3cret-value" not in path.read_text(), path.name
    assert result.exit_code == 0


def test_the_record_is_complete_before_and_after_the_launch(project):
    import json

    loaded = load_config(project.name)
    opts = launch.LaunchOptions()
    prepared = launch.prepare(loaded, opts, gpu_scanner=lambda: ONE_GPU)
    result, record = launch.run_prepared(prepared, opts, runner=RecordingRunner(exit_code=1))
    data = json.loads((record.folder / "record.json").read_text())
    assert data["status"] == "failed" and data["exit_code"] == 1 and data["duration_s"] == 1.5
    assert {"path": "mychar.safetensors", "bytes": 4} in data["files"]
    assert data["gpus"] == [{"index": 0, "name": "NVIDIA A100-SXM4-40GB", "compute_cap": 8.0, "bf16": True}]
    assert data["env"] == ["PYTHONUNBUFFERED", "WANDB_API_KEY"]


def test_num_processes_auto_becomes_the_visible_gpu_count(project):
    loaded = load_config(project.name, ['accelerate.num_processes="auto"'])
    two = GpuScan([Gpu(0, "A100", 8.0), Gpu(1, "A100", 8.0)], "test")
    prepared = launch.prepare(loaded, launch.LaunchOptions(), gpu_scanner=lambda: two)
    assert "--num_processes=2" in prepared.command.argv and "--multi_gpu" in prepared.command.argv


def test_num_processes_auto_without_any_countable_gpu_is_a_config_error(project):
    loaded = load_config(project.name, ['accelerate.num_processes="auto"'])
    with pytest.raises(ConfigError, match="needs GPUs to count"):
        launch.prepare(loaded, launch.LaunchOptions(), gpu_scanner=lambda: GpuScan(None, "none", "no nvidia-smi"))


def test_dry_run_prints_the_argv_the_real_launch_uses_with_a_home_relative_sd_scripts(tmp_path, monkeypatch):
    import json
    import shutil

    home = tmp_path / "home"
    shutil.copytree(FIXTURE_SD_SCRIPTS, home / "sd-scripts")
    root = tmp_path / "p"
    config = make_project(root)
    config.write_text(config.read_text().replace(f'sd_scripts = "{FIXTURE_SD_SCRIPTS}"', 'sd_scripts = "~/sd-scripts"'))
    shown = loratrain(root, "run", config.name, "--dry-run", "--json", HOME=str(home))
    assert shown.returncode == 0, shown.stderr
    dry_argv = json.loads(shown.stdout)["argv"]

    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(root)
    opts = launch.LaunchOptions()
    prepared = launch.prepare(load_config(config.name), opts, gpu_scanner=lambda: ONE_GPU)
    runner = RecordingRunner()
    launch.run_prepared(prepared, opts, runner=runner)
    (call,) = runner.calls
    assert dry_argv == call["argv"]
    assert str((home / "sd-scripts" / "sdxl_train_network.py").resolve()) in dry_argv


def test_dry_run_shows_the_expanded_script_path_even_when_the_folder_does_not_exist_yet(tmp_path):
    root = tmp_path / "p"
    config = make_project(root)
    config.write_text(config.read_text().replace(f'sd_scripts = "{FIXTURE_SD_SCRIPTS}"', 'sd_scripts = "~/not-yet"'))
    home = tmp_path / "home"
    home.mkdir()
    shown = loratrain(root, "run", config.name, "--dry-run", HOME=str(home))
    assert shown.returncode == 0, shown.stderr
    assert f"{home.resolve()}/not-yet/sdxl_train_network.py" in shown.stdout and "~" not in shown.stdout
