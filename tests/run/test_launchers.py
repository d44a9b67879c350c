"""The runner with both accelerate launchers: sd-scripts' pin (1.6.0) and this environment's (1.16.0 when written).

accelerate 1.16.0's launcher pipes the script's stderr through itself and, when the script fails, prints that
stderr's tail once more inside its own traceback. Nothing may be lost, reordered or held back on the way: the
progress arrives while the script runs, and the script's final exception is the last thing the failure explanation
shows, once. The logs in fixtures/launcher_logs are real: the fixture trainer crashing at step 3 under each launcher
(`loratrain run --plain` with FIXTURE_CRASH_AT=3), with the worktree and project paths replaced.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

from helpers import CONFIGS, FIXTURES, env_for, make_project, records
from hypothesis import given, settings
from hypothesis import strategies as st

from loratrain.config.loader import load_config
from loratrain.launch import failures
from loratrain.launch.launcher_echo import CHAINED, drop_launcher_echo
from loratrain.render import build_command

LOGS = FIXTURES / "launcher_logs"
FINAL = "RuntimeError: fixture: the machine went away"
LAUNCHER_TRACEBACK = 'Traceback (most recent call last):\n  File "<frozen runpy>"'


def test_the_newer_launchers_second_copy_of_stderr_is_dropped_so_its_log_reads_like_the_pinned_ones():
    newer = (LOGS / "accelerate-1.16.0-crash.log").read_text(encoding="utf-8")
    pinned = (LOGS / "accelerate-1.6.0-crash.log").read_text(encoding="utf-8")
    assert newer.count(FINAL) == 2 and pinned.count(FINAL) == 1  # what each launcher really wrote
    cleaned = drop_launcher_echo(newer)
    assert cleaned.count(FINAL) == 1
    # Everything the script wrote is kept, in order, exactly as under the pinned launcher; the launcher's
    # traceback follows.
    assert cleaned.split(LAUNCHER_TRACEBACK)[0] == pinned.split(LAUNCHER_TRACEBACK)[0]
    assert cleaned.rstrip().endswith("returned non-zero exit status 1.")
    assert drop_launcher_echo(pinned) == pinned
    one, other = failures.classify(newer, 1), failures.classify(pinned, 1)
    assert one is not None and other is not None
    assert one.as_dict() == other.as_dict() and one.lines[-1] == FINAL and one.lines.count(FINAL) == 1


def test_a_chained_traceback_that_is_not_the_launchers_is_left_alone():
    text = f'step 1\nRuntimeError: step 1\n{CHAINED}  File "train.py", line 3\nValueError: mine\n'
    assert drop_launcher_echo(text) == text


_LINE = st.one_of(
    st.sampled_from(["RuntimeError: x", "x", "steps: 1/5", "", "Traceback (most recent call last):"]),
    st.text(alphabet="abcxyz: 0123456789", max_size=12),
)


@settings(max_examples=300)
@given(lines=st.lists(_LINE, min_size=1, max_size=12), keep=st.integers(min_value=1, max_value=200))
def test_the_echo_is_removed_exactly_or_the_text_is_kept_never_cut_elsewhere(lines, keep):
    stderr = "\n".join(lines) + "\nRuntimeError: the real one\n"
    tail = stderr[-keep:]  # the launcher keeps whole 8 KiB chunks of the stream: it may start mid-line
    launcher = '  File "/v/site-packages/accelerate/commands/launch.py", line 1049\nsubprocess.CalledProcessError: x\n'
    log = stderr + "RuntimeError: " + tail + CHAINED + launcher
    cleaned = drop_launcher_echo(log)
    assert cleaned in (stderr + "Traceback (most recent call last):\n" + launcher, log)
    if keep >= len(stderr):  # the whole stderr echoed (any run with under 512 KiB of it): always recognised
        assert cleaned != log


def test_progress_arrives_while_the_script_runs_and_its_final_exception_ends_the_explanation(tmp_path, launcher):
    root = tmp_path / "p"
    config = make_project(root, steps=40, python=launcher.python)
    step_s, crash_at = 0.25, 12
    proc = subprocess.Popen(
        [sys.executable, "-m", "loratrain", "run", config.name, "--plain"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(root, FIXTURE_STEP_S=str(step_s), FIXTURE_CRASH_AT=str(crash_at)),
    )
    arrived: dict[int, float] = {}  # step -> when loratrain passed its progress line on
    streams = {"out": b"", "err": b""}

    def read(name: str, fd: int) -> None:
        while chunk := os.read(fd, 65536):
            now = time.monotonic()
            streams[name] += chunk
            if name == "out":  # a redraw may come split over two reads
                for step in re.findall(rb"\| (\d+)/40 ", streams[name]):
                    arrived.setdefault(int(step), now)

    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=read, args=(name, stream.fileno()), daemon=True)
        for name, stream in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    proc.wait(timeout=120)
    for reader in readers:
        reader.join(timeout=10)
    err = streams["err"].decode()
    assert proc.returncode == 1, err
    # Live: the redraws came step by step, not in one burst at the end (a launcher buffering by line would hold
    # every \r redraw until the traceback's newline).
    assert {2, crash_at} <= arrived.keys(), arrived
    assert arrived[crash_at] - arrived[2] >= 0.5 * (crash_at - 2) * step_s, arrived
    # Intact and in order: the redraws, then the script's traceback, then (1.16.0) the echo of it.
    out = streams["out"].decode(errors="replace")
    assert out.index(f"| {crash_at}/40 ") < out.index('File "train_network.py", line 1403, in train') < out.index(FINAL)
    (rec,) = records(root)
    assert rec["status"] == "failed" and rec["steps_done"] == crash_at
    assert rec["failure"]["cause"] == f"unknown failure: {FINAL}"
    assert rec["failure"]["last_lines"][-1] == FINAL and rec["failure"]["last_lines"].count(FINAL) == 1
    assert f"cause: unknown failure: {FINAL}" in err and err.count(FINAL) == 2  # the cause, and the last line


def test_each_launcher_parses_the_commands_loratrain_renders_for_the_shipped_configs(launcher):
    argvs = []
    for config in sorted(CONFIGS.glob("*.toml")):
        argv = build_command(load_config(config).config, "/sd").argv
        argvs.append(argv[3:])  # after `<python> -m accelerate.commands.launch`
    probe = (
        "import json, sys\n"
        "from accelerate.commands.launch import launch_command_parser\n"
        "for argv in json.load(sys.stdin):\n"
        "    args = launch_command_parser().parse_args(argv)\n"
        "    print(args.training_script, args.num_processes)\n"
    )
    done = subprocess.run(
        [launcher.python, "-c", probe], input=json.dumps(argvs), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("/sd/sdxl_train_network.py") == len(argvs) >= 4
