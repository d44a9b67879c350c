"""Fixtures shared by the top-level tests; plain helpers live in helpers.py (importable by name)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import chromium_path


@pytest.fixture
def write_config(tmp_path: Path):
    def write(text: str, name: str = "run.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _run_index_in_tmp(tmp_path_factory, monkeypatch):
    """Runs are indexed by id in loratrain's state folder (launch/runid.py): a test's runs never reach the user's."""
    monkeypatch.setenv("LORATRAIN_STATE_DIR", str(tmp_path_factory.mktemp("loratrain-state")))


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium for the page tests; they skip without it, except under CI=true, where they fail."""
    path = chromium_path()
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; CI must install it (.ci/run: apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); under CI=true this test fails instead")
