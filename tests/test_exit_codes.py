"""Exit codes come from one boundary (cli._guard): errors, Ctrl-C and --strict map to the named constants."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time

import pytest
import typer
from helpers import BASE, cli_env, run_cli

from loratrain import cli
from loratrain.errors import EXIT_CONFIG, EXIT_INTERRUPTED, ConfigError, Problem, did_you_mean
from loratrain.launch import runner


def test_ctrl_c_inside_any_verb_is_exit_130_without_a_traceback(capsys):
    def verb() -> int:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as stop:
        cli._guard(verb)()
    assert stop.value.exit_code == EXIT_INTERRUPTED
    assert "Traceback" not in capsys.readouterr().err


def test_ctrl_c_to_a_real_loratrain_process_waiting_on_stdin_exits_130():
    proc = subprocess.Popen(
        [sys.executable, "-m", "loratrain", "import", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    time.sleep(3)  # the command is up and reading stdin
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err


def test_a_library_error_is_its_exit_code():
    def verb() -> int:
        raise ConfigError([Problem("bad", key="a.b")])

    with pytest.raises(typer.Exit) as stop:
        cli._guard(verb)()
    assert stop.value.exit_code == EXIT_CONFIG


def test_strict_turns_each_warning_into_an_error_of_the_same_text(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(BASE + '[logging]\nlog_prefix = "x"\n', encoding="utf-8")
    relaxed = run_cli("run", str(config), "--dry-run")
    strict = run_cli("run", str(config), "--dry-run", "--strict")
    assert relaxed.returncode == 0 and "warning:" in relaxed.stderr
    assert strict.returncode == EXIT_CONFIG
    assert strict.stderr.replace("error:", "warning:").strip().splitlines()[0] == relaxed.stderr.strip().splitlines()[0]


def test_a_warning_made_an_error_is_a_copy_with_only_the_severity_changed():
    warning = Problem("m", key="k", file="f", line=3, fix="x", value=1, severity="warning")
    assert warning.as_error() == dataclasses.replace(warning, severity="error")


def test_one_did_you_mean_for_every_site():
    assert did_you_mean("netwrk_dim", ["network_dim", "network_alpha"]) == "did you mean 'network_dim'?"
    assert did_you_mean("--netwrk_dim", ["--network_dim"], quote=False) == "did you mean --network_dim?"
    assert did_you_mean("zzz", ["network_dim"]) == ""


def test_the_runner_protocol_takes_what_the_launch_passes():
    import inspect

    wanted = set(inspect.signature(runner.run).parameters)
    assert set(inspect.signature(runner.Runner.__call__).parameters) - {"self"} == wanted
