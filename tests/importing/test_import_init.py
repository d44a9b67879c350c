"""`loratrain init`: list the shipped configs and write one, keeping its comments."""

from __future__ import annotations

from pathlib import Path

from helpers import run_cli

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "loratrain" / "presets"
SHIPPED = sorted(CONFIGS.glob("*.toml"))


def _first_comment_line(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#"):
            return line.strip().lstrip("#").strip()
    return ""


def test_list_shows_every_shipped_config_with_the_first_line_of_its_comment():
    result = run_cli("init", "--list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(SHIPPED) > 0
    for path, line in zip(SHIPPED, lines):
        name, summary = line.split(None, 1)
        assert name == path.stem and summary == _first_comment_line(path)


def test_init_writes_the_config_byte_for_byte_with_its_comments(tmp_path):
    source = SHIPPED[0]
    out = tmp_path / "mine.toml"
    result = run_cli("init", source.stem, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == source.read_bytes()
    assert "#" in out.read_text(encoding="utf-8")


def test_init_refuses_to_overwrite_without_force(tmp_path):
    source = SHIPPED[0]
    out = tmp_path / "mine.toml"
    out.write_text("keep me")
    result = run_cli("init", source.stem, "-o", str(out))
    assert result.returncode == 2 and "--force" in result.stderr and out.read_text() == "keep me"
    assert run_cli("init", source.stem, "-o", str(out), "--force").returncode == 0
    assert out.read_bytes() == source.read_bytes()


def test_an_unknown_name_is_an_error_with_a_suggestion():
    name = SHIPPED[0].stem
    result = run_cli("init", name[:-1] + "x")
    assert result.returncode == 2 and f"did you mean {name}?" in result.stderr


def test_a_written_config_validates_and_renders_a_command(tmp_path):
    out = tmp_path / "mine.toml"
    assert run_cli("init", SHIPPED[0].stem, "-o", str(out)).returncode == 0
    assert run_cli("run", "--dry-run", str(out)).returncode == 0


def test_init_into_a_folder_that_does_not_exist_is_exit_2_naming_the_path(tmp_path):
    out = tmp_path / "no-such-folder" / "mine.toml"
    result = run_cli("init", SHIPPED[0].stem, "-o", str(out))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(out) in result.stderr and "No such file or directory" in result.stderr
    assert not out.parent.exists()
