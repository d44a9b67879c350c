"""Compare runs side by side: a ranking by their last validation loss (else training loss), a sample grid
(rows run x step, columns the prompts) and every run's curves, from the same per-run reports `report` builds.

Validation loss is what sd-scripts (train_network.py at 48d368f) logs when `validation_split` > 0:
`loss/validation/step_average` at the global step every `validate_every_n_steps`, and
`loss/validation/epoch_average` with the epoch as its step at each epoch's end (every `validate_every_n_epochs`).
Both are measured at fixed timesteps on the held-out images, so runs that share the split compare fairly.
Samples are compared only where they are comparable: a prompt whose text or seed differs between runs, or that
sets no seed (sd-scripts then draws a new random one each time), is flagged, never silently put side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain.report import build as build_mod
from loratrain.report import run as run_mod

VALIDATION_TAGS = ("loss/validation/epoch_average", "loss/validation/step_average")
TRAINING_TAGS = ("loss/epoch_average", "loss/average")
# Keys that differ between every pair of runs anyway, left out of the "varied" columns.
_OWN = {"saving.output_dir", "saving.output_name", "logging.logging_dir", "logging.log_prefix"}


@dataclass
class Compared:
    name: str
    values: dict[str, Any]
    report: build_mod.Report

    @property
    def output_dir(self) -> Path:
        return self.report.run.output_dir

    def last(self, tag: str) -> float | None:
        s = self.report.curves.series.get(tag)
        return s.values[-1] if s is not None and s.values else None

    @property
    def steps(self) -> int | None:
        last = self.report.curves.last_step
        if last is not None:
            return last
        saved = self.report.save_steps()
        return max(saved) if saved else self.report.run.record.get("steps_done")


@dataclass
class Comparison:
    runs: list[Compared]
    metric: str | None
    metric_kind: str  # "validation", "training" or "none"
    ranking: list[Compared]  # best first; runs without the metric last
    prompts: list[int] = field(default_factory=list)
    prompt_texts: dict[int, str] = field(default_factory=dict)
    mismatched: dict[int, str] = field(default_factory=dict)  # prompt index -> why its samples do not compare
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[Compared, tuple[str, int]]]:
        """The grid's rows: each run's sample columns (steps or epochs), run by run in ranking order."""
        return [(c, col) for c in self.ranking for col in c.report.grid.columns]

    def to_json(self) -> dict[str, Any]:
        ranking = []
        for place, c in enumerate(self.ranking, start=1):
            value = c.last(self.metric) if self.metric else None
            bad = [h.path.name for h in c.report.saves if not h.ok]
            ranking.append(
                {
                    "place": place,
                    "run": c.name,
                    "output_dir": str(c.output_dir),
                    "values": c.values,
                    "metric": self.metric,
                    "value": None if value is None or _nonfinite(value) else value,
                    "steps": c.steps,
                    "status": c.report.run.status,
                    "saves": len(c.report.saves),
                    "flagged_saves": bad,
                }
            )
        cells = []
        for c, col in self.rows():
            for index in self.prompts:
                s = c.report.grid.cells.get((index, col))
                if s is None:
                    continue
                cells.append(
                    {
                        "run": c.name,
                        "output_dir": str(c.output_dir),
                        "step": col[1] if col[0] == "step" else None,
                        "epoch": col[1] if col[0] == "epoch" else None,
                        "prompt_index": index,
                        "seed": s.seed,
                        "file": str(s.path),
                        "comparable": index not in self.mismatched,
                    }
                )
        return {
            "metric": {"tag": self.metric, "kind": self.metric_kind},
            "ranking": ranking,
            "grid": {
                "prompts": [{"index": i, "prompt": self.prompt_texts.get(i)} for i in self.prompts],
                "mismatched": [{"prompt_index": i, "why": w} for i, w in sorted(self.mismatched.items())],
                "cells": cells,
            },
            "notes": self.notes,
        }


def _nonfinite(v: float) -> bool:
    return math.isnan(v) or math.isinf(v)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                out.update(_flatten(v, key))
            else:
                out[key] = v
    return out


def varied_values(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For runs given one by one: the config keys (from their records) whose values differ between them."""
    flat = [_flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f} - _OWN)
    differing = [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]
    return [{k: f.get(k) for k in differing} for f in flat]


def locate(targets: list[Path]) -> list[tuple[str, dict[str, Any], run_mod.RunInfo]]:
    """Each target -> (name, varied values, run). A sweep folder gives all its runs, with its recorded values."""
    from loratrain.sweep import record

    found: list[tuple[str, dict[str, Any] | None, run_mod.RunInfo]] = []
    info: run_mod.RunInfo
    for target in targets:
        if record.is_sweep(target):
            sweep = record.read(target)
            for r in sweep.runs:
                out = Path(r.output_dir)
                if not out.is_absolute():
                    out = Path(sweep.cwd or ".") / out
                if out.is_dir():
                    info = run_mod.locate(out)
                else:
                    info = run_mod.RunInfo(output_dir=out, args={"output_dir": out, "output_name": r.output_name})
                found.append((r.name, r.values, info))
        else:
            info = run_mod.locate(target)
            found.append((info.output_name or info.output_dir.name, None, info))
    loose = [i for i, f in enumerate(found) if f[1] is None]
    if loose:
        diff = varied_values([found[i][2].record.get("config") or {} for i in loose])
        for i, differing in zip(loose, diff):
            found[i] = (found[i][0], differing, found[i][2])
    names: dict[str, int] = {}
    out_list = []
    for name, values, info in found:
        names[name] = names.get(name, 0) + 1
        out_list.append((name if names[name] == 1 else f"{name} ({names[name]})", values or {}, info))
    return out_list


