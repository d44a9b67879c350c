"""`run --detach`: the run (or queue) goes on in a supervisor process that outlives the terminal.

`start_detached(run_args)` starts `python -m loratrain run RUN_ARGS --supervised` in a session of its own
(`start_new_session`: no controlling terminal, so a hang-up of the user's terminal never reaches it; it
ignores SIGHUP besides), with stdin from /dev/null and its own output in a supervisor log. The supervisor
is an ordinary `loratrain run`: it checks, records and launches exactly as in the foreground, and is the
run's supervisor (pid and heartbeat in the record, the tether on its training group: see launch/live.py
and launch/tether.py).

The caller waits on a pipe until the supervisor has written its first run record and reports it as one
JSON line (run id, record folder, pid); then it returns, within seconds. When the supervisor ends first
(a config error, a failed preflight), DetachFailed carries its exit code and what it printed, so bad
input still gets its usual message and exit code before anything runs in the background.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from loratrain.errors import EXIT_RUNTIME, LoratrainError

READY_FD_ENV = "LORATRAIN_READY_FD"
SUPERVISED = "--supervised"
READY_TIMEOUT_S = 600.0


@dataclass
class Detached:
    pid: int  # the supervisor
    run_id: str  # the first run's record folder name
    record: Path  # the first run's record folder
    log: Path  # the supervisor's own output (its messages; the training output is in the record's train.log)


class DetachFailed(LoratrainError):
    """The supervisor ended before its first run started; `output` is what it printed."""

    def __init__(self, exit_code: int, output: str, log: Path):
        super().__init__(output.strip() or f"the detached run ended at once (exit {exit_code}); see {log}")
        self.exit_code = exit_code or EXIT_RUNTIME
        self.output = output
        self.log = log


def _log_path() -> Path:
    from loratrain.launch.runid import state_dir

    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (state_dir() / "supervisors", Path(os.environ.get("TMPDIR") or "/tmp")):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                path = folder / f"loratrain-{stamp}-{os.getpid()}-{n}.log"
                try:
                    with open(path, "x", encoding="utf-8"):
                        return path
                except FileExistsError:
                    continue
        except OSError:
            continue
    raise LoratrainError("cannot create a log file for the detached supervisor (state folder and /tmp unwritable)")


def _import_path(env: Mapping[str, str]) -> str:
    here = str(Path(__file__).resolve().parents[2])  # this loratrain, whatever the caller's PYTHONPATH
    rest = env.get("PYTHONPATH")
    return here + (os.pathsep + rest if rest else "")


def start_detached(
    run_args: Sequence[str],
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> Detached:
    """Start `loratrain run RUN_ARGS` (configs and options, without --detach) detached; return once its first
    run record exists. Raises DetachFailed when it ends before that. A queue (several configs) reports its first
    run; the later ones appear in `loratrain runs` as they start."""
    base = dict(os.environ if env is None else env)
    log = _log_path()
    read_fd, write_fd = os.pipe()
    child_env = {**base, READY_FD_ENV: str(write_fd), "PYTHONPATH": _import_path(base)}
    try:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "loratrain", "run", *map(str, run_args), SUPERVISED],
                cwd=cwd,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
    finally:
        os.close(write_fd)
    try:
        line = _read_ready(read_fd, proc, timeout_s)
    finally:
        os.close(read_fd)
    if line is None:
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            raise DetachFailed(code, _read(log), log)
        raise DetachFailed(
            EXIT_RUNTIME, f"the detached supervisor (pid {proc.pid}) did not report a run; see {log}", log
        )
    facts = json.loads(line)
    return Detached(pid=proc.pid, run_id=facts["run_id"], record=Path(facts["record"]), log=log)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _read_ready(fd: int, proc: subprocess.Popen, timeout_s: float) -> str | None:
    """The supervisor's one JSON line, or None when it closed the pipe (ended) without one or took too long."""
    buffer = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buffer += chunk
        if b"\n" in buffer:
            return buffer.split(b"\n", 1)[0].decode()
    return None


# --- the supervisor's side -------------------------------------------------------------------------------------


class ReadyReporter:
    """In the supervisor: tell the waiting `run --detach` about the first record, once, then close the pipe."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        value = (environ if environ is not None else os.environ).get(READY_FD_ENV)
        self.fd: int | None = int(value) if value and value.isdigit() else None
        os.environ.pop(READY_FD_ENV, None)  # not for the training processes

    def __call__(self, rec) -> None:
        if self.fd is None:
            return
        line = json.dumps({"run_id": rec.folder.name, "record": str(rec.folder.resolve()), "pid": os.getpid()})
        try:
            os.write(self.fd, line.encode() + b"\n")
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None
