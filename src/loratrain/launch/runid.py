"""Which run RUN means: a run id as `runs` prints it, a record folder, or an output_dir (its newest run).

A run id is its record folder's name (`<output_name>-<YYYYmmdd-HHMMSS>`). So that `logs`, `attach` and
`stop ID` work from any folder (the user reconnects to a machine and is in their home folder), every launch
adds its id and folder to a small index in loratrain's state folder (`$LORATRAIN_STATE_DIR`, else
`$XDG_STATE_HOME/loratrain`, else `~/.local/state/loratrain`): one file per run, named by the id, holding
the folder. The index is a convenience: writing it is best effort, and a folder that is gone is no entry.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from loratrain.launch.record import StoredRecord

STATE_ENV = "LORATRAIN_STATE_DIR"


def state_dir() -> Path:
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "loratrain"


def index_run(folder: Path) -> None:
    """Remember where run `folder.name` lives, so `logs/attach/stop ID` find it from any folder (best effort)."""
    runs = state_dir() / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        (runs / folder.name).write_text(str(Path(folder).resolve()) + "\n", encoding="utf-8")
    except OSError:
        pass


def indexed_runs() -> dict[str, Path]:
    """run id -> record folder of every indexed run whose folder still exists."""
    runs = state_dir() / "runs"
    found: dict[str, Path] = {}
    try:
        entries = list(runs.iterdir())
    except OSError:
        return found
    for entry in entries:
        try:
            folder = Path(entry.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            continue
        if folder.name == entry.name and folder.is_dir():
            found[entry.name] = folder
    return found


def known_runs(cwd: Path | None = None) -> list[str]:
    """The run ids `no such run` offers: the current folder's records and the indexed ones, newest first."""
    from loratrain.launch.record import records_in

    cwd = Path.cwd() if cwd is None else cwd
    here = [r.run_id for r in records_in(cwd)] if (cwd / "loratrain-runs").is_dir() else []
    indexed = sorted(indexed_runs().items(), key=lambda kv: _mtime(kv[1]))
    ids = list(dict.fromkeys(list(reversed(here)) + [k for k, _ in reversed(indexed)]))
    return ids


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _run_folder(run: str, cwd: Path) -> Path | None:
    from loratrain.launch.record import RECORD_NAME, newest_record, records_folder

    path = Path(run).expanduser()
    path = path if path.is_absolute() else cwd / path
    if path.is_file() and path.name == RECORD_NAME:
        return path.parent
    if path.is_dir() and (path / RECORD_NAME).is_file():
        return path
    if path.is_dir() and records_folder(path).is_dir():
        newest = newest_record(path)
        return newest.folder if newest is not None else None
    if "/" in run or os.sep in run or run in ("", ".", ".."):
        return None
    pattern = f"*/loratrain-runs/{glob.escape(run)}/{RECORD_NAME}"
    here = [
        f for f in [records_folder(cwd) / run, *(p.parent for p in cwd.glob(pattern))] if (f / RECORD_NAME).is_file()
    ]
    return here[0] if here else indexed_runs().get(run)


def find_run(run: str, cwd: Path | None = None) -> StoredRecord:
    """RUN as the user gave it: a run id as `runs` prints it, a record folder (or its record.json), or an
    output_dir (its newest run). Raises ConfigError "no such run" naming the runs that exist."""
    from loratrain.errors import ConfigError, Problem
    from loratrain.launch.record import RECORD_NAME, read_record

    cwd = Path.cwd() if cwd is None else cwd
    try:
        folder = _run_folder(run, cwd)
    except (OSError, ValueError):  # a name the file system cannot hold (too long, NUL): no such run
        folder = None
    if folder is not None:
        stored = read_record(folder)
        if stored.problem is None:
            return stored
        raise ConfigError(
            [
                Problem(
                    f"the run record is damaged: {stored.problem}",
                    file=str(folder / RECORD_NAME),
                    fix="give another run (`loratrain runs` lists them)",
                )
            ]
        )
    existing = known_runs(cwd)
    listed = ", ".join(existing[:10]) + (f" and {len(existing) - 10} more" if len(existing) > 10 else "")
    raise ConfigError(
        [
            Problem(
                f"no such run: {run}",
                key="RUN",
                value=run,
                fix=(f"runs that exist: {listed}; " if existing else "no run is recorded here or on this machine; ")
                + "give a run id as `loratrain runs` prints it, a record folder or an output_dir",
            )
        ]
    )
