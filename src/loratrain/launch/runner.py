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
        started: Callable[[int], None] | None = None,
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


class _Supervision:
    """One launch's state between the steps of `run`: signals received, what was sent, the deadlines."""

    def __init__(self, proc: subprocess.Popen, grace_s: float, on_signal, watch):
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the child leads its own group
        self.grace_s = grace_s
        self.on_signal = on_signal
        self.watch = watch
        self.pending: list[int] = []
        self.received: int | None = None
        self.stage = 0  # 0 nothing sent; 1 first signal sent; 2 SIGTERM sent; 3 SIGKILL sent
        self.deadline: float | None = None
        self.escalations: list[str] = []
        self.stopped_by: str | None = None

    def _tell(self, sig: int, action: str) -> None:
        if self.on_signal:
            self.on_signal(sig, action)

    def send(self, sig: int) -> None:
        self.escalations.append(signal.Signals(sig).name)
        _signal_group(self.pgid, sig)

    def escalate(self) -> None:
        if self.stage < 2:
            self.stage, self.deadline = 2, time.monotonic() + self.grace_s
            self.send(signal.SIGTERM)
            self._tell(signal.SIGTERM, "sent SIGTERM to the training processes")
        elif self.stage < 3:
            self.stage, self.deadline = 3, None
            self.send(signal.SIGKILL)
            self._tell(signal.SIGKILL, "sent SIGKILL to the training processes")

    def handle_signals(self) -> None:
        """Pass on what loratrain received: the first signal as it is, a second Ctrl-C escalates."""
        while self.pending:
            sig = self.pending.pop(0)
            if self.received is None:
                self.received = sig
            if self.stage == 0:
                # The first signal goes on as it is: the training script gets its chance to stop.
                self.stage = 1 if sig == signal.SIGINT else 2
                self.deadline = time.monotonic() + self.grace_s
                self.send(sig)
                name = signal.Signals(sig).name
                self._tell(sig, f"sent {name} to the training processes; waiting up to {self.grace_s:g}s")
            elif sig == signal.SIGTERM and self.stage >= 2:
                continue  # schedulers may repeat SIGTERM; only their own SIGKILL, or ours after the grace, ends it
            else:
                self.escalate()  # a second Ctrl-C: the user does not want to wait

    def check_watch(self) -> None:
        """Poll the watchdog (and whatever rides on it); its stop reason is the first Ctrl-C."""
        if self.watch is None:
            return
        reason = self.watch()
        if reason and self.stage == 0:
            self.stopped_by, self.stage, self.deadline = reason, 1, time.monotonic() + self.grace_s
            self.send(signal.SIGINT)
            self._tell(signal.SIGINT, f"{reason}: sent SIGINT to the training processes")

    def finished(self) -> bool:
        """True once no process of the group is left; a launcher that left its group behind gets it stopped."""
        if self.proc.poll() is None:
            return False
        _reap_group(self.pgid)
        if not _group_alive(self.pgid):
            return True
        if self.stage == 0:
            # The launcher ended but left processes of its group behind: stop them too.
            self.stage, self.deadline = 1, time.monotonic() + min(self.grace_s, 5.0)
        return False

    def loop(self) -> None:
        while True:
            self.handle_signals()
            self.check_watch()
            if self.finished():
                return
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.escalate()
            time.sleep(POLL_S)

    def exit_code(self) -> int:
        code = self.proc.returncode
        if self.received == signal.SIGINT:
            return EXIT_SIGINT
        if self.received == signal.SIGTERM:
            return EXIT_SIGTERM
        return 128 - code if code < 0 else code


def _handled_signals() -> list[int]:
    """SIGINT, SIGTERM and SIGHUP, except a SIGHUP the caller ignores (nohup, or a detached supervisor)."""
    sigs = [int(signal.SIGINT), int(signal.SIGTERM)]
    hangup = getattr(signal, "SIGHUP", None)
    if hangup is not None and signal.getsignal(hangup) != signal.SIG_IGN:
        sigs.append(int(hangup))
    return sigs


def _start(argv: Sequence[str], env: Mapping[str, str], cwd) -> subprocess.Popen:
    try:
        return subprocess.Popen(
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
    started: Callable[[int], None] | None = None,
) -> RunResult:
    """Run `argv` (no shell) with exactly `env`, until no process of its group is left.

    `on_signal(sig, action)` is called (from the main thread) when loratrain receives a signal or
    escalates, so the CLI can tell the user what is happening. `watch()` (the watchdog) is polled from
    the same loop; when it returns a reason the group gets the first Ctrl-C, as if the user pressed it.
    `started(pgid)` is called once the training process group exists (the tether and heartbeat start there).
    """
    pending: list[int] = []
    previous: dict[int, Any] = {}

    def _remember(sig, _frame):
        # SIGHUP (the SSH session dropped) is handled like SIGTERM: the child is stopped and the record closed.
        pending.append(signal.SIGTERM if sig == getattr(signal, "SIGHUP", None) else sig)

    log = open(log_path, "ab") if log_path is not None else None
    _become_subreaper()
    began = time.monotonic()
    if threading.current_thread() is threading.main_thread():
        for sig in _handled_signals():
            previous[sig] = signal.signal(sig, _remember)
    proc: subprocess.Popen | None = None
    try:
        proc = _start(argv, env, cwd)
        assert proc.stdout is not None  # stdout=PIPE
        reader = threading.Thread(target=_pump, args=(proc.stdout.fileno(), log, sink), daemon=True)
        reader.start()
        state = _Supervision(proc, grace_s, on_signal, watch)
        state.pending = pending
        if started is not None:
            started(state.pgid)
        state.loop()
        reader.join(timeout=5.0)
        if not reader.is_alive():
            proc.stdout.close()
        return RunResult(
            exit_code=state.exit_code(),
            child_code=proc.returncode,
            received_signal=state.received,
            duration_s=time.monotonic() - began,
            escalations=state.escalations,
            stopped_by=state.stopped_by,
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