def _pick_metric(runs: list[Compared]) -> tuple[str | None, str]:
    for kind, tags in (("validation", VALIDATION_TAGS), ("training", TRAINING_TAGS)):
        best, count = None, 0
        for tag in tags:  # the tag the most runs logged; ties go to the earlier (epoch average first)
            n = sum(1 for c in runs if c.last(tag) is not None)
            if n > count:
                best, count = tag, n
        if best is not None:
            return best, kind
    return None, "none"


def _rank(runs: list[Compared], metric: str | None) -> list[Compared]:
    def key(c: Compared):
        v = c.last(metric) if metric else None
        missing = v is None or _nonfinite(v)
        return (missing, v if not missing else 0.0)

    return sorted(runs, key=key)


def _check_prompts(cmp: Comparison) -> None:
    texts: dict[int, dict[str, str]] = {}
    seeds: dict[int, dict[str, set]] = {}
    for c in cmp.runs:
        g = c.report.grid
        for index in g.rows:
            if index in g.prompts:
                texts.setdefault(index, {})[c.name] = g.prompts[index]
        for (index, _col), s in g.cells.items():
            seeds.setdefault(index, {}).setdefault(c.name, set()).add(s.seed)
    indices = sorted(set(texts) | set(seeds))
    cmp.prompts = indices
    have = {c.name for c in cmp.runs if c.report.grid.cells}
    for index in indices:
        by_run = texts.get(index, {})
        distinct = set(by_run.values())
        why: list[str] = []
        if len(distinct) > 1:
            why.append("its text differs between runs: " + "; ".join(f"{n}: {t!r}" for n, t in by_run.items()))
        elif distinct:
            cmp.prompt_texts[index] = next(iter(distinct))
        run_seeds = seeds.get(index, {})
        all_seeds = set().union(*run_seeds.values()) if run_seeds else set()
        if None in all_seeds:
            why.append("it sets no seed (--d), so sd-scripts draws every sample of it from new random noise")
        elif len(all_seeds) > 1:
            why.append(
                "its seed differs between runs: "
                + "; ".join(f"{n}: {', '.join(map(str, sorted(s)))}" for n, s in run_seeds.items())
            )
        missing = sorted(have - set(run_seeds))
        if missing and run_seeds:
            why.append("only some runs drew it (none in " + ", ".join(missing) + ")")
        if why:
            cmp.mismatched[index] = "; ".join(why)
    for index, reason in sorted(cmp.mismatched.items()):
        cmp.notes.append(f"prompt #{index} does not compare across runs: {reason}")


def compare(found: list[tuple[str, dict[str, Any], run_mod.RunInfo]], thumbnails: int | None = None) -> Comparison:
    runs = [Compared(name, values, build_mod.build(info, thumbnails=thumbnails)) for name, values, info in found]
    metric, kind = _pick_metric(runs)
    cmp = Comparison(runs=runs, metric=metric, metric_kind=kind, ranking=_rank(runs, metric))
    if kind == "validation":
        lacking = [c.name for c in runs if c.last(metric or "") is None]
        cmp.notes.append(f"ranked by the last {metric} (lower is better)")
        if lacking:
            cmp.notes.append(f"no {metric} logged by {', '.join(lacking)}: ranked last")
        splits = {repr(_extra(c, "validation_split")) for c in runs}
        seeds = {repr(_extra(c, "validation_seed") or _extra(c, "seed")) for c in runs}
        if len(splits) > 1 or len(seeds) > 1:
            cmp.notes.append(
                "the runs held out different validation images (validation_split or its seed differ): "
                "their validation losses are not measured on the same images"
            )
    elif kind == "training":
        cmp.notes.append(
            f"ranked by training loss ({metric}): no run logged a validation loss; set extra.validation_split "
            "and extra.validate_every_n_steps for an honest number to rank by"
        )
    else:
        cmp.notes.append("no run logged a loss (no TensorBoard events): not ranked")
    _check_prompts(cmp)
    for c in runs:
        if c.report.curves.reason:
            cmp.notes.append(f"{c.name}: no curves ({c.report.curves.reason})")
        if not c.report.grid.cells:
            cmp.notes.append(f"{c.name}: no samples ({c.report.grid.reason})")
        bad = [h.path.name for h in c.report.saves if not h.ok]
        if bad:
            cmp.notes.append(f"{c.name}: flagged saves: {', '.join(bad)}")
    return cmp


def _extra(c: Compared, key: str) -> Any:
    config = c.report.run.record.get("config") or {}
    for table in ("extra", "training"):
        section = config.get(table)
        if isinstance(section, dict) and key in section:
            return section[key]
    return None
