"""Assemble a report's numbers from a located run: curves, samples, save health and the record's facts.

`Report.to_json()` is what `loratrain report --json` prints; figures.py and html.py draw from the same object.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain.report import curves as curves_mod
from loratrain.report import health as health_mod
from loratrain.report import samples as samples_mod
from loratrain.report.run import RunInfo

# Files written up to this long before the record's start (clock skew, a slow first write) still count.
SLACK = dt.timedelta(seconds=120)


@dataclass
class Report:
    run: RunInfo
    curves: curves_mod.Curves
    grid: samples_mod.SampleGrid
    saves: list[health_mod.FileHealth]
    built: dt.datetime
    cause: str = ""
    notes: list[str] = field(default_factory=list)
    _thumb_jobs: list = field(default_factory=list, repr=False)  # (cell key, Future) still being made
    _thumbs: dict | None = field(default=None, repr=False)
    _cache: Any = field(default=None, repr=False)

    @property
    def thumbs(self) -> dict:
        """(prompt, column) -> (jpeg bytes, original size, thumbnail size), waiting for the ones still in work;
        a sample that could not be read (or is still being written) has none."""
        if self._thumbs is None:
            self._thumbs = {key: job.result() for key, job in self._thumb_jobs if job.result() is not None}
            self._thumb_jobs = []
            if self._cache is not None:
                self._cache.save()
        return self._thumbs

    @property
    def in_progress(self) -> bool:
        return self.run.status == "running"

    def facts(self) -> dict[str, Any]:
        rec = self.run.record
        argv = [str(a) for a in rec.get("argv") or []]
        return {
            "record": str(self.run.record_folder) if self.run.record_folder else None,
            "config_file": self.run.config_file or None,
            "status": self.run.status,
            "started": rec.get("started"),
            "finished": rec.get("finished"),
            "duration_s": rec.get("duration_s"),
            "exit_code": rec.get("exit_code"),
            "interrupted_by": rec.get("interrupted_by"),
            "cause": self.cause or None,
            "command": shlex.join(argv) if argv else None,
            "versions": rec.get("versions") or {},
            "sd_scripts": rec.get("sd_scripts") or {},
            "gpus": rec.get("gpus"),
            "config": rec.get("config") or {},
            "effective": self.run.view.facts() if self.run.view else None,
            "output_dir": str(self.run.output_dir),
            "log": str(self.run.log_path) if self.run.log_path else None,
            "launches": [
                {
                    "record": str(folder) if folder else None,
                    "started": data.get("started"),
                    "finished": data.get("finished"),
                    "status": data.get("status"),
                    "cumulative_steps": data.get("cumulative_steps"),
                    "resumed_from": (data.get("resume") or {}).get("state_dir"),
                }
                for folder, data in self.run.launches
            ]
            if self.run.record
            else [],
        }

    def to_json(self) -> dict[str, Any]:
        c = self.curves
        weight = curves_mod.smoothing_weight(max((len(s.steps) for s in c.series.values()), default=0))
        series = {}
        for tag, s in c.series.items():
            entry: dict[str, Any] = {
                "x": "epoch" if tag in curves_mod.EPOCH_TAGS else "step",
                "steps": s.steps,
                "values": s.values,
            }
            if tag.startswith("loss/") and tag not in curves_mod.EPOCH_TAGS:
                entry["smoothed"] = curves_mod.smooth(s.values, weight)
            series[tag] = entry
        g = self.grid
        return {
            "built": self.built.isoformat(timespec="seconds"),
            "in_progress": self.in_progress,
            "run": self.facts(),
            "curves": {
                "folders": [str(f) for f in c.folders],
                "resumes": c.resumes,
                "smoothing": weight,
                "saves": self.save_steps(),
                "series": series,
                "reason": c.reason or None,
            },
            "samples": {
                "folder": str(g.folder),
                "columns": [{"kind": k, "number": n, "label": g.label((k, n))} for k, n in g.columns],
                "rows": [{"index": i, "prompt": g.prompts.get(i)} for i in g.rows],
                "cells": [
                    {
                        "prompt": i,
                        "kind": col[0],
                        "number": col[1],
                        "file": str(s.path),
                        "seed": s.seed,
                        "saved": s.stamp.isoformat(),
                    }
                    for (i, col), s in sorted(g.cells.items())
                ],
                "skipped_other_runs": g.skipped,
                "reason": g.reason or None,
            },
            "saves": [
                {
                    "file": str(h.path),
                    "bytes": h.size_bytes,
                    "step": h.step,
                    "epoch": h.epoch,
                    "modules": h.modules,
                    "ok": h.ok,
                    "flags": h.flags,
                    "nonfinite_tensors": h.nonfinite,
                    "untrained_modules": h.untrained,
                    "unchecked_modules": h.unchecked,
                    "total_norm": h.total_norm,
                    "growth": h.growth,
                    "block_norms": h.block_norms,
                    "block_growth": h.block_growth,
                    "error": h.error or None,
                }
                for h in self.saves
            ],
            "notes": self.notes,
        }

    def save_steps(self) -> list[int]:
        return [h.step for h in self.saves if h.step is not None]


def _thumbnail(path: Path, size: int):
    try:
        return samples_mod.thumbnail_jpeg(path, size)
    except (OSError, ValueError):
        return None  # unreadable (or still being written): the grid says so


def failure_cause(run: RunInfo) -> str:
    """The record's own explanation if it has one, else the last exception line of the log's tail."""
    rec = run.record
    for key in ("cause", "failure"):
        value = rec.get(key)
        if isinstance(value, dict):
            value = "; ".join(str(value[k]) for k in ("cause", "message", "fix") if value.get(k))
        if value:
            return str(value)
    if rec.get("status") not in ("failed", "interrupted"):
        return ""
    if rec.get("interrupted_by"):
        return f"stopped by {rec['interrupted_by']}"
    log = run.log_path
    if log is None or not log.is_file():
        return ""
    from loratrain.launch import failures

    found = failures.classify(failures.read_tail(log), rec.get("exit_code"))
    if found is None:
        return ""
    return f"{found.cause}; {found.fix}" if found.fix else found.cause


def build(
    run: RunInfo, now: dt.datetime | None = None, thumbnails: int | None = None, cache_dir: Path | None = None
) -> Report:
    """Gather everything. With `thumbnails` (a pixel size), the sample thumbnails are made too. Files are read
    on a few threads while the event files (Python-bound) are parsed on this one; with `cache_dir`, files
    measured by an earlier build (same size and mtime) are not read again."""
    from concurrent.futures import ThreadPoolExecutor

    from loratrain.report.cache import ReportCache

    cache = ReportCache(cache_dir)

    now = now or dt.datetime.now()
    # Every launch of the run (a resumed run is one run): files written in any of their times are its own.
    windows = [(start - SLACK, end + SLACK) for start, end in run.windows(now) or []] or None
    window = (windows[0][0], windows[-1][1]) if windows else None  # the event folders: curves chain the launches
    a = run.args
    named = run.record_folder is not None or "output_name" in a
    prompt_file = Path(a["sample_prompts"]) if a.get("sample_prompts") else None
    grid = samples_mod.collect(
        run.output_dir, a.get("output_name"), any_name=not named, prompt_file=prompt_file, window=windows
    )
    files = health_mod.adapter_files(run.output_dir, a.get("output_name") if named else None, a.get("save_model_as"))
    if windows is not None:
        files = [p for p in files if samples_mod.inside(dt.datetime.fromtimestamp(p.stat().st_mtime), windows)]
    cells = list(grid.cells.items()) if thumbnails else []
    thumb_size = thumbnails or 0  # only used when there are cells, i.e. when thumbnails were asked for
    pool = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)))
    try:
        health_jobs = [pool.submit(cache.health, p, health_mod.check_file) for p in files]
        thumb_jobs = [(key, pool.submit(cache.thumbnail, s.path, thumb_size, _thumbnail)) for key, s in cells]
        logging_dir = Path(a["logging_dir"]) if a.get("logging_dir") else None
        curves = curves_mod.read_curves(
            logging_dir, a.get("log_prefix"), a.get("log_tracker_name"), a.get("log_with"), window=window
        )
        if logging_dir is None and run.record_folder is None and not run.config_file:
            curves.reason = (
                "a folder without a run record does not say where its TensorBoard events are (and it "
                "has no logs/ folder); give the run's config as RUN to read its logging_dir"
            )
        saves = health_mod.order_and_grow([job.result() for job in health_jobs])
        if not thumb_jobs:
            cache.save()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=False)  # the thumbnails go on while the caller draws the figures
    report = Report(
        run=run,
        curves=curves,
        grid=grid,
        saves=saves,
        built=now,
        cause=failure_cause(run),
        _thumb_jobs=thumb_jobs,
        _cache=cache,
    )
    if run.record_folder is None:
        report.notes.append(
            "no run record: paths come from "
            + ("the config" if run.config_file else "the folder")
            + "; command, versions and exit status are unknown"
        )
    if report.in_progress:
        report.notes.append("the run is still in progress: this is what exists so far")
    if a.get("save_model_as") and a["save_model_as"] != "safetensors":
        report.notes.append(f"save_model_as = {a['save_model_as']}: only .safetensors files are checked")
    return report
