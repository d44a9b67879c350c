"""A run seen while it runs: the supervisor's pid and heartbeat, and the status `runs` shows.

Whoever launches the training (a foreground `loratrain run`, or the detached supervisor of `run --detach`)
is the run's *supervisor*. It writes who it is into record.json (`supervisor`: pid, host, boot id, the
pid's start time, so a reused pid is not mistaken for it) and, every HEARTBEAT_S seconds, `live.json` beside
it: the time, the training group and the latest progress (step / total, loss, speed, ETA).

A record that says "running" is believed only while its supervisor lives: on this machine the pid is
checked (a zombie or another process under the same pid is no supervisor); on another machine the
heartbeat must be younger than STALE_S. Otherwise the run is shown as "died", with the last time it was
seen alive. Nothing here prints.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from loratrain.launch.record import StoredRecord

LIVE_NAME = "live.json"
STOP_NAME = "stop-request.json"  # written by `loratrain stop` before it signals the supervisor
HEARTBEAT_S = 2.0
STALE_S = 60.0  # a heartbeat older than this from another machine: the supervisor is taken for gone


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a pid from /proc, or None where there is no /proc entry."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def supervisor_facts(pid: int | None = None, detached: bool = False, grace_s: float | None = None) -> dict[str, Any]:
    """What the record keeps about its supervisor (this process unless `pid`)."""
    pid = os.getpid() if pid is None else pid
    stat = _proc_stat(pid)
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "pid_start": stat[1] if stat else None,
        "detached": detached,
        "grace_s": grace_s,
    }


def process_alive(pid: int, pid_start: int | None = None) -> bool:
    """Whether this pid runs (not a zombie), and is the same process when its start time is known."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    stat = _proc_stat(pid)
    if stat is not None:
        state, start = stat
        if state in ("Z", "X"):
            return False
        return pid_start is None or start == pid_start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return not Path("/proc").is_dir()  # a /proc without the pid: it is gone


def group_alive(pgid: int) -> bool:
    """Whether a process group still has a live (non-zombie) member."""
    if not isinstance(pgid, int) or isinstance(pgid, bool) or pgid <= 0:
        return False
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rfind(")") + 2 :].split()
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


# --- the writer side (the supervisor) ------------------------------------------------------------------------


def write_live(folder: Path, data: Mapping[str, Any]) -> None:
    """Replace live.json at once (no fsync: it is rewritten every few seconds and only ever a hint)."""
    write_live_file(Path(folder) / LIVE_NAME, data)


def write_live_file(target: Path, data: Mapping[str, Any]) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(dict(data), default=str) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass


