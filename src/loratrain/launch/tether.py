"""The tether: when a run's supervisor dies, its training processes die with it.

The runner starts the training command in a process group of its own, which is what lets Ctrl-C and
`stop` reach every process of it. The same separation means nothing stops that group when loratrain
itself is killed (SIGKILL, the OOM killer): `accelerate launch` and its training script would go on
holding the GPU, with a record saying "running" forever.

So, next to each launch, the supervisor starts this small process (`python -m loratrain.launch.tether`),
in a session of its own, holding the read end of a pipe whose only write end the supervisor keeps. A
normal end writes one byte ("released") and the tether exits. If the supervisor dies instead, the kernel
closes its end, the tether reads end-of-file, sends the group SIGTERM, then SIGKILL after a short grace,
and closes the record as "died" with the time and the cause. Pipes need no polling and work for any way
the supervisor can die; Linux's PR_SET_PDEATHSIG would cover only the direct child, not the training
script that `accelerate launch` starts below it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RELEASE = b"r"
KILL_GRACE_S = 5.0


class Tether:
    """The supervisor's side: start with `Tether.start(pgid, record_folder)`, end with `release()`."""

    def __init__(self, proc: subprocess.Popen, write_fd: int):
        self.proc = proc
        self._fd: int | None = write_fd

    @classmethod
    def start(cls, pgid: int, record_folder: Path | None, grace_s: float = KILL_GRACE_S) -> Tether | None:
        """Start the tether for a training group; None when it cannot start (the run goes on without it)."""
        read_fd, write_fd = os.pipe()  # both ends are non-inheritable; stdin below is dup'ed for the child only
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "loratrain.launch.tether",
                    str(pgid),
                    str(grace_s),
                    str(record_folder or ""),
                    str(os.getpid()),
                ],
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # neither the terminal's Ctrl-C nor its hang-up reaches it
                env={**os.environ, "PYTHONPATH": _import_path()},
            )
        except OSError:
            os.close(write_fd)
            return None
        finally:
            os.close(read_fd)
        return cls(proc, write_fd)

    def release(self, timeout_s: float = 5.0) -> None:
        """The run ended normally: let the tether go without touching anything."""
        if self._fd is None:
            return
        try:
            os.write(self._fd, RELEASE)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _import_path() -> str:
    """loratrain's own folder first, so the tether imports this same loratrain."""
    here = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH")
    return here + (os.pathsep + rest if rest else "")


def _group_gone(pgid: int) -> bool:
    from loratrain.launch.live import group_alive

    return not group_alive(pgid)


def _stop_group(pgid: int, grace_s: float) -> list[str]:
    sent: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return sent
        sent.append(signal.Signals(sig).name)
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline:
            if _group_gone(pgid):
                return sent
            time.sleep(0.05)
    return sent


def mark_died(folder: Path, supervisor_pid: int, sent: list[str]) -> None:
    """Close a record the supervisor could not close: status "died", when, and why."""
    from loratrain.atomic import write_text
    from loratrain.launch.record import RECORD_NAME, read_record

    stored = read_record(folder)
    if stored.problem is not None or stored.data.get("status") != "running":
        return
    now = dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    stopped = f"; the training processes were stopped ({', '.join(sent)})" if sent else ""
    data = dict(stored.data)
    data.update(
        status="died",
        finished=now,
        exit_code=None,
        died={
            "at": now,
            "cause": f"its supervisor (loratrain, pid {supervisor_pid}) was killed or crashed{stopped}",
            "signals": sent,
        },
    )
    try:
        write_text(folder / RECORD_NAME, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    except Exception:  # best effort: `runs` sees the dead supervisor by itself
        pass


def main(argv: list[str]) -> int:
    for name in ("SIGINT", "SIGHUP", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    pgid, grace_s, folder, supervisor_pid = int(argv[0]), float(argv[1]), argv[2], int(argv[3])
    try:
        got = os.read(0, 1)
    except OSError:
        got = b""
    if got == RELEASE:
        return 0
    sent = _stop_group(pgid, grace_s)
    if folder:
        mark_died(Path(folder), supervisor_pid, sent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
