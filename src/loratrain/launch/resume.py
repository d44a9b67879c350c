"""Resume a run from an sd-scripts state folder so the steps of all launches add up to the plan.

What sd-scripts (train_network.py at 48d368f) does on `--resume DIR`:
- accelerate loads the network, optimizer, scheduler and RNG states; the load hook reads
  `DIR/train_state.json` = {"current_epoch", "current_step"} written when the state was saved.
  `current_step` is the step counter *of the launch that saved it* (`global_step`), which starts
  at 0 in a fresh launch but not at the cumulative step in a resumed one, so resuming a resumed run
  from train_state.json alone starts from the wrong place (and trains extra epochs).
- `--initial_step N` (optimizer steps, all epochs) overrides train_state.json (with a warning).
- Without `--skip_until_initial_step`: epoch_to_start = N // S (S = optimizer steps per epoch),
  global_step restarts at 0 and that epoch is trained from its first batch: a state saved inside
  an epoch repeats the steps of that epoch already done.
- With `--skip_until_initial_step`: N is multiplied by gradient_accumulation_steps (batches), then
  epoch_to_start = N*GA // S (dividing batches by optimizer steps: right only when GA = 1), whole
  epochs of L batches are subtracted, and global_step restarts at what is left, not at N.
- The loop ends when global_step reaches max_train_steps or after the last epoch.

So loratrain takes the cumulative step from its own run records (the record of the launch that
wrote the state knows where that launch started) and passes `--resume DIR --initial_step C`, with
`--skip_until_initial_step` when gradient_accumulation_steps is 1 (exact) and without it otherwise
(the epoch is restarted; the repeat is reported). `simulate` reproduces sd-scripts' arithmetic, so
`plan --resume` and the run record say what the launch will do, including when sd-scripts cannot
land exactly on the plan.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from loratrain import untrusted
from loratrain.errors import ConfigError, Problem

STATE_FILE = "train_state.json"
# sd-scripts' state folder names (library/train_util.py: EPOCH_STATE_NAME, STEP_STATE_NAME, LAST_STATE_NAME).
_STATE_NAMES = (
    re.compile(r"^(?P<name>.+)-(?P<epoch>\d{6})-state$"),
    re.compile(r"^(?P<name>.+)-step(?P<step>\d{8})-state$"),
    re.compile(r"^(?P<name>.+)-state$"),
)
# What has to match between the launch that wrote a state and this one.
NETWORK_KEYS = ("network_module", "network_dim", "network_alpha", "network_args", "conv_dim", "conv_alpha")
SHAPE_KEYS = (("training", "train_batch_size"), ("training", "gradient_accumulation_steps"))
SHAPE_TABLES = ("dataset", "buckets")


def state_folders(output_dir: Path, output_name: str | None) -> list[Path]:
    """The state folders sd-scripts wrote for this output name, newest first (by train_state.json's time)."""
    names = {output_name} if output_name else {"last", "epoch", "at"}
    found: list[Path] = []
    if not output_dir.is_dir():
        return found
    for child in output_dir.iterdir():
        if not child.is_dir() or not (child / STATE_FILE).is_file():
            continue
        for pattern in _STATE_NAMES:
            m = pattern.match(child.name)
            if m and m.group("name") in names:
                found.append(child)
                break
    return sorted(found, key=lambda p: (p / STATE_FILE).stat().st_mtime_ns, reverse=True)


def read_train_state(state_dir: Path) -> dict[str, Any]:
    try:
        data = untrusted.json_loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        return {"current_epoch": int(data["current_epoch"]), "current_step": int(data["current_step"])}
    except (OSError, ValueError, KeyError, TypeError, OverflowError) as exc:  # OverflowError: int(1e400)
        raise ConfigError(
            [
                Problem(
                    f"{state_dir} is not an sd-scripts state folder: {STATE_FILE} unreadable ({exc})",
                    key="--resume",
                    value=str(state_dir),
                    fix="name a folder sd-scripts wrote with save_state (it holds train_state.json)",
                )
            ]
        ) from None


def load_records(output_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable run record under output_dir, oldest first (a damaged record is no record: record.py)."""
    from loratrain.launch.record import RUNS_FOLDER, records_in

    return [(r.folder, r.data) for r in records_in(output_dir / RUNS_FOLDER) if r.problem is None]


def producing_record(state_dir: Path, records: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any] | None:
    """The newest record whose launch wrote this state folder's train_state.json."""
    wanted = f"{state_dir.name}/{STATE_FILE}"
    for _, data in reversed(records):
        if any(f.get("path", "").replace(os.sep, "/") == wanted for f in data.get("files") or []):
            return data
    return None


def launch_chain(
    record: dict[str, Any], records: list[tuple[Path, dict[str, Any]]]
) -> list[tuple[Path, dict[str, Any]]]:
    """The earlier launches of the run `record` resumes, oldest first (not `record` itself): the launch that
    wrote its state folder, the one that wrote that launch's state, and so on."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    current = record
    seen: set[str] = set()
    while isinstance(current.get("resume"), dict) and current["resume"].get("state_dir"):
        started = str(current.get("started", ""))
        wanted = f"{Path(str(current['resume']['state_dir'])).name}/{STATE_FILE}"
        earlier = [
            (folder, data)
            for folder, data in records
            # strictly earlier: `current` itself (loaded again into `records`, so not the same object) may have
            # rewritten the same state folder, as sd-scripts' end-of-training `<output_name>-state` is
            if str(data.get("started", "")) < started
            and any(str(f.get("path", "")).replace(os.sep, "/") == wanted for f in data.get("files") or [])
        ]
        if not earlier or str(earlier[-1][0]) in seen:
            break
        seen.add(str(earlier[-1][0]))
        chain.insert(0, earlier[-1])
        current = earlier[-1][1]
    return chain


def own_outputs(output_dir: Path, chain: list[tuple[Path, dict[str, Any]]]) -> frozenset[Path]:
    """The files the launches of a run wrote into output_dir (paths as their records list them)."""
    out = set()
    for _, data in chain:
        for f in data.get("files") or []:
            if isinstance(f, dict) and f.get("path"):
                out.add((output_dir / str(f["path"])).resolve())
    return frozenset(out)


@dataclass(frozen=True)
class Launch:
    """What sd-scripts does with one launch's arguments (see the module doc)."""

    epoch_to_start: int  # 0-based epoch index the loop starts at
    start_global_step: int  # sd-scripts' global_step when training begins
    start_position: int  # the cumulative step the first trained step follows
    steps: int  # optimizer steps this launch trains
    bar_total: int  # what its progress bar shows as the total

    @property
    def end_position(self) -> int:
        return self.start_position + self.steps


def simulate(batches: int, accumulation: int, max_steps: int, initial_step: int, skip: bool) -> Launch:
    """sd-scripts' arithmetic for a launch: `batches` per epoch per process, `initial_step` in optimizer steps."""
    L, GA, M = max(1, batches), max(1, accumulation), max_steps
    S = math.ceil(L / GA)
    epochs = math.ceil(M / S)
    init, e0 = initial_step, 0
    if init > 0:
        if skip:
            init *= GA
            e0 = init // S
        else:
            e0 = init // S
            init = 0
    gs = 0
    if init > 0:
        init -= e0 * L
        gs = init
    start_gs = gs
    bar_total = M - init
    steps = 0
    for _epoch in range(e0, epochs):
        skip_n = 0
        if init > 0:
            skip_n, init = init, 0
        syncs = math.ceil(max(0, L - skip_n) / GA)
        if gs >= M:
            take = min(syncs, 1 if GA == 1 else 0)
        else:
            take = min(syncs, M - gs)
        steps += take
        gs += take
    start_position = e0 * S + (start_gs if skip and start_gs > 0 else 0)
    return Launch(e0, start_gs, start_position, steps, bar_total)


@dataclass
class ResumePlan:
    state_dir: Path
    cumulative_step: int  # where the state is, counted over all launches
    source: str  # how the cumulative step was found
    skip: bool
    launch: Launch
    steps_per_epoch: int
    batches_per_epoch: int
    total_steps: int
    epochs: int
    warnings: list[Problem] = field(default_factory=list)
    # Files this run's earlier launches wrote: resuming replaces them (its final model) without --force.
    own_files: frozenset[Path] = frozenset()

    @property
    def start_step(self) -> int:
        """The cumulative step this launch starts from (its progress adds to it)."""
        return self.launch.start_position

    @property
    def repeated_steps(self) -> int:
        return max(0, self.cumulative_step - self.launch.start_position)

    @property
    def predicted_total(self) -> int:
        return self.launch.end_position

    def set_overrides(self) -> list[str]:
        """--set items that make the launch resume as planned (sd-scripts' own flags, in [extra])."""
        items = [f"extra.resume={json.dumps(str(self.state_dir))}"]
        if self.cumulative_step > 0:
            items.append(f"extra.initial_step={self.cumulative_step}")
            items.append(f"extra.skip_until_initial_step={'true' if self.skip else 'false'}")
        return items

    def as_record(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "cumulative_step": self.cumulative_step,
            "cumulative_source": self.source,
            "initial_step": self.cumulative_step,
            "skip_until_initial_step": self.skip,
            "epoch_to_start": self.launch.epoch_to_start + 1,
            "start_step": self.start_step,
            # cumulative step = sd-scripts' global_step (and train_state.json's current_step) + offset, in this launch
            "offset": self.start_step - self.launch.start_global_step,
            "repeated_steps": self.repeated_steps,
            "steps_this_launch": self.launch.steps,
            "predicted_total": self.predicted_total,
            "planned_total": self.total_steps,
        }


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    diffs = []
    old_net, new_net = old.get("network") or {}, new.get("network") or {}
    for key in NETWORK_KEYS:
        if old_net.get(key) != new_net.get(key):
            diffs.append(f"network.{key}: {old_net.get(key)!r} then, {new_net.get(key)!r} now")
    for table, key in SHAPE_KEYS:
        a, b = (old.get(table) or {}).get(key), (new.get(table) or {}).get(key)
        if a != b:
            diffs.append(f"{table}.{key}: {a!r} then, {b!r} now")
    for table in SHAPE_TABLES:
        if (old.get(table) or {}) != (new.get(table) or {}):
            keys = sorted(set(old.get(table) or {}) | set(new.get(table) or {}))
            changed = [k for k in keys if (old.get(table) or {}).get(k) != (new.get(table) or {}).get(k)]
            diffs.append(f"{table}: {', '.join(changed)} changed")
    a = (old.get("accelerate") or {}).get("num_processes")
    b = (new.get("accelerate") or {}).get("num_processes")
    if a != b:
        diffs.append(f"accelerate.num_processes: {a!r} then, {b!r} now")
    return diffs


def _state_rank_problem(state_dir: Path, config: Mapping[str, Any]) -> str | None:
    """A LoRA state whose saved down-projection ranks are not this config's network_dim."""
    from loratrain.safetensors_header import read_header

    net = config.get("network") or {}
    dim = net.get("network_dim")
    weights = state_dir / "model.safetensors"
    if dim is None or not weights.is_file() or net.get("network_module") not in (None, "networks.lora"):
        return None
    try:
        header = read_header(weights)
    except Exception:  # unreadable: sd-scripts will say so itself
        return None
    tensors = header.get("tensors", header) if isinstance(header, dict) else {}
    ranks = {
        v["shape"][0]
        for k, v in tensors.items()
        if isinstance(v, dict) and k.endswith("lora_down.weight") and v.get("shape")
    }
    if ranks and ranks != {dim}:
        return f"its LoRA weights have rank {sorted(ranks)}, this config's network_dim is {dim}"
    return None


def plan_resume(
    state_dir: Path, config: Mapping[str, Any], schedule: Any, output_dir: Path, config_file: str = ""
) -> ResumePlan:
    """Check `state_dir` against this config and work out what to pass; ConfigError when it cannot resume."""
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        raise ConfigError(
            [
                Problem(
                    f"state folder {state_dir} does not exist",
                    key="--resume",
                    value=str(state_dir),
                    fix="name a folder sd-scripts wrote with save_state, or give no value to use the newest",
                )
            ]
        )
    state = read_train_state(state_dir)
    records = load_records(output_dir)
    record = producing_record(state_dir, records)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if record is not None:
        offset = int((record.get("resume") or {}).get("offset") or 0)
        cumulative = state["current_step"] + offset
        source = f"run record {record.get('started', '?')}: train_state.json step {state['current_step']} + {offset}"
        diffs = _differences(record.get("config") or {}, config)
        if diffs:
            problems.append(
                Problem(
                    f"{state_dir.name} was written by a run with a different network or dataset shape: "
                    + "; ".join(diffs),
                    key="--resume",
                    file=config_file,
                    value=str(state_dir),
                    fix="resume with the config that wrote it, or start a new run without --resume",
                )
            )
    else:
        cumulative = state["current_step"]
        source = f"train_state.json step {state['current_step']} (no loratrain record wrote this state: assumed a first launch)"
        warnings.append(
            Problem(
                f"no run record of loratrain wrote {state_dir.name}; its step {cumulative} is taken as "
                "cumulative, which is right only if that run was not itself resumed",
                key="--resume",
                severity="warning",
            )
        )
    rank = _state_rank_problem(state_dir, config)
    if rank:
        problems.append(
            Problem(
                f"{state_dir.name} does not fit this network: {rank}",
                key="network.network_dim",
                file=config_file,
                value=str(state_dir),
                fix="resume with the network it was trained with, or start a new run",
            )
        )
    total = schedule.total_steps
    if cumulative >= total:
        problems.append(
            Problem(
                f"{state_dir.name} is at step {cumulative} of {total}: the run is already complete",
                key="--resume",
                value=str(state_dir),
                fix="nothing to resume; raise max_train_steps/epochs to train on",
            )
        )
    if problems:
        raise ConfigError(problems)
    accum = schedule.gradient_accumulation_steps
    skip = accum == 1
    launch = simulate(schedule.batches_per_process, accum, total, cumulative, skip)
    plan = ResumePlan(
        state_dir,
        cumulative,
        source,
        skip,
        launch,
        schedule.steps_per_epoch,
        schedule.batches_per_process,
        total,
        schedule.epochs,
        warnings,
    )
    if record is not None:
        plan.own_files = own_outputs(output_dir, [*launch_chain(record, records), (Path(), record)])
    if plan.repeated_steps:
        warnings.append(
            Problem(
                f"with gradient_accumulation_steps = {accum} sd-scripts cannot skip to a step inside an epoch "
                f"(its skip multiplies by the accumulation twice): epoch {launch.epoch_to_start + 1} starts over and "
                f"steps {launch.start_position + 1}-{cumulative} are trained again",
                key="--resume",
                severity="warning",
                fix="save states at epoch ends (save_every_n_epochs) to resume exactly",
            )
        )
    if plan.predicted_total != total:
        warnings.append(
            Problem(
                f"sd-scripts will end this run at step {plan.predicted_total}, not the planned {total} (after a resume inside "
                f"an epoch it restarts global_step at {launch.start_global_step}, so max_train_steps is reached late)",
                key="--resume",
                severity="warning",
                fix="use max_train_epochs, or steps that are a whole number of epochs",
            )
        )
    return plan


def newest_state(output_dir: Path, output_name: str | None) -> Path:
    found = state_folders(output_dir, output_name)
    if not found:
        raise ConfigError(
            [
                Problem(
                    f"no state folder of {output_name or 'this run'} in {output_dir} to resume from",
                    key="--resume",
                    value=str(output_dir),
                    fix="set saving.save_state = true (or extra.save_state_on_train_end) so runs can be resumed, "
                    "or name the state folder",
                )
            ]
        )
    return found[0]


def remaining_events(events: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """Saves or samples (as the plan lists them) still to come after cumulative step `start`."""
    return [e for e in events if e.get("step", 0) > start and e.get("kind") != "first"]


@dataclass(frozen=True)
class Schedule:
    """The numbers of the plan that resuming needs (from loratrain.plan's step arithmetic)."""

    batches_per_process: int
    gradient_accumulation_steps: int
    steps_per_epoch: int
    total_steps: int
    epochs: int
    saves: list = field(default_factory=list)
    samples: list = field(default_factory=list)


def schedule_from_plan(data: Mapping[str, Any]) -> Schedule:
    return Schedule(
        int(data["batches_per_process"]),
        int(data.get("gradient_accumulation_steps") or 1),
        int(data["steps_per_epoch"]),
        int(data["total_steps"]),
        int(data["epochs"]),
        list(data.get("saves") or []),
        list(data.get("samples") or []),
    )
