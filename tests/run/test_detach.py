"""Runs that outlive the terminal: `run --detach`, `runs` live status, `logs`, `stop`, the tether, notifications.

These start real processes: loratrain's supervisor, the real accelerate launcher (CPU) and the fixture training
script (sd-scripts' parser and output). Every wait has a deadline and every test kills what it started.
"""

from __future__ import annotations

import http.server
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import env_for, loratrain, make_project, records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loratrain.launch import live, runid

STEP_S = "0.1"  # the fixture's seconds per step: long runs that the tests end themselves


def _wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds:g}s waiting for {what}")


def _fixture_ids(root: Path) -> tuple[int, int]:
    text = _wait(
        lambda: (root / "out" / "fixture.pid").exists() and (root / "out" / "fixture.pid").read_text().strip(),
        60,
        "the training script to start",
    )
    pid, pgid = (int(x) for x in text.split())
    return pid, pgid


def _kill_everything(*pids: int | None, pgids: tuple[int | None, ...] = ()) -> None:
    """The tests' own cleanup: whatever is still alive of what they started."""
    for pgid in pgids:
        if pgid and live.group_alive(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
    for pid in pids:
        if pid and live.process_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _tethers(root: Path) -> list[int]:
    """Live tether processes (launch/tether.py) watching a run of this project."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"loratrain.launch.tether" in argv and any(str(root).encode() in a for a in argv):
            if live.process_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def _runs(root: Path) -> list[dict]:
    listed = loratrain(root, "runs", "out", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _detach_in_a_terminal(root: Path, config: Path) -> tuple[int, int, str]:
    """A shell in a pseudo-terminal of its own session runs `loratrain run --detach`, then stays, like a user's
    SSH login. Returns the shell's pid, the terminal's master fd and what the terminal showed."""
    env = env_for(root, FIXTURE_STEP_S=STEP_S, COLUMNS="160")
    command = f"{sys.executable} -m loratrain run {config.name} --detach --no-preflight --grace 2; echo DETACHED-OK; sleep 120"
    pid, master = pty.fork()  # the child leads a new session whose controlling terminal is the pty
    if pid == 0:
        try:
            os.chdir(root)
            os.execve("/bin/sh", ["/bin/sh", "-c", command], env)
        finally:
            os._exit(127)
    screen = b""
    deadline = time.monotonic() + 90
    while b"DETACHED-OK" not in screen:
        assert time.monotonic() < deadline, screen.decode(errors="replace")
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                screen += os.read(master, 65536)
            except OSError:
                break
    return pid, master, screen.decode(errors="replace")


def test_a_detached_run_survives_its_terminal_hanging_up_and_stop_ends_it_cleanly(tmp_path):
    root = tmp_path / "p"
    config = make_project(root, steps=3000)
    shell, master, screen = _detach_in_a_terminal(root, config)
    supervisor = fixture_pgid = None
    try:
        run_id = re.search(r"(mychar-\d{8}-\d{6})", screen).group(1)
        assert f"loratrain stop {run_id}" in screen and f"loratrain attach {run_id}" in screen
        _, fixture_pgid = _fixture_ids(root)
        # The user's connection drops: the session gets SIGHUP and the terminal goes away.
        os.killpg(shell, signal.SIGHUP)
        os.close(master)
        os.waitpid(shell, 0)
        (first,) = _runs(root)
        supervisor = first["pid"]
        assert first["status"] == "running" and first["run_id"] == run_id and first["detached"]
        step_then = _wait(lambda: _runs(root)[0]["step"], 30, "a step in the heartbeat")
        time.sleep(2.5)  # training goes on with nobody's terminal
        (now,) = _runs(root)
        assert now["status"] == "running" and now["step"] > step_then and now["total_steps"] == 3000
        assert isinstance(now["elapsed_s"], float) and now["loss"] is not None
        assert len(_tethers(root)) == 1  # the supervisor's tether on the training group

        shown = loratrain(root, "logs", run_id)
        assert shown.returncode == 0 and "/3000 [" in shown.stdout and "fixture: training networks.lora" in shown.stdout

        stopped = loratrain(root, "stop", run_id)
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped {run_id}: interrupted" in stopped.stderr
        assert not live.process_alive(supervisor) and not live.group_alive(fixture_pgid)
        _wait(lambda: not _tethers(root), 10, "the tether to go")  # nothing of the run is left
        (rec,) = records(root)
        assert rec["status"] == "interrupted" and rec["interrupted_by"] == "SIGINT" and rec["finished"]
        assert (root / "out" / "fixture.signal").exists()  # the script was told to stop, as on Ctrl-C in the foreground
        (after,) = _runs(root)
        assert after["status"] == "interrupted" and after["step"] == rec["steps_done"] > step_then
        assert rec["stop_request"]["by"] == "loratrain stop" and after["cause"].startswith(
            "stopped with `loratrain stop`"
        )

        again = loratrain(root, "stop", run_id)
        assert again.returncode == 0 and "has already ended: interrupted" in again.stderr
    finally:
        _kill_everything(supervisor, pgids=(fixture_pgid,))


def test_sigkill_of_the_supervisor_takes_the_training_down_and_runs_says_died(tmp_path):
    root = tmp_path / "p"
    config = make_project(root, steps=3000)
    started = subprocess.run(
        [sys.executable, "-m", "loratrain", "run", config.name, "--detach", "--no-preflight", "--json"],
        cwd=root,
        env=env_for(root, FIXTURE_STEP_S=STEP_S),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    facts = json.loads(started.stdout)
    supervisor, fixture_pgid = facts["pid"], None
    try:
        fixture_pid, fixture_pgid = _fixture_ids(root)
        os.kill(supervisor, signal.SIGKILL)
        _wait(lambda: not live.process_alive(fixture_pid), 15, "the training script to be stopped")
        # accelerate's launcher too, within the tether's grace: nothing is left holding the GPU
        _wait(lambda: not live.group_alive(fixture_pgid), 10, "every training process to be gone")
        (row,) = _wait(lambda: [r for r in _runs(root) if r["status"] == "died"], 15, "runs to say died")
        _wait(lambda: not _tethers(root), 10, "the tether to go once its work is done")
        assert row["run_id"] == facts["run_id"] and row["died_at"] and "supervisor" in row["cause"]
        (rec,) = records(root)
        assert rec["status"] == "died" and "killed or crashed" in rec["died"]["cause"]
        table = loratrain(root, "runs", "out", COLUMNS="250")
        assert "died (last seen" in table.stdout and "running" not in table.stdout
    finally:
        _kill_everything(supervisor, pgids=(fixture_pgid,))


def test_a_record_saying_running_whose_supervisor_is_gone_is_shown_as_died(tmp_path):
    folder = tmp_path / "out" / "loratrain-runs" / "x-20260101-000000"
    folder.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    sup = live.supervisor_facts(pid=gone.pid)
    (folder / "record.json").write_text(
        json.dumps({"status": "running", "started": "2026-01-01T00:00:00+00:00", "supervisor": sup}), encoding="utf-8"
    )
    live.write_live(folder, {"heartbeat": "2026-01-01T00:05:00+00:00", "step": 7, "total_steps": 10})
    (row,) = json.loads(loratrain(tmp_path, "runs", "out", "--json").stdout)
    assert row["status"] == "died" and row["died_at"] == "2026-01-01T00:05:00+00:00" and row["step"] == 7
    me = live.supervisor_facts()
    (folder / "record.json").write_text(json.dumps({"status": "running", "supervisor": me}), encoding="utf-8")
    (row,) = json.loads(loratrain(tmp_path, "runs", "out", "--json").stdout)
    assert row["status"] == "running" and row["pid"] == os.getpid()


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - the handler's name is http.server's
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    _Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("without_environment_probe")
def test_notify_posts_start_each_save_and_end_and_on_exit_gets_the_facts(tmp_path, hook_server):
    url, received = hook_server
    root = tmp_path / "p"
    config = make_project(root, steps=6)
    facts_file = tmp_path / "facts.txt"
    done = loratrain(
        root,
        "run",
        config.name,
        "--plain",
        "--set",
        "saving.save_every_n_steps=3",
        "--notify",
        url,
        "--on-exit",
        f'echo "$LORATRAIN_RUN_ID $LORATRAIN_STATUS $LORATRAIN_STEP $LORATRAIN_EXIT_CODE" > {facts_file}',
    )
    assert done.returncode == 0, done.stderr
    (rec,) = records(root)
    run_id = next((root / "out" / "loratrain-runs").iterdir()).name
    _wait(lambda: len(received) >= 4, 10, "four notifications")
    events = [r["event"] for r in received]
    assert events[0] == "start" and events[-1] == "end" and events.count("save") >= 2, events
    end = received[-1]
    assert end["run_id"] == run_id and end["status"] == "succeeded" and end["step"] == 6 and end["loss"] > 0
    assert end["exit_code"] == 0 and end["cause"] is None
    assert any(r["event"] == "save" and r["file"].endswith("mychar-step00000003.safetensors") for r in received)
    assert facts_file.read_text().split() == [run_id, "succeeded", "6", "0"]
    assert "hooks" not in rec


@pytest.mark.usefixtures("without_environment_probe")
def test_a_notify_server_that_is_down_never_fails_the_run(tmp_path):
    root = tmp_path / "p"
    config = make_project(root)
    done = loratrain(
        root, "run", config.name, "--plain", "--notify", "http://127.0.0.1:9/nobody", "--on-exit", "exit 3"
    )
    assert done.returncode == 0, done.stderr
    assert "warning: notify hook: POST http://127.0.0.1:9/nobody failed" in done.stderr
    assert "warning: on-exit hook: 'exit 3' exited with 3" in done.stderr
    (rec,) = records(root)
    assert rec["status"] == "succeeded" and {h["hook"] for h in rec["hooks"]} == {"notify", "on-exit"}


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http://", "file:///tmp/x"])
def test_a_notify_url_that_is_not_http_is_refused_before_anything_runs(tmp_path, url):
    root = tmp_path / "p"
    config = make_project(root)
    for extra in ([], ["--detach"]):
        refused = loratrain(root, "run", config.name, "--notify", url, *extra)
        assert refused.returncode == 2 and "--notify" in refused.stderr and "http://" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (root / "out").exists()


def test_unknown_runs_are_refused_naming_the_runs_that_exist(tmp_path):
    folder = tmp_path / "out" / "loratrain-runs" / "mine-20260101-000000"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(
        json.dumps({"status": "succeeded", "finished": "2026-01-01T01:00:00+00:00"}), encoding="utf-8"
    )
    (folder / "train.log").write_text("hello from the log\n", encoding="utf-8")
    runid.index_run(folder)
    for verb in ("logs", "attach", "stop"):
        missing = loratrain(tmp_path, verb, "mine-2026")
        assert missing.returncode == 2 and "no such run: mine-2026" in missing.stderr
        assert "runs that exist: mine-20260101-000000" in missing.stderr and "Traceback" not in missing.stderr
    assert loratrain(tmp_path, "logs", "mine-20260101-000000").stdout == "hello from the log\n"
    assert loratrain(tmp_path / "out", "logs", "out").returncode == 2  # there is no out/out
    by_folder = loratrain(Path("/"), "logs", str(tmp_path / "out"))  # an output_dir: its newest run
    assert by_folder.stdout == "hello from the log\n"
    finished = loratrain(Path("/"), "stop", "mine-20260101-000000")  # found through the index, from anywhere
    assert finished.returncode == 0 and "has already ended: succeeded" in finished.stderr
    (tmp_path / "out" / "loratrain-runs" / "bad-20260101-000000").mkdir()
    (tmp_path / "out" / "loratrain-runs" / "bad-20260101-000000" / "record.json").write_text("{no", encoding="utf-8")
    damaged = loratrain(tmp_path, "stop", "bad-20260101-000000")
    assert damaged.returncode == 2 and "damaged" in damaged.stderr and "not JSON" in damaged.stderr


def test_a_detached_run_with_a_config_error_reports_it_at_once_and_leaves_nothing_running(tmp_path):
    root = tmp_path / "p"
    config = make_project(root)
    refused = subprocess.run(
        [sys.executable, "-m", "loratrain", "run", config.name, "--detach", "--set", "network.network_dim=-4"],
        cwd=root,
        env=env_for(root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2, refused.stderr
    assert "network.network_dim" in refused.stderr and "Traceback" not in refused.stderr
    assert not (root / "out" / "loratrain-runs").exists()


@pytest.mark.usefixtures("without_environment_probe")
def test_attach_and_logs_f_on_a_finished_run_show_it_and_return(tmp_path):
    root = tmp_path / "p"
    config = make_project(root)
    assert loratrain(root, "run", config.name, "--plain").returncode == 0
    (row,) = _runs(root)
    attached = loratrain(root, "attach", row["run_id"])
    assert attached.returncode == 0 and "is not running (succeeded)" in attached.stderr
    assert "fixture: saved mychar.safetensors" in attached.stdout
    followed = loratrain(root, "logs", row["run_id"], "-f")
    assert followed.returncode == 0 and "5/5 [" in followed.stdout and f"{row['run_id']} succeeded" in followed.stderr


def test_runs_watch_redraws_until_ctrl_c(tmp_path):
    folder = tmp_path / "out" / "loratrain-runs" / "w-20260101-000000"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({"status": "succeeded", "config_file": "w.toml"}), encoding="utf-8")
    watching = subprocess.Popen(
        [sys.executable, "-m", "loratrain", "runs", "out", "--watch", "--interval", "0.2"],
        cwd=tmp_path,
        env=env_for(tmp_path, COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)
        watching.send_signal(signal.SIGINT)
        out, err = watching.communicate(timeout=30)
    finally:
        if watching.poll() is None:
            watching.kill()
    assert watching.returncode == 0, err
    assert out.count("w-20260101-000000") >= 2 and "Ctrl-C to quit" in out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=st.text(min_size=0, max_size=300) | st.just("x" * 5000) | st.just("a/" * 200))
def test_any_run_argument_is_a_run_or_no_such_run_never_a_traceback(tmp_path, run):
    for verb in ("logs", "stop"):
        result = loratrain(tmp_path, verb, "--", run)  # "--": a RUN that starts with a dash is still a RUN
        assert "Traceback" not in result.stderr
        assert result.returncode == 2 and "no such run" in result.stderr, result.stderr


def test_a_detached_queue_runs_every_config_in_order_and_the_supervisor_ends(tmp_path):
    root = tmp_path / "p"
    first, second = make_project(root, "one"), make_project(root, "two")
    started = subprocess.run(
        [sys.executable, "-m", "loratrain", "run", first.name, second.name, "--detach", "--no-preflight"],
        cwd=root,
        env=env_for(root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("one-") and "first of a queue of 2 runs" in started.stderr
    rows = _wait(lambda: [r for r in _runs(root) if r["status"] == "succeeded"][1:] and _runs(root), 120, "both runs")
    assert [r["config"] for r in rows] == ["one.toml", "two.toml"] and all(r["detached"] for r in rows)
    _wait(lambda: not live.process_alive(rows[0]["pid"]), 30, "the supervisor to end after the queue")
