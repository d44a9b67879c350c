"""Start the training command, stream its output, pass signals on, and return its exit code.

The child runs in a session (and so a process group) of its own. That keeps the terminal's Ctrl-C
from reaching it directly: loratrain receives the SIGINT and sends it to the child's group exactly
once, then waits. If the group has not finished after a grace period it gets SIGTERM, and after a
second grace period SIGKILL. A second Ctrl-C skips to the next step (a repeated SIGTERM does not). SIGTERM (from a scheduler) is
sent on to the group the same way. Whatever happens, the run only ends once no process of the
group is left, so an `accelerate launch` that dies before its worker does cannot leave the worker
training on its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from loratrain.errors import EXIT_INTERRUPTED

# Exit codes a shell would report for a process stopped by these signals.
EXIT_SIGINT = EXIT_INTERRUPTED  # 128 + SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

DEFAULT_GRACE_S = 30.0
POLL_S = 0.05


class OutputSink(Protocol):
    """Where the child's merged stdout/stderr goes besides the log file."""

    def feed(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class PassThrough:
    """Writes the child's bytes unchanged to a binary stream (the terminal by default)."""

    def __init__(self, stream=None):
        self._stream = stream if stream is not None else sys.stdout.buffer

    def feed(self, data: bytes) -> None:
        self._stream.write(data)
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


@dataclass
class RunResult:
    exit_code: int  # what loratrain should exit with
    child_code: int | None  # the direct child's own return code (negative: killed by that signal)
    received_signal: int | None  # SIGINT/SIGTERM loratrain got while the child ran, if any
    duration_s: float
    escalations: list[str] = field(default_factory=list)  # signals sent to the group, in order
    stopped_by: str | None = None  # why `watch` asked for the stop (loratrain's own Ctrl-C), if it did

    @property
    def interrupted(self) -> bool:
        return self.received_signal is not None


class Runner(Protocol):
    """The launch seam: the real `run` below, or a recording stand-in in tests."""

    def __call__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        log_path: Path | None = None,
        sink: OutputSink | None = None,
        cwd: str | os.PathLike | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        on_signal: Callable[[int, str], None] | None = None,
        watch: Callable[[], str | None] | None = None,
    ) -> RunResult: ...


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists but is no longer ours to signal; still there
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _become_subreaper() -> None:
    """On Linux, adopt orphaned grandchildren so they can be waited for and reaped here.

    Without it an orphan (say the training script after `accelerate launch` exited) would be
    reparented to PID 1, which in some containers never reaps, and would linger as a zombie
    that still counts as a member of the group.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _reap_group(pgid: int) -> None:
    """Collect exited (zombie) children of ours that belong to the group; never blocks."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _pump(fd: int, log, sink: OutputSink | None) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        if log is not None:
            log.write(chunk)
            log.flush()
        if sink is not None:
            try:
                sink.feed(chunk)
            except Exception:  # a display problem must never stop the log or the run
                sink = None


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    log_path: Path | None = None,
    sink: OutputSink | None = None,
    cwd: str | os.PathLike | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    on_signal: Callable[[int, str], None] | None = None,
    watch: Callable[[], str | None] | None = None,
) -> RunResult:
    """Run `argv` (no shell) with exactly `env`, until no process of its group is left.

    `on_signal(sig, action)` is called (from the main thread) when loratrain receives a signal or
    escalates, so the CLI can tell the user what is happening. `watch()` (the watchdog) is polled from
    the same loop; when it returns a reason the group gets the first Ctrl-C, as if the user pressed it.
    """
    pending: list[int] = []
    previous: dict[int, Any] = {}
    in_main_thread = threading.current_thread() is threading.main_thread()

    def _remember(sig, _frame):
        # SIGHUP (the SSH session dropped) is handled like SIGTERM: the child is stopped and the record closed.
        pending.append(signal.SIGTERM if sig == getattr(signal, "SIGHUP", None) else sig)

    log = open(log_path, "ab") if log_path is not None else None
    _become_subreaper()
    started = time.monotonic()
    if in_main_thread:
        hangup = (int(signal.SIGHUP),) if hasattr(signal, "SIGHUP") else ()
        for sig in (int(signal.SIGINT), int(signal.SIGTERM), *hangup):
            previous[sig] = signal.signal(sig, _remember)
    proc: subprocess.Popen | None = None
    try:
        try:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            from loratrain.errors import RuntimeFailure

            raise RuntimeFailure(f"could not start {argv[0]}: {exc.strerror or exc}") from exc
        pgid = proc.pid
        assert proc.stdout is not None  # stdout=PIPE
        reader = threading.Thread(target=_pump, args=(proc.stdout.fileno(), log, sink), daemon=True)
        reader.start()

        received: int | None = None
        stage = 0  # 0 nothing sent; 1 first signal sent; 2 SIGTERM sent; 3 SIGKILL sent
        deadline: float | None = None
        escalations: list[str] = []
        stopped_by: str | None = None

        def send(sig: int) -> None:
            escalations.append(signal.Signals(sig).name)
            _signal_group(pgid, sig)

        def escalate() -> None:
            nonlocal stage, deadline
            if stage < 2:
                stage, deadline = 2, time.monotonic() + grace_s
                send(signal.SIGTERM)
                if on_signal:
                    on_signal(signal.SIGTERM, "sent SIGTERM to the training processes")
            elif stage < 3:
                stage, deadline = 3, None
                send(signal.SIGKILL)
                if on_signal:
                    on_signal(signal.SIGKILL, "sent SIGKILL to the training processes")

        while True:
            while pending:
                sig = pending.pop(0)
                if received is None:
                    received = sig
                if stage == 0:
                    # The first signal goes on as it is: the training script gets its chance to stop.
                    stage = 1 if sig == signal.SIGINT else 2
                    deadline = time.monotonic() + grace_s
                    send(sig)
                    if on_signal:
                        name = signal.Signals(sig).name
                        on_signal(sig, f"sent {name} to the training processes; waiting up to {grace_s:g}s")
                elif sig == signal.SIGTERM and stage >= 2:
                    continue  # schedulers may repeat SIGTERM; only their own SIGKILL, or ours after the grace, ends it
                else:
                    escalate()  # a second Ctrl-C: the user does not want to wait
            if watch is not None and stage == 0:
                reason = watch()
                if reason:
                    stopped_by, stage, deadline = reason, 1, time.monotonic() + grace_s
                    send(signal.SIGINT)
                    if on_signal:
                        on_signal(signal.SIGINT, f"{reason}: sent SIGINT to the training processes")
            exited = proc.poll() is not None
            if exited:
                _reap_group(pgid)
                if not _group_alive(pgid):
                    break
                if stage == 0:
                    # The launcher ended but left processes of its group behind: stop them too.
                    stage, deadline = 1, time.monotonic() + min(grace_s, 5.0)
            if deadline is not None and time.monotonic() >= deadline:
                escalate()
            time.sleep(POLL_S)

        reader.join(timeout=5.0)
        if not reader.is_alive():
            proc.stdout.close()
        code = proc.returncode
        if received == signal.SIGINT:
            exit_code = EXIT_SIGINT
        elif received == signal.SIGTERM:
            exit_code = EXIT_SIGTERM
        elif code < 0:
            exit_code = 128 - code
        else:
            exit_code = code
        return RunResult(
            exit_code=exit_code,
            child_code=code,
            received_signal=received,
            duration_s=time.monotonic() - started,
            escalations=escalations,
            stopped_by=stopped_by,
        )
    finally:
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)  # only reached if loratrain itself failed: leave nothing behind
            proc.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if sink is not None:
            try:
                sink.close()
            except Exception:  # the display is best effort; the log and exit code are not
                pass
        if log is not None:
            log.close()
