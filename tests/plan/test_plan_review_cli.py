"""`loratrain plan` on dataset-config values sd-scripts cannot use, fine-tuning (in_json) configs, and
`num_processes = "auto"` counted the way `run` counts it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from helpers import make_images, plan_config, run_cli


def _with_dataset_config(tmp_path: Path, dataset_toml: str) -> tuple[Path, Path]:
    ds = tmp_path / "dc.toml"
    ds.write_text(dataset_toml, encoding="utf-8")
    config = plan_config(tmp_path)
    config.write_text(config.read_text().replace("[dataset]\n", f'[dataset]\ndataset_config = "{ds}"\n'))
    return config, ds


# Each bad value sits on line 3 of the dataset config.
BAD_VALUES = [
    ("bucket_reso_steps = 0", "bucket_reso_steps"),
    ("bucket_reso_steps = -32", "bucket_reso_steps"),
    ("min_bucket_reso = 0", "min_bucket_reso"),
    ("max_bucket_reso = -1024", "max_bucket_reso"),
    ("resolution = 0", "resolution"),
    ("resolution = [0, 0]", "resolution"),
    ("resolution = -1024", "resolution"),
    ("resolution = [1024, true]", "resolution"),
    ("batch_size = -1", "batch_size"),
    ("batch_size = true", "batch_size"),
    ("bucket_no_upscale = true\nbucket_reso_steps = 0", "bucket_reso_steps"),
]


@pytest.mark.parametrize(("bad", "key"), BAD_VALUES, ids=[b.replace(" ", "") for b, _ in BAD_VALUES])
def test_dataset_config_value_sd_scripts_cannot_use_exits_2_naming_file_line_and_key(tmp_path, bad, key):
    make_images(tmp_path / "a", [(1024, 1024)])
    resolution = "" if bad.startswith("resolution") else "resolution = 1024\n"
    config, ds = _with_dataset_config(
        tmp_path,
        f"[[datasets]]\nenable_bucket = true\n{bad}\n{resolution}"
        f'  [[datasets.subsets]]\n  image_dir = "{tmp_path / "a"}"\n',
    )
    result = run_cli("plan", str(config))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line = 4 if bad.startswith("bucket_no_upscale") else 3
    assert f"{ds}:{line}: datasets[0].{key}:" in result.stderr
    assert "train_batch_size" not in result.stderr and "-1024x-1024" not in result.stdout


def test_general_bucket_reso_steps_zero_is_named_under_general(tmp_path):
    make_images(tmp_path / "a", [(1024, 1024)])
    config, ds = _with_dataset_config(
        tmp_path,
        f"[general]\nbucket_reso_steps = 0\nenable_bucket = true\n[[datasets]]\nresolution = 1024\n"
        f'  [[datasets.subsets]]\n  image_dir = "{tmp_path / "a"}"\n',
    )
    result = run_cli("plan", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{ds}:2: general.bucket_reso_steps: expected a positive int, got 0" in result.stderr


def test_fine_tuning_in_json_config_passes_plan_with_a_not_scanned_warning(tmp_path):
    make_images(tmp_path / "train", [(1024, 1024)])
    meta = tmp_path / "meta.json"
    meta.write_text("{}", encoding="utf-8")
    result = run_cli("plan", str(plan_config(tmp_path)), "--json", "--set", f"extra.in_json={meta}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == "in_json"
    assert "not scanned" in result.stderr and "no training images" not in result.stderr


def test_dataset_config_made_only_of_fine_tuning_subsets_passes_plan(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text("{}", encoding="utf-8")
    config, _ds = _with_dataset_config(
        tmp_path, f'[[datasets]]\nresolution = 1024\n  [[datasets.subsets]]\n  metadata_file = "{meta}"\n'
    )
    result = run_cli("plan", str(config))
    assert result.returncode == 0, result.stderr
    assert "not scanned" in result.stderr and "no training images" not in result.stderr
    assert "nothing to train" not in result.stdout and "not computed" in result.stdout


def _fake_nvidia_smi(bin_dir: Path, count: int) -> dict[str, str]:
    bin_dir.mkdir(parents=True, exist_ok=True)
    listing = "\n".join(f"GPU {i}: NVIDIA A100-SXM4-80GB (UUID: GPU-{i:08d}-aaaa)" for i in range(count))
    script = bin_dir / "nvidia-smi"
    script.write_text(f'#!/bin/sh\nif [ "$1" = "-L" ]; then\ncat <<\'EOF\'\n{listing}\nEOF\nexit 0\nfi\nexit 9\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.parametrize(
    ("accelerate", "visible", "expected"),
    [
        ("", "1,3", 2),  # CUDA_VISIBLE_DEVICES hides two of the four GPUs
        ('gpu_ids = "0,1,2"\n', None, 3),  # one process per listed GPU
        (
            'num_machines = 2\nmain_process_ip = "10.0.0.1"\nmain_process_port = 29500\n',
            "0",
            2,
        ),  # one per visible GPU on each machine
    ],
)
def test_auto_num_processes_counts_gpus_like_run(tmp_path, accelerate, visible, expected):
    make_images(tmp_path / "train" / "10_foo", [(1024, 1024)] * 4)
    config = plan_config(tmp_path, f'[accelerate]\nnum_processes = "auto"\n{accelerate}')
    env = _fake_nvidia_smi(tmp_path / "bin", 4)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    else:
        env["CUDA_VISIBLE_DEVICES"] = "0,1,2,3"
    result = run_cli("plan", str(config), "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["num_processes"] == expected


def test_auto_num_processes_without_a_gpu_count_plans_one_process_with_a_warning(tmp_path):
    make_images(tmp_path / "train" / "10_foo", [(1024, 1024)])
    config = plan_config(tmp_path, '[accelerate]\nnum_processes = "auto"\n')
    result = run_cli("plan", str(config), "--json", env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["num_processes"] == 1
    assert 'num_processes = "auto" but no GPU could be counted' in result.stderr


def test_no_upscale_dataset_with_max_bucket_reso_below_resolution_exits_2_without_saying_ignored(tmp_path):
    make_images(tmp_path / "a", [(1024, 1024)])
    config, _ds = _with_dataset_config(
        tmp_path,
        f"[[datasets]]\nresolution = 1024\nenable_bucket = true\nbucket_no_upscale = true\n"
        f"bucket_reso_steps = 32\nmax_bucket_reso = 896\n"
        f'  [[datasets.subsets]]\n  image_dir = "{tmp_path / "a"}"\n',
    )
    result = run_cli("plan", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "max_bucket_reso 896 is smaller than the resolution's longer side 1024" in result.stderr
    assert "reso are ignored" not in result.stderr and "still requires the resolution" in result.stderr


def test_bucket_problems_from_a_dataset_config_name_its_file_line_and_key(tmp_path):
    make_images(tmp_path / "a", [(1024, 1024)])
    config, ds = _with_dataset_config(
        tmp_path,
        f"[general]\nbucket_reso_steps = 48\n[[datasets]]\nresolution = 1024\nenable_bucket = true\n"
        f'max_bucket_reso = 896\n  [[datasets.subsets]]\n  image_dir = "{tmp_path / "a"}"\n',
    )
    result = run_cli("plan", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{ds}:6: datasets[0].max_bucket_reso: max_bucket_reso 912 is smaller" in result.stderr
    assert f"{ds}:2: general.bucket_reso_steps: bucket_reso_steps 48 is not a multiple of 32" in result.stderr
