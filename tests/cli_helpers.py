"""Shared helpers of the top-level tests: run the real CLI in a subprocess; a small valid config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m loratrain ARGS` through the real entry point, with this environment (PYTHONPATH kept)."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("COLUMNS", "200")
    return subprocess.run([sys.executable, "-m", "loratrain", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, input=input, timeout=timeout)


BASE = """
[model]
pretrained_model_name_or_path = "/models/sdxl.safetensors"
[dataset]
train_data_dir = "/data"
resolution = "1024,1024"
[network]
network_module = "networks.lora"
network_dim = 8
[saving]
output_dir = "/out"
"""
