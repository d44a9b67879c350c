"""An SSH session dropping (SIGHUP) stops the run like SIGTERM and closes its record; the child is told the
terminal's width. Uses the launch tests' fixture sd-scripts (a real child process that trains by sleeping)."""

from __future__ import annotations

import signal
from types import SimpleNamespace

from loratrain.launch.prepare import with_terminal_width
from run.test_run_cli import _group_gone, _start_and_wait_for_training, make_project, records


def test_sighup_stops_the_run_like_sigterm_and_the_record_is_closed(tmp_path):
    root = tmp_path / "p"
    config = make_project(root, steps=200)
    proc, pid, pgid = _start_and_wait_for_training(root, config)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert (root / "out" / "fixture.signal").read_text() == "SIGTERM"  # the script got the signal it handles
    assert _group_gone(pgid)
    (rec,) = records(root)
    assert rec["status"] == "interrupted"  # not "running" forever


def test_the_child_is_told_the_terminal_width_unless_columns_is_set(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: SimpleNamespace(columns=173, lines=50))
    assert with_terminal_width({"PATH": "/bin"}) == {"PATH": "/bin", "COLUMNS": "173"}
    assert with_terminal_width({"COLUMNS": "91"})["COLUMNS"] == "91"
