"""The training child is told the terminal's width (its log is not wrapped at 80 columns), unless COLUMNS is set.
(SIGHUP handled like SIGTERM is checked with the other signals in tests/run/test_run_cli.py.)"""

from __future__ import annotations

from types import SimpleNamespace

from loratrain.launch.prepare import with_terminal_width


def test_the_child_is_told_the_terminal_width_unless_columns_is_set(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: SimpleNamespace(columns=173, lines=50))
    assert with_terminal_width({"PATH": "/bin"}) == {"PATH": "/bin", "COLUMNS": "173"}
    assert with_terminal_width({"COLUMNS": "91"})["COLUMNS"] == "91"
