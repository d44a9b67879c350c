"""Fixtures for the shrink tests: real safetensors files on disk and the real CLI in a subprocess."""

from __future__ import annotations

import helpers as synth
import pytest
from helpers import run_cli as shared_run_cli


@pytest.fixture
def lora_path(tmp_path):
    return synth.save(tmp_path / "lora.safetensors", synth.lora_tensors(), synth.TRAINING_METADATA)


@pytest.fixture
def base_path(tmp_path):
    return synth.save(tmp_path / "sdxl_base.safetensors", synth.base_tensors())


def run_cli(*args, cwd=None):
    """`python -m loratrain shrink ...` through the shared helper (shrinking can take a while)."""
    return shared_run_cli("shrink", *args, cwd=cwd, timeout=300)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True)
def private_norm_cache(tmp_path, monkeypatch):
    """Base-norm caches go to the test's folder, never the user's ~/.cache (inherited by CLI runs)."""
    monkeypatch.setenv("LORATRAIN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
