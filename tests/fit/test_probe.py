"""`fit --probe` plumbing: the probe config, the launch, the nvidia-smi polling, the report.

No GPU here, so the training script is the launch tests' stand-in for sdxl_train_network.py (same parser shape,
a real progress bar, a real output file) and nvidia-smi is a script that answers loratrain's queries in the real
tool's format, with memory.used rising while "training" runs. What a real GPU would measure is not tested.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from helpers import FIXTURE_SD_SCRIPTS, SDXL_KEYS, cli_env, make_dataset, run_cli, write_safetensors

from loratrain.launch.probe import probe_data, run_probe

UUID = "GPU-00000000-1111-2222-3333-444444444444"


def fake_smi(bin_dir: Path) -> None:
    """nvidia-smi for one H200 whose memory.used climbs by 1,000 MiB per query to 9,000 MiB."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    count = bin_dir / "count"
    count.write_text("0")
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  -L) echo 'GPU 0: NVIDIA H200 (UUID: {UUID})'; exit 0;;\n"
        "  --query-gpu=name,compute_cap) echo 'NVIDIA H200, 9.0'; exit 0;;\n"
        f"  --query-gpu=uuid,name,memory.total) echo '{UUID}, NVIDIA H200, 143771'; exit 0;;\n"
        "  --query-gpu=uuid,memory.used)\n"
        f"    n=$(cat '{count}'); n=$((n + 1)); echo $n > '{count}'\n"
        "    used=$((n * 1000)); [ $used -gt 9000 ] && used=9000\n"
        f"    echo '{UUID}, '$used; exit 0;;\n"
        "esac\nexit 9\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)


def project(root: Path, extra: str = "") -> Path:
    root.mkdir(parents=True)
    write_safetensors(root / "sdxl.safetensors", SDXL_KEYS)
    make_dataset(root / "train", {"10_cat": 2})
    for folder in ("openai_clip-vit-large-patch14", "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"):
        (root / "tok" / folder).mkdir(parents=True)
    fake_smi(root / "bin")
    config = root / "run.toml"
    config.write_text(
        f"""
sd_scripts = "{FIXTURE_SD_SCRIPTS}"
python = "{sys.executable}"
[model]
pretrained_model_name_or_path = "{root / "sdxl.safetensors"}"
tokenizer_cache_dir = "{root / "tok"}"
[dataset]
train_data_dir = "{root / "train"}"
resolution = "1024,1024"
caption_extension = ".txt"
[network]
network_module = "networks.lora"
network_dim = 4
[training]
max_train_steps = 500
train_batch_size = 2
gradient_checkpointing = true
[saving]
output_dir = "{root / "out"}"
output_name = "cat"
save_every_n_steps = 100
[logging]
logging_dir = "{root / "logs"}"
[precision]
mixed_precision = "bf16"
{extra}""",
        encoding="utf-8",
    )
    return config


def test_probe_data_trains_a_few_steps_into_a_temporary_folder_without_saves_logs_or_samples():
    data = {
        "training": {"max_train_steps": 400, "max_train_epochs": 10, "train_batch_size": 8},
        "saving": {"output_dir": "/out", "output_name": "x", "save_every_n_epochs": 5, "save_state": True},
        "logging": {"logging_dir": "/logs", "log_with": "wandb"},
        "sampling": {"sample_prompts": "p.txt", "sample_every_n_steps": 100, "sample_at_first": True},
    }
    probe = probe_data(data, 3, "/tmp/probe", samples=False)
    assert probe["training"] == {"max_train_steps": 3, "train_batch_size": 8}
    assert probe["saving"] == {"output_dir": "/tmp/probe", "output_name": "x"}
    assert probe["logging"] == {} and "sampling" not in probe
    with_samples = probe_data(data, 3, "/tmp/probe", samples=True)
    assert with_samples["sampling"] == {"sample_prompts": "p.txt", "sample_every_n_steps": 3}
    assert data["training"]["max_train_steps"] == 400  # the input is left alone


def test_probe_runs_the_config_and_reports_the_peak_the_gpu_showed(tmp_path):
    config = project(tmp_path / "p")
    env = {**cli_env(), "PATH": f"{tmp_path / 'p' / 'bin'}{os.pathsep}{os.environ['PATH']}", "FIXTURE_STEP_S": "0.3"}
    result = run_probe(str(config), [], steps=3, samples=False, sd_scripts=None, env=env, interval_s=0.05)
    assert result.exit_code == 0, result.log_tail
    assert "for 3 steps" in result.log_tail  # max_train_steps was rewritten
    assert result.before_gib == pytest.approx(1000 / 1024)
    assert result.peak_gib == pytest.approx(9000 / 1024)
    assert result.samples >= 9
    assert not (tmp_path / "p" / "out").exists() and not (tmp_path / "p" / "logs").exists()


def test_probe_through_the_cli_prints_predicted_and_measured(tmp_path):
    config = project(tmp_path / "p")
    env = {**cli_env(), "PATH": f"{tmp_path / 'p' / 'bin'}{os.pathsep}{os.environ['PATH']}", "FIXTURE_STEP_S": "0.5"}
    done = run_cli("fit", str(config), "--probe", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["probe"]["exit_code"] == 0 and data["probe"]["measured_peak_gib"] > 1
    assert data["gpu"]["name"] == "GPU 0: NVIDIA H200"


def test_a_failed_probe_says_why_in_its_json(tmp_path):
    config = project(tmp_path / "p")
    env = {**cli_env(), "PATH": f"{tmp_path / 'p' / 'bin'}{os.pathsep}{os.environ['PATH']}", "FIXTURE_EXIT": "1"}
    done = run_cli("fit", str(config), "--probe", "--json", env=env)
    assert done.returncode == 1
    probe = json.loads(done.stdout)["probe"]
    assert probe["exit_code"] == 1 and "fixture: saved" in probe["log_tail"]


def test_probe_without_nvidia_smi_is_a_clear_error(tmp_path):
    config = project(tmp_path / "p")
    with pytest.raises(Exception) as err:
        run_probe(str(config), [], 3, False, None, env={"PATH": str(tmp_path / "none")})
    assert "needs nvidia-smi" in str(err.value)
