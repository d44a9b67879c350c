"""Fixtures of the launch tests; the files they build come from tests/helpers.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import SDXL_KEYS, write_safetensors

from loratrain.launch import preflight


@pytest.fixture
def sdxl_model(tmp_path: Path) -> Path:
    return write_safetensors(tmp_path / "sdxl_base.safetensors", SDXL_KEYS)


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def without_environment_probe(monkeypatch) -> None:
    """Preflight without its training-environment check, for tests about files, GPUs, queues and the launch.

    That check is `loratrain doctor`'s probe: it imports torch in the training interpreter (about 2 s a run).
    tests/run/test_doctor.py and the tests that ask for `good_with_environment` or run a real process cover it.
    """
    monkeypatch.setattr(preflight, "CHECKS", [c for c in preflight.CHECKS if c is not preflight.check_training_env])
