"""Loss and learning-rate curves from the TensorBoard event files sd-scripts writes.

sd-scripts (train_util.prepare_accelerator / init_trackers, at 48d368f) logs into
`<logging_dir>/<log_prefix><YYYYmmddHHMMSS>/<log_tracker_name or "network_train">/`, one timestamped folder
per launch, through accelerate's TensorBoard tracker. train_network.py's `generate_step_logs` writes per step
`loss/current`, `loss/average` and one `lr/<group>` per parameter group (`lr/unet`, `lr/textencoder`,
`lr/group<i>`, or the network's own descriptions), plus `lr/d*lr/...` for D-Adaptation/Prodigy and `norm/*`,
`max_norm/*` when asked; `loss/epoch_average` and `loss/validation/epoch_*` are logged with the epoch as the
step. The files are read with TensorBoard's own EventAccumulator.

A launch that resumes from a saved state starts logging at a step above 1 in a new folder: the folders of one
training are chained (an earlier folder whose steps end before the later one starts) and the joins marked.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TRACKER = "network_train"
EPOCH_TAGS = ("loss/epoch_average", "loss/validation/epoch_average", "loss/validation/epoch_divergence")
_STAMP = re.compile(r"(\d{14})$")


@dataclass
class Series:
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class Curves:
    series: dict[str, Series] = field(default_factory=dict)  # tag -> values by step (or epoch, see EPOCH_TAGS)
    folders: list[Path] = field(default_factory=list)  # the event folders read, oldest first
    resumes: list[int] = field(default_factory=list)  # steps where a resumed launch started logging
    reason: str = ""  # why there are no curves

    @property
    def last_step(self) -> int | None:
        ends = [s.steps[-1] for t, s in self.series.items() if s.steps and t not in EPOCH_TAGS]
        return max(ends) if ends else None


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased exponential moving average (NaN/inf points are passed through, not averaged in)."""
    out: list[float] = []
    last = 0.0
    n = 0
    for v in values:
        if v != v or v in (float("inf"), float("-inf")):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight**n))
    return out


def smoothing_weight(points: int) -> float:
    """About 1% of the run per averaging window, between TensorBoard-like 0.6 and 0.99."""
    span = min(200.0, max(4.0, points / 100))
    return round(1 - 2 / (span + 1), 4)


@dataclass
class _Launch:
    folder: Path  # the timestamped folder
    stamp: dt.datetime
    event_dirs: list[Path]


def _launches(logging_dir: Path, prefix: str) -> list[_Launch]:
    found: list[_Launch] = []
    for child in logging_dir.iterdir():
        if not child.is_dir() or not child.name.startswith(prefix):
            continue
        m = _STAMP.search(child.name)
        if m is None or len(child.name) != len(prefix) + 14:
            continue
        try:
            stamp = dt.datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
        except ValueError:
            continue
        dirs = sorted({p.parent for p in child.rglob("events.out.tfevents*") if p.is_file()})
        if dirs:
            found.append(_Launch(child, stamp, dirs))
    return sorted(found, key=lambda x: x.stamp)


def _read(launch: _Launch, tracker: str) -> dict[str, Series]:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    dirs = [d for d in launch.event_dirs if d.name == tracker] or launch.event_dirs
    merged: dict[str, dict[int, float]] = {}
    for d in dirs:
        acc = EventAccumulator(str(d), size_guidance={SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            points = merged.setdefault(tag, {})
            for e in acc.Scalars(tag):
                points[int(e.step)] = float(e.value)
    return {tag: Series(sorted(p), [p[s] for s in sorted(p)]) for tag, p in merged.items()}


def _first_step(data: dict[str, Series]) -> int | None:
    firsts = [s.steps[0] for t, s in data.items() if s.steps and t not in EPOCH_TAGS]
    return min(firsts) if firsts else None


def _last_step(data: dict[str, Series]) -> int | None:
    lasts = [s.steps[-1] for t, s in data.items() if s.steps and t not in EPOCH_TAGS]
    return max(lasts) if lasts else None


def read_curves(
    logging_dir: Path | None,
    prefix: str | None,
    tracker: str | None,
    log_with: str | None = None,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> Curves:
    """The curves of one training. `window` (local times) picks the launch that began in it (a run record's
    start and end); without one the newest launch is taken. Never raises for a missing or empty folder:
    `reason` says why there is nothing."""
    curves = Curves()
    if logging_dir is None:
        curves.reason = (
            "logging_dir was not set, so sd-scripts wrote no TensorBoard events; set "
            "logging.logging_dir (e.g. <output_dir>/logs) to get loss and learning-rate curves"
        )
        return curves
    if log_with == "wandb":
        curves.reason = 'log_with = "wandb": the curves went to Weights & Biases, not to TensorBoard event files'
        return curves
    if not logging_dir.is_dir():
        curves.reason = f"logging_dir {logging_dir} does not exist (yet): no events were logged"
        return curves
    prefix = prefix or ""
    launches = _launches(logging_dir, prefix)
    if not launches:
        curves.reason = (
            f"no TensorBoard event files in {logging_dir}/{prefix}<YYYYmmddHHMMSS>/ "
            "(the run may not have reached its first step yet)"
        )
        return curves
    if window is not None:
        inside = [x for x in launches if window[0] <= x.stamp <= window[1]]
        if not inside:
            curves.reason = (
                f"none of the {len(launches)} launch folders in {logging_dir} began while this run "
                f"ran ({window[0]:%Y-%m-%d %H:%M:%S} to {window[1]:%Y-%m-%d %H:%M:%S})"
            )
            return curves
        chosen = inside[-1]
    else:
        chosen = launches[-1]
    tracker = tracker or DEFAULT_TRACKER
    chain = [(chosen, _read(chosen, tracker))]
    # Walk back through resumed launches: an earlier folder that logged steps before this one started.
    for earlier in reversed(launches[: launches.index(chosen)]):
        start = _first_step(chain[0][1])
        if start is None or start <= 1:
            break
        data = _read(earlier, tracker)
        first, last = _first_step(data), _last_step(data)
        if first is None or last is None or first >= start:
            break
        chain.insert(0, (earlier, data))
    for i, (launch, data) in enumerate(chain):
        start = _first_step(data)
        if start is not None and start > 1:
            curves.resumes.append(start)
        for tag, s in data.items():
            into = curves.series.setdefault(tag, Series())
            if tag not in EPOCH_TAGS and start is not None:
                # A resumed launch redoes the steps after its saved state: its values replace the old ones.
                keep = [j for j, step in enumerate(into.steps) if step < start]
                into.steps = [into.steps[j] for j in keep]
                into.values = [into.values[j] for j in keep]
            into.steps.extend(s.steps)
            into.values.extend(s.values)
        curves.folders.append(launch.folder)
    if not any(s.steps for s in curves.series.values()):
        curves.reason = f"the event files in {chosen.folder} hold no scalars yet"
    return curves
