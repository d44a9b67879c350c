"""The runner on its own: exit codes, the log, and no process left behind after a normal exit."""

from __future__ import annotations

import os
import sys
import time

import pytest

from loratrain.errors import RuntimeFailure
from loratrain.launch import runner


def test_exit_code_log_and_explicit_environment(tmp_path):
    log = tmp_path / "train.log"
    code = "import os, sys; print('hello', os.environ.get('ONLY_THIS'), os.environ.get('HOME')); sys.exit(7)"
    result = runner.run([sys.executable, "-c", code], {"ONLY_THIS": "yes", "PATH": os.environ["PATH"]}, log_path=log)
    assert result.exit_code == 7 and result.received_signal is None
    assert log.read_text() == "hello yes None\n"  # exactly the env given, nothing inherited


def test_a_child_killed_by_a_signal_gives_128_plus_the_signal(tmp_path):
    result = runner.run(["bash", "-c", "kill -KILL $$"], {"PATH": os.environ["PATH"]}, log_path=tmp_path / "log")
    assert result.exit_code == 137 and result.child_code == -9


def test_processes_the_launcher_leaves_behind_are_stopped_before_run_returns(tmp_path):
    pid_file = tmp_path / "pid"
    script = f"sleep 300 & echo $! > {pid_file}; exit 0"
    started = time.monotonic()
    result = runner.run(["bash", "-c", script], {"PATH": os.environ["PATH"]}, log_path=tmp_path / "log", grace_s=0.5)
    assert result.exit_code == 0 and result.escalations == ["SIGTERM"]
    assert time.monotonic() - started < 30
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
        still_there = True
    except ProcessLookupError:
        still_there = False
    assert not still_there


def test_a_missing_program_is_a_runtime_failure_not_a_traceback(tmp_path):
    with pytest.raises(RuntimeFailure, match="could not start /no/such/python"):
        runner.run(["/no/such/python"], {}, log_path=tmp_path / "log")
