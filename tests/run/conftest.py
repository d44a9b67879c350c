"""Shared material for the launch tests: real safetensors files, real images, a fake nvidia-smi."""

from __future__ import annotations

import json
import os
import stat
import struct
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_SD_SCRIPTS = FIXTURES / "sd_scripts"
REPO_ROOT = Path(__file__).resolve().parents[2]

# Tensor names as they appear in real single-file checkpoints (a few of each, enough to classify).
SDXL_KEYS = [
    "conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
    "conditioner.embedders.1.model.ln_final.weight",
    "model.diffusion_model.input_blocks.1.1.proj_in.weight",
    "model.diffusion_model.label_emb.0.0.weight",
    "first_stage_model.decoder.conv_in.weight",
]
SD1_KEYS = [
    "cond_stage_model.transformer.text_model.embeddings.position_ids",
    "model.diffusion_model.input_blocks.1.1.proj_in.weight",
    "first_stage_model.decoder.conv_in.weight",
]


def write_safetensors(path: Path, names: list[str]) -> Path:
    """A valid safetensors file: each tensor one float32 value (the header is what preflight reads)."""
    header = {"__metadata__": {"format": "pt"}}
    for i, name in enumerate(names):
        header[name] = {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(struct.pack("<f", 0.25) for _ in names))
    return path


def write_image(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    from PIL import Image

    Image.new("RGB", size, (200, 80, 40)).save(path)
    return path


def make_dataset(root: Path, folders: dict[str, int], caption_ext: str = ".txt") -> Path:
    """`root/<folder>/img<i>.png` with a caption file each."""
    root.mkdir(parents=True, exist_ok=True)
    for folder, count in folders.items():
        sub = root / folder
        sub.mkdir()
        for i in range(count):
            write_image(sub / f"img{i}.png")
            (sub / f"img{i}{caption_ext}").write_text(f"photo of {folder.partition('_')[2]}, number {i}\n")
    return root


def write_fake_nvidia_smi(bin_dir: Path, gpus: list[tuple[str, str]]) -> Path:
    """An `nvidia-smi` that answers -L and the name,compute_cap query for the given (name, cap) GPUs."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    listing = "\n".join(f"GPU {i}: {name} (UUID: GPU-{i:08d}-aaaa-bbbb-cccc-000000000000)" for i, (name, _) in enumerate(gpus))
    query = "\n".join(f"{name}, {cap}" for name, cap in gpus)
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-L" ]; then\n'
        f"cat <<'EOF'\n{listing}\nEOF\n"
        "exit 0\nfi\n"
        'case "$1" in --query-gpu=*)\n'
        f"cat <<'EOF'\n{query}\nEOF\n"
        "exit 0;;\nesac\n"
        "exit 9\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return script


def cli_env(**extra: str) -> dict[str, str]:
    """The current environment for a `python -m loratrain` subprocess, with this worktree's src first."""
    env = dict(os.environ)
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("LORATRAIN_SD_SCRIPTS", None)
    env.update(extra)
    return env


@pytest.fixture
def sdxl_model(tmp_path: Path) -> Path:
    return write_safetensors(tmp_path / "sdxl_base.safetensors", SDXL_KEYS)


@pytest.fixture
def python() -> str:
    return sys.executable
