"""A sweep on disk: DIR/<run name>.toml per run and DIR/sweep.toml recording the base, the axes and the runs.

sweep.toml is what `compare`, `plan` and `fit` read back, so a sweep folder can be passed where a config is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain.atomic import write_text
from loratrain.errors import ConfigError, Problem
from loratrain.importers.toml_text import dumps
from loratrain.sweep.build import Sweep

SWEEP_FILE = "sweep.toml"


@dataclass
class RecordedRun:
    name: str
    config: Path  # absolute
    output_dir: str
    output_name: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordedSweep:
    folder: Path
    base: str
    mode: str
    axes: dict[str, list[Any]]
    runs: list[RecordedRun]
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)
    cwd: str = ""  # the folder the sweep was written from: relative paths in its configs are relative to it


def is_sweep(path: Path) -> bool:
    return path.is_dir() and (path / SWEEP_FILE).is_file()


def write(sweep: Sweep, folder: Path, force: bool = False) -> Path:
    """The valid runs' configs and sweep.toml (skipped runs are recorded with their problems). Nothing is
    written when folder already holds a sweep, unless `force`."""
    target = folder / SWEEP_FILE
    if target.exists() and not force:
        raise ConfigError(
            [
                Problem(
                    "already holds a sweep",
                    key="-o",
                    file=str(target),
                    fix="choose another folder with -o, or --force to write over it",
                )
            ]
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError([Problem("exists and is not a folder", key="-o", file=str(folder), fix="choose a folder")])
    folder.mkdir(parents=True, exist_ok=True)
    varied = ", ".join(a.key for a in sweep.axes)
    for run in sweep.valid:
        header = [
            f"Run {run.name} of the sweep in {folder} (loratrain sweep), from {sweep.base}.",
            f"Varied: {run.values_text()}.",
        ]
        write_text(folder / f"{run.name}.toml", dumps(run.data, header=header))
    doc: dict[str, Any] = {
        "base": str(sweep.base.resolve()),
        "mode": sweep.mode,
        "cwd": str(Path.cwd()),
        "axes": {a.key: list(a.values) for a in sweep.axes},
        "runs": {
            r.name: {
                "config": f"{r.name}.toml",
                "output_dir": r.output_dir,
                "output_name": r.name,
                "values": dict(r.values),
            }
            for r in sweep.valid
        },
    }
    if sweep.invalid:
        doc["skipped"] = {
            r.name: {"values": dict(r.values), "problems": [p.render() for p in r.problems]} for r in sweep.invalid
        }
    header = [
        f"loratrain sweep: {len(sweep.valid)} runs varying {varied} ({sweep.mode}).",
        "Relative paths in the run configs mean what they mean in the base: run them from `cwd`.",
    ]
    write_text(target, dumps(doc, header=header))
    return target


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read(folder: Path) -> RecordedSweep:
    from loratrain.config.loader import read_toml

    path = folder / SWEEP_FILE
    data, _ = read_toml(path)
    runs_table = _table(data.get("runs"))
    if not runs_table:
        raise ConfigError(
            [Problem("records no runs", file=str(path), fix="write the sweep again with loratrain sweep")]
        )
    runs = []
    for name, entry in runs_table.items():
        entry = _table(entry)
        config = Path(str(entry.get("config") or f"{name}.toml"))
        runs.append(
            RecordedRun(
                name=str(name),
                config=config if config.is_absolute() else (folder / config).resolve(),
                output_dir=str(entry.get("output_dir") or ""),
                output_name=str(entry.get("output_name") or name),
                values=_table(entry.get("values")),
            )
        )
    return RecordedSweep(
        folder=folder,
        base=str(data.get("base") or ""),
        mode=str(data.get("mode") or "grid"),
        axes={k: list(v) if isinstance(v, list) else [v] for k, v in _table(data.get("axes")).items()},
        runs=runs,
        skipped=_table(data.get("skipped")),
        cwd=str(data.get("cwd") or ""),
    )


def last_run(args: dict[str, Any]) -> dict[str, Any]:
    """A run's newest record (by its output_dir and output_name): status, duration and steps done.
    Read with launch/record.py's one reader; a "running" record whose supervisor is gone is "died" (launch/live.py)."""
    from loratrain.launch.live import view
    from loratrain.launch.record import newest_record

    none: dict[str, Any] = {"status": "not run", "duration_s": None, "steps_done": None}
    if not args.get("output_dir"):
        return none
    stored = newest_record(Path(str(args["output_dir"])), str(args.get("output_name") or "last"))
    if stored is None:
        return none
    rec = stored.data
    return {
        "status": str(view(stored)["status"] or "unknown"),
        "duration_s": rec.get("duration_s"),
        "steps_done": rec.get("steps_done"),
    }


def sweep_time(rows: list[dict[str, Any]]) -> tuple[float | None, str]:
    """The sweep's time from what has trained: recorded durations, and the rest's steps at the measured pace.
    loratrain has no model of a step's time, so before the first run there is none. Rows hold total_steps,
    status, duration_s, steps_done (plan's steps and last_run's record)."""
    # A succeeded run trained all its planned steps; a record's steps_done reads its log's last bar line.
    done = {i: r["total_steps"] if r["status"] == "succeeded" else r["steps_done"] for i, r in enumerate(rows)}
    timed = [i for i, r in enumerate(rows) if isinstance(r["duration_s"], (int, float)) and done[i]]
    if not timed:
        return None, (
            "no run of this sweep has trained yet, and loratrain has no step-time model: the time is known "
            "after the first run (plan DIR again)"
        )
    per_step = sum(rows[i]["duration_s"] for i in timed) / sum(done[i] for i in timed)
    known = sum(r["duration_s"] for r in rows if r["status"] == "succeeded" and r["duration_s"])
    left = sum(r["total_steps"] for r in rows if r["status"] != "succeeded")
    return known + left * per_step, f"measured: {per_step:.3g} s per step over the {len(timed)} run(s) trained so far"
