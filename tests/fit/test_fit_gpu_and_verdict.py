"""fit's GPU memory detection (nvidia-smi, CUDA_VISIBLE_DEVICES), the verdict line in `plan`, and the LoKr
factorization against LyCORIS' own.

No GPU here: `nvidia-smi` is a script on PATH that answers the three queries loratrain makes with output in the
real tool's format (-L lines; csv,noheader[,nounits] rows).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from helpers import CONFIGS
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from loratrain import cli
from loratrain.fit.adapter_size import factorization
from loratrain.launch.gpus import memory_totals, parse_memory_totals

PONY = str(CONFIGS / "pony-sdxl-locon.toml")
H200_AND_4090 = [("NVIDIA H200", "9.0", 143771), ("NVIDIA GeForce RTX 4090", "8.9", 24564)]


def fake_nvidia_smi(bin_dir: Path, gpus: list[tuple[str, str, int]]) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    uuid = [f"GPU-{i:08d}-1111-2222-3333-444444444444" for i in range(len(gpus))]
    listing = "\n".join(f"GPU {i}: {name} (UUID: {uuid[i]})" for i, (name, _, _) in enumerate(gpus))
    caps = "\n".join(f"{name}, {cap}" for name, cap, _ in gpus)
    memory = "\n".join(f"{uuid[i]}, {name}, {mib}" for i, (name, _, mib) in enumerate(gpus))
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  -L) cat <<'EOF'\n{listing}\nEOF\n  exit 0;;\n"
        f"  --query-gpu=name,compute_cap) cat <<'EOF'\n{caps}\nEOF\n  exit 0;;\n"
        f"  --query-gpu=uuid,name,memory.total) cat <<'EOF'\n{memory}\nEOF\n  exit 0;;\n"
        "esac\nexit 9\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def two_gpus(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path / "bin", H200_AND_4090)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def run(*args: str):
    cli._register()
    return CliRunner().invoke(cli.app, list(args), catch_exceptions=False)


def test_memory_rows_parse_names_with_commas():
    rows = parse_memory_totals("GPU-1, NVIDIA H200, 143771\nGPU-2, Weird, Name, 8192\n\nnot a row\n")
    assert rows == [("GPU-1", "NVIDIA H200", 143771.0), ("GPU-2", "Weird, Name", 8192.0)]


def test_auto_takes_the_smallest_visible_gpu(two_gpus):
    found = memory_totals()
    assert [(g.name, round(gib, 1)) for g, gib in found] == [("NVIDIA H200", 140.4), ("NVIDIA GeForce RTX 4090", 24.0)]
    data = json.loads(run("fit", PONY, "--json").output)
    assert data["gpu"] == {"name": "GPU 1: NVIDIA GeForce RTX 4090", "gib": 23.99}
    assert not any("gradient_checkpointing=false" in a["set"] for a in data["advice"])


def test_cuda_visible_devices_narrows_auto_to_the_h200(two_gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    data = json.loads(run("fit", PONY, "--json").output)
    assert data["gpu"]["name"] == "GPU 0: NVIDIA H200"
    assert data["advice"][0]["set"] == "--set training.gradient_checkpointing=false"


def test_vram_overrides_the_detected_gpu(two_gpus):
    data = json.loads(run("fit", PONY, "--vram", "12", "--json").output)
    assert data["gpu"]["gib"] == 12 and data["fits"] is False


def _plan_config(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "train" / "10_cat"
    folder.mkdir(parents=True)
    for i, size in enumerate([(1024, 1024), (832, 1216)]):
        Image.new("RGB", size).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("a cat\n", encoding="utf-8")
    path = tmp_path / "run.toml"
    path.write_text(
        f"""
[model]
pretrained_model_name_or_path = "/models/sdxl.safetensors"
[dataset]
train_data_dir = "{tmp_path / "train"}"
resolution = "1024,1024"
caption_extension = ".txt"
cache_latents = true
[buckets]
enable_bucket = true
bucket_reso_steps = 32
[network]
network_module = "networks.lora"
network_dim = 16
[training]
train_batch_size = 4
max_train_steps = 100
gradient_checkpointing = true
sdpa = true
[precision]
mixed_precision = "bf16"
[saving]
output_dir = "{tmp_path / "out"}"
""",
        encoding="utf-8",
    )
    return path


def test_plan_prints_the_verdict_line(two_gpus, tmp_path):
    result = run("plan", str(_plan_config(tmp_path)))
    line = next(ln for ln in result.output.splitlines() if ln.startswith("fit: "))
    assert "of 24.0 GiB: fits (GPU 1: NVIDIA GeForce RTX 4090; `loratrain fit` for details)" in line


def test_plan_without_gpu_still_gives_the_peak(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    result = run("plan", str(_plan_config(tmp_path)))
    assert any(ln.startswith("fit: predicted peak") and "no GPU detected" in ln for ln in result.output.splitlines())


lycoris_general = pytest.importorskip("lycoris.functional.general")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=20000), st.sampled_from([-1, 1, 2, 3, 4, 8, 16, 32, 64]))
def test_factorization_matches_lycoris(dimension, factor):
    assert factorization(dimension, factor) == lycoris_general.factorization(dimension, factor)
