"""Batches, steps, epochs, and when sd-scripts saves and samples (train_network.py's arithmetic).

- A dataset's batches per epoch = sum over its buckets of ceil(items / batch_size); items count repeats.
- `max_train_epochs` (when set) replaces `max_train_steps` with epochs * ceil(batches / processes / accumulation).
- Steps per epoch = ceil(ceil(batches / processes) / accumulation); epochs = ceil(total steps / steps per epoch).
- Step saves at every multiple of save_every_n_steps; epoch saves after epoch e when e % n == 0 and e is
  not the last; the final model is always saved. Samples at step multiples, or after epochs when
  sample_every_n_epochs is set (it wins), plus step 0 with sample_at_first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from loratrain.sdscripts import flags


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def batches_for_buckets(items_per_bucket: Iterable[int], batch_size: int) -> int:
    """One dataset's batches per epoch: a partial batch per bucket counts as a whole one."""
    return sum(ceil_div(n, batch_size) for n in items_per_bucket if n > 0)


def balance_regularisation(train_items: int, reg_repeats: list[int]) -> list[int]:
    """Effective repeats of each regularisation image (in sd-scripts' order), 0 where one goes unused.

    sd-scripts walks the reg images, taking each with its own repeats until the train-item count is
    reached; if one pass is not enough it keeps adding one repeat per image, round-robin.
    """
    result = [0] * len(reg_repeats)
    if not reg_repeats or train_items <= 0:
        return result
    n = 0
    first = True
    while n < train_items:
        for i, repeats in enumerate(reg_repeats):
            if first:
                result[i] = repeats
                n += repeats
            else:
                result[i] += 1
                n += 1
            if n >= train_items:
                break
        first = False
    return result


@dataclass(frozen=True)
class Event:
    """A save or a sample: after optimizer step `step`, during or at the end of epoch `epoch`."""

    step: int
    epoch: int
    kind: str  # saves: "step", "epoch", "final"; samples: "first", "step", "epoch"
    kept: bool = True  # saves only: still on disk at the end (save_last_n_* deletes older ones)

    def as_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "kind": self.kind, "kept": self.kept}


@dataclass
class Schedule:
    batches_per_epoch: int
    num_processes: int
    gradient_accumulation_steps: int
    batches_per_process: int
    steps_per_epoch: int
    total_steps: int
    epochs: int
    steps_from_epochs: bool  # True when max_train_epochs decided total_steps
    saves: list[Event] = field(default_factory=list)
    samples: list[Event] = field(default_factory=list)

    def epoch_of_step(self, step: int) -> int:
        return max(1, ceil_div(step, self.steps_per_epoch))


def schedule(
    batches_per_epoch: int,
    *,
    num_processes: int = 1,
    gradient_accumulation_steps: int | None = None,
    max_train_steps: int | None = None,
    max_train_epochs: int | None = None,
    save_every_n_epochs: int | None = None,
    save_every_n_steps: int | None = None,
    save_n_epoch_ratio: int | None = None,
    save_last_n_epochs: int | None = None,
    save_last_n_steps: int | None = None,
    sample_every_n_steps: int | None = None,
    sample_every_n_epochs: int | None = None,
    sample_at_first: bool = False,
    sampling: bool = True,
) -> Schedule:
    """The run's step/epoch plan. `batches_per_epoch` is the whole dataset group's, before sharding.

    `sampling` is False when there is no prompt file (sd-scripts then draws nothing).
    """
    if batches_per_epoch <= 0:
        raise ValueError("no batches: the dataset is empty")
    if gradient_accumulation_steps is None:
        gradient_accumulation_steps = flags.default("gradient_accumulation_steps")
    if max_train_steps is None:
        max_train_steps = flags.default("max_train_steps")
    procs = max(1, num_processes)
    accum = max(1, gradient_accumulation_steps)
    from_epochs = max_train_epochs is not None
    if max_train_epochs is not None:
        max_train_steps = max_train_epochs * ceil_div(batches_per_epoch, procs * accum)
    per_process = ceil_div(batches_per_epoch, procs)
    steps_per_epoch = ceil_div(per_process, accum)
    epochs = ceil_div(max_train_steps, steps_per_epoch)
    plan = Schedule(batches_per_epoch, procs, accum, per_process, steps_per_epoch, max_train_steps, epochs, from_epochs)
    if save_n_epoch_ratio:
        save_every_n_epochs = math.floor(epochs / save_n_epoch_ratio) or 1
    plan.saves = _saves(plan, save_every_n_epochs, save_every_n_steps, save_last_n_epochs, save_last_n_steps)
    if sampling:
        plan.samples = _samples(plan, sample_every_n_steps, sample_every_n_epochs, sample_at_first)
    return plan


def _epoch_end_step(plan: Schedule, epoch: int) -> int:
    return min(epoch * plan.steps_per_epoch, plan.total_steps)


# Most save/sample events a plan lists: `save_every_n_steps = 1` over 100,000,000 steps must not build a
# list of 10^8 events. Beyond it the plan keeps the first and last halves; the ends and spacing still show.
MAX_EVENTS = 10_000


def _every(start: int, stop: int, step: int) -> list[int]:
    """range(start, stop, step) as a list, bounded to MAX_EVENTS items (the first and last halves)."""
    values = range(start, stop, step)
    if max(0, -(-(stop - start) // step)) <= MAX_EVENTS:  # len() of a range past 2**63 items overflows
        return list(values)
    half = MAX_EVENTS // 2
    return list(values[:half]) + list(values[-half:])


def _saves(plan: Schedule, every_epochs, every_steps, last_epochs, last_steps) -> list[Event]:
    events: list[Event] = []
    if every_steps:
        saved = _every(every_steps, plan.total_steps + 1, every_steps)
        removed: set[int] = set()
        if last_steps is not None:
            for step in saved:  # sd-scripts deletes one older file after each save
                gone = step - last_steps - 1
                gone -= gone % every_steps
                if gone >= 0:
                    removed.add(gone)
        events += [Event(s, plan.epoch_of_step(s), "step", s not in removed) for s in saved]
    if every_epochs:
        saved = _every(every_epochs, plan.epochs, every_epochs)
        removed = set()
        if last_epochs is not None:
            for epoch in saved:
                gone = epoch - every_epochs * last_epochs
                if gone >= 0:
                    removed.add(gone)
        events += [Event(_epoch_end_step(plan, e), e, "epoch", e not in removed) for e in saved]
    events.append(Event(plan.total_steps, plan.epochs, "final"))
    # At equal steps a step save comes before the epoch-end save.
    order = {"step": 0, "epoch": 1, "final": 2}
    return sorted(events, key=lambda ev: (ev.step, order[ev.kind]))


def _samples(plan: Schedule, every_steps, every_epochs, at_first) -> list[Event]:
    events: list[Event] = []
    if at_first:
        events.append(Event(0, 0, "first"))
    if every_epochs:
        for epoch in _every(every_epochs, plan.epochs + 1, every_epochs):
            events.append(Event(_epoch_end_step(plan, epoch), epoch, "epoch"))
    elif every_steps:
        for step in _every(every_steps, plan.total_steps + 1, every_steps):
            events.append(Event(step, plan.epoch_of_step(step), "step"))
    return events