def read_live(folder: Path) -> dict[str, Any]:
    from loratrain import untrusted

    try:
        data = untrusted.json_loads((Path(folder) / LIVE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class Heartbeat:
    """Writes live.json at most every HEARTBEAT_S seconds from the runner's loop (`tick`)."""

    def __init__(self, folder: Path, progress, interval_s: float = HEARTBEAT_S):
        self.folder = folder
        self.progress = progress  # anything with `.last` (a launch.progress.StepProgress or None)
        self.interval_s = interval_s
        self.pgid: int | None = None
        self._next = 0.0
        self._started = time.time()

    def facts(self) -> dict[str, Any]:
        p = getattr(self.progress, "last", None)
        return {
            "pid": os.getpid(),
            "pgid": self.pgid,
            "heartbeat": _iso(time.time()),
            "heartbeat_unix": round(time.time(), 3),
            "started_unix": round(self._started, 3),
            "step": p.step if p else None,
            "total_steps": p.total if p else None,
            "loss": p.avr_loss if p and p.avr_loss is not None and p.avr_loss == p.avr_loss else None,
            "speed": p.speed if p else None,
            "seconds_per_step": p.seconds_per_step if p else None,
            "eta": p.eta if p else None,
        }

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now >= self._next:
            self._next = now + self.interval_s
            write_live(self.folder, self.facts())


# --- the reader side (runs, stop, logs, attach) --------------------------------------------------------------


def supervisor_gone(record: Mapping[str, Any], live: Mapping[str, Any], now: float | None = None) -> bool | None:
    """True when the supervisor of a "running" record is gone, False when it lives, None when nobody can tell
    (a record written before loratrain kept its supervisor)."""
    sup = _table(record.get("supervisor"))
    pid = _int(sup.get("pid"))
    if pid is None:
        return None
    same_machine = sup.get("host") == socket.gethostname() and (sup.get("boot_id") or None) == _boot_id()
    if same_machine:
        return not process_alive(pid, _int(sup.get("pid_start")))
    beat = _number(live.get("heartbeat_unix")) or _parse_time(record.get("started"))
    return beat is None or (now or time.time()) - beat > STALE_S


def view(stored: StoredRecord, now: float | None = None) -> dict[str, Any]:
    """The live facts of one record for `runs`: status (never a stale "running"), step, total_steps, loss,
    speed, eta, elapsed_s, pid, last_seen, died_at."""
    now = time.time() if now is None else now
    data = stored.data
    status = data.get("status")
    status = status if isinstance(status, str) else "?"
    sup = _table(data.get("supervisor"))
    out: dict[str, Any] = {
        "run_id": stored.run_id,
        "status": status,
        "pid": _int(sup.get("pid")),
        "host": sup.get("host") if isinstance(sup.get("host"), str) else None,
        "detached": bool(sup.get("detached")),
        "step": _int(data.get("steps_done")),
        "total_steps": _int(data.get("steps_total")),
        "loss": _number(data.get("last_loss")),
        "speed": None,
        "eta": None,
        "elapsed_s": _number(data.get("duration_s")),
        "last_seen": None,
        "died_at": None,
    }
    died = _table(data.get("died"))
    if status == "died":
        out["died_at"] = died.get("at") if isinstance(died.get("at"), str) else data.get("finished")
    if status != "running":
        return out
    live = read_live(stored.folder)
    started = _number(live.get("started_unix")) or _parse_time(data.get("started"))
    out.update(
        step=_int(live.get("step")),
        total_steps=_int(live.get("total_steps")),
        loss=_number(live.get("loss")),
        speed=live.get("speed") if isinstance(live.get("speed"), str) else None,
        eta=live.get("eta") if isinstance(live.get("eta"), str) else None,
        last_seen=live.get("heartbeat") if isinstance(live.get("heartbeat"), str) else None,
        pgid=_int(live.get("pgid")),
    )
    gone = supervisor_gone(data, live, now)
    if gone is None:
        out["status"] = "unknown"
        out["cause"] = "written by a loratrain that kept no supervisor pid: cannot tell whether it still runs"
        return out
    if gone:
        out["status"] = "died"
        out["died_at"] = out["last_seen"] or data.get("started")
        out["cause"] = f"its supervisor (pid {out['pid']}) ended without closing the record"
        return out
    if started is not None:
        out["elapsed_s"] = round(max(0.0, now - started), 1)
    return out


def still_running(folder: Path) -> bool:
    """Whether the run in `folder` still runs (its record says so and its supervisor lives)."""
    from loratrain.launch.record import read_record

    stored = read_record(folder)
    return stored.problem is None and view(stored)["status"] == "running"


def follow(path: Path, running, start: int = 0, poll_s: float = 0.2, check_s: float = 1.0) -> Iterator[bytes]:
    """The file's bytes from offset `start`, then what is appended, until `running()` turns False and the
    rest is read. `running` is asked at most every `check_s` seconds."""
    offset = start
    next_check = 0.0
    alive = True
    while True:
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read(1 << 20)
        except OSError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            yield chunk
            continue
        if not alive:
            return
        now = time.monotonic()
        if now >= next_check:
            next_check = now + check_s
            alive = running()  # one more read after it ended: what came last
            if not alive:
                continue
        time.sleep(poll_s)


def request_stop(folder: Path) -> None:
    """Note in the record folder who asked the run to stop, so its record can say so (best effort)."""
    write_live_file(
        Path(folder) / STOP_NAME,
        {"by": "loratrain stop", "pid": os.getpid(), "host": socket.gethostname(), "time": _iso(time.time())},
    )


def stop_request(folder: Path) -> dict[str, Any] | None:
    from loratrain import untrusted

    try:
        data = untrusted.json_loads((Path(folder) / STOP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
