"""Fixtures of the launch tests; the files they build come from tests/helpers.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import SDXL_KEYS, write_safetensors


@pytest.fixture
def sdxl_model(tmp_path: Path) -> Path:
    return write_safetensors(tmp_path / "sdxl_base.safetensors", SDXL_KEYS)


@pytest.fixture
def python() -> str:
    return sys.executable
