"""`loratrain init`: list the shipped configs and write one, keeping its comments."""

from __future__ import annotations

from pathlib import Path

import pytest

import loratrain.presets
from importing_helpers import run_cli

PRESETS = Path(loratrain.presets.__file__).parent

EXAMPLE = """# Test example: a small LoCon run for checking `loratrain init`.
# Second line of the opening comment.

[network]
network_dim = 8  # why: small
"""


@pytest.fixture
def example_preset():
    """A temporary shipped config inside the package folder (removed afterwards)."""
    path = PRESETS / "zz-test-example.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    yield "zz-test-example"
    path.unlink()


def test_list_shows_each_shipped_config_with_the_first_line_of_its_comment(example_preset):
    result = run_cli("init", "--list")
    assert result.returncode == 0
    line = next(l for l in result.stdout.splitlines() if l.startswith(example_preset))
    assert line.split(None, 1)[1] == "Test example: a small LoCon run for checking `loratrain init`."


def test_init_writes_the_config_with_its_comments(example_preset, tmp_path):
    out = tmp_path / "mine.toml"
    result = run_cli("init", example_preset, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == EXAMPLE


def test_init_refuses_to_overwrite_without_force(example_preset, tmp_path):
    out = tmp_path / "mine.toml"
    out.write_text("keep me")
    result = run_cli("init", example_preset, "-o", str(out))
    assert result.returncode == 2 and "--force" in result.stderr and out.read_text() == "keep me"
    assert run_cli("init", example_preset, "-o", str(out), "--force").returncode == 0
    assert out.read_text(encoding="utf-8") == EXAMPLE


def test_an_unknown_name_is_an_error_with_a_suggestion(example_preset):
    result = run_cli("init", "zz-test-exampel")
    assert result.returncode == 2 and "did you mean zz-test-example?" in result.stderr
