"""Fixtures shared by the top-level tests; plain helpers live in helpers.py (importable by name)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def write_config(tmp_path: Path):
    def write(text: str, name: str = "run.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _run_index_in_tmp(tmp_path_factory, monkeypatch):
    """Runs are indexed by id in loratrain's state folder (launch/live.py): a test's runs never reach the user's."""
    monkeypatch.setenv("LORATRAIN_STATE_DIR", str(tmp_path_factory.mktemp("loratrain-state")))
