"""Finding, identifying, parsing against and installing sd-scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURE_SD_SCRIPTS, cli_env

from loratrain.errors import ConfigError
from loratrain.sdscripts import install as sdscripts


def git(*args: str, cwd: Path) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(cwd),
    }
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> tuple[Path, str, str]:
    """A local git repository standing in for kohya-ss/sd-scripts: two commits, the first one wanted."""
    repo = tmp_path_factory.mktemp("upstream") / "sd-scripts"
    shutil.copytree(FIXTURE_SD_SCRIPTS, repo)
    (repo / "requirements.txt").write_text("# the stand-in needs nothing beyond the test environment\n")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "first", cwd=repo)
    first = git("rev-parse", "HEAD", cwd=repo)
    (repo / "NEWS").write_text("later\n")
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "second", cwd=repo)
    return repo, first, git("rev-parse", "HEAD", cwd=repo)


def test_sd_scripts_folder_comes_from_cli_then_config_then_environment(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    env = {"LORATRAIN_SD_SCRIPTS": str(FIXTURE_SD_SCRIPTS)}
    assert sdscripts.locate(None, None, env) == FIXTURE_SD_SCRIPTS.resolve()
    assert sdscripts.locate(str(FIXTURE_SD_SCRIPTS), str(other), env) == FIXTURE_SD_SCRIPTS.resolve()
    with pytest.raises(ConfigError, match="has no sdxl_train_network.py"):
        sdscripts.locate(None, str(other), env)


def test_no_sd_scripts_anywhere_says_how_to_get_it():
    with pytest.raises(ConfigError) as err:
        sdscripts.locate(None, None, {})
    assert "loratrain setup" in err.value.problems[0].fix


def test_a_copy_inside_another_repository_has_no_commit_of_its_own():
    assert sdscripts.read_commit(FIXTURE_SD_SCRIPTS) is None
    warning = sdscripts.commit_problem(None, FIXTURE_SD_SCRIPTS)
    assert warning.severity == "warning" and "--verify-parser" in warning.fix


def test_a_commit_other_than_the_flag_tables_gives_a_warning(upstream):
    repo, _, second = upstream
    assert sdscripts.read_commit(repo) == second
    warning = sdscripts.commit_problem(second, repo)
    assert warning.severity == "warning" and second[:7] in warning.message and "48d368f" in warning.message
    assert sdscripts.commit_problem(sdscripts.FLAG_TABLE_COMMIT, repo) is None


def test_the_installed_parser_accepts_a_valid_command(python):
    argv = [
        "--pretrained_model_name_or_path=m.safetensors",
        "--network_module=networks.lora",
        "--network_dim=16",
        "--network_args",
        "conv_dim=4",
        "algo=locon",
        "--max_train_steps=10",
    ]
    assert sdscripts.verify_parser(python, FIXTURE_SD_SCRIPTS, argv) == []


def test_the_installed_parser_reports_each_flag_it_does_not_know(python):
    problems = sdscripts.verify_parser(
        python, FIXTURE_SD_SCRIPTS, ["--network_dim=16", "--fp8_base", "--blocks_to_swap=4"]
    )
    assert [p.key for p in problems] == ["fp8_base", "blocks_to_swap"]
    assert "not accepted by the installed sdxl_train_network.py" in problems[0].message


def test_the_installed_parser_reports_a_rejected_value(python):
    (problem,) = sdscripts.verify_parser(python, FIXTURE_SD_SCRIPTS, ["--save_model_as=onnx"])
    assert "invalid choice: 'onnx'" in problem.message


def test_setup_clones_the_wanted_commit_and_installs_into_the_chosen_python(tmp_path, upstream, python):
    repo, first, _ = upstream
    target = tmp_path / "installed"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loratrain",
            "setup",
            str(target),
            "--repo",
            str(repo),
            "--ref",
            first,
            "--python",
            python,
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert sdscripts.read_commit(target) == first
    assert (target / "sdxl_train_network.py").is_file()
    for step in (
        "[1/4] clone",
        "[2/4] check out",
        "[3/4] install sd-scripts' requirements",
        "[4/4] install lycoris_lora==4.1.3",
    ):
        assert step in done.stderr
    assert f"LORATRAIN_SD_SCRIPTS={target.resolve()}" in done.stdout


def test_setup_refuses_a_folder_that_holds_something_else(tmp_path, upstream):
    repo, first, _ = upstream
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    done = subprocess.run(
        [sys.executable, "-m", "loratrain", "setup", str(target), "--repo", str(repo), "--no-install"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert done.returncode == 2
    assert "not empty and is not a git checkout" in done.stderr and "Traceback" not in done.stderr
    assert (target / "notes.txt").read_text() == "mine"


def test_setup_into_a_path_that_is_a_file_is_exit_2_naming_it(tmp_path):
    target = tmp_path / "run.toml"
    target.write_text("# a config, not a folder\n")
    done = subprocess.run(
        [sys.executable, "-m", "loratrain", "setup", str(target), "--no-install"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert str(target) in done.stderr and "not a folder" in done.stderr
    assert target.read_text() == "# a config, not a folder\n"


def test_setup_with_an_unknown_ref_fails_at_that_step(tmp_path, upstream):
    repo, _, _ = upstream
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loratrain",
            "setup",
            str(tmp_path / "x"),
            "--repo",
            str(repo),
            "--ref",
            "no-such-ref",
            "--no-install",
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert done.returncode == 1
    assert "step 2 (check out no-such-ref) failed" in done.stderr


def test_the_commit_loratrain_compares_against_is_the_packaged_flag_tables():
    from loratrain.sdscripts import flags

    assert sdscripts.FLAG_TABLE_COMMIT == flags.source_commit()


def test_normalize_expands_home_and_makes_the_folder_absolute_without_requiring_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert sdscripts.normalize("~/later") == tmp_path.resolve() / "later"
    assert sdscripts.normalize("rel/sd") == tmp_path.resolve() / "rel" / "sd"
    with pytest.raises(ConfigError, match="unknown home folder"):
        sdscripts.normalize("~no-such-user-loratrain/sd")
