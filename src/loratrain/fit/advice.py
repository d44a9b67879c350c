"""fit's advice: ranked `--set` changes that make a run fit its GPU, or make it faster while it still fits.

Each candidate is a variant of the run's effective view (`Effective.with_args`), estimated like the run itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loratrain.effective import Effective
from loratrain.fit.cards import fits
from loratrain.fit.model import SPEEDUP_NO_CHECKPOINTING, estimate

Sets = list[tuple[str, Any]]  # (table.key, value)


@dataclass
class Advice:
    sets: Sets
    peak: float
    why: str
    speedup: str = ""

    def set_line(self) -> str:
        return " ".join(f"--set {k}={_toml_value(v)}" for k, v in self.sets)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _applied(view: Effective, sets: Sets) -> Effective:
    """The view with these config changes made (each table.key names sd-scripts' dest after the dot)."""
    return view.with_args({key.split(".", 1)[1]: value for key, value in sets})


def _peak(view: Effective, sets: Sets | None = None) -> float:
    return estimate(_applied(view, sets) if sets else view).peak


def _speed_savers(view: Effective) -> list[tuple[Sets, str]]:
    """Savers that cost speed but not quality: gradient checkpointing, fused attention, cached latents."""
    out: list[tuple[Sets, str]] = []
    if not view.gradient_checkpointing:
        out.append(
            (
                [("training.gradient_checkpointing", True)],
                "recomputes activations in backward: slower "
                f"(x{SPEEDUP_NO_CHECKPOINTING:.2f} per step on an H200), same result",
            )
        )
    if view.attention == "none":
        out.append(([("training.sdpa", True)], "PyTorch's fused attention, same result"))
    if view.latents_cache == "none":
        off: Sets = [(f"dataset.{k}", False) for k in ("color_aug", "random_crop") if view.args.get(k)]
        out.append(([("dataset.cache_latents", True)] + off, "VAE off the GPU; forbids color_aug and random_crop"))
    return out


def _precision_savers(view: Effective) -> list[tuple[Sets, str]]:
    """Smaller micro-batches, fp8 weights, 16-bit adapter state, 8-bit optimizer state."""
    out: list[tuple[Sets, str]] = []
    batch, p = view.train_batch_size, view.precision
    if batch > 1:
        half = batch // 2
        acc = view.gradient_accumulation_steps
        new_acc = math.ceil(acc * batch / half)
        out.append(
            (
                [("training.train_batch_size", half), ("training.gradient_accumulation_steps", new_acc)],
                f"effective batch {half * new_acc} (was {batch * acc})",
            )
        )
    if not p.fp8 and p.mixed != "no":
        out.append(([("precision.fp8_base", True)], "U-Net and text encoders held in fp8; small quality cost"))
    if not p.full_16 and p.mixed == "bf16":
        out.append(([("precision.full_bf16", True)], "adapter, gradients and optimizer state in bf16"))
    elif not p.full_16 and p.mixed == "fp16":
        out.append(
            (
                [("precision.mixed_precision", "bf16"), ("precision.full_bf16", True)],
                "bf16 everywhere (needs an Ampere or newer GPU)",
            )
        )
    if view.optimizer_type.lower() in ("adamw", "adam"):
        out.append(([("optimizer.optimizer_type", "AdamW8bit")], "8-bit Adam states (bitsandbytes)"))
    return out


def _quality_savers(view: Effective) -> list[tuple[Sets, str]]:
    """Frozen text encoders, then (last resort) a lower resolution."""
    out: list[tuple[Sets, str]] = []
    if view.text_encoders_trained:
        off: Sets = [(f"dataset.{k}", False if k == "shuffle_caption" else 0) for k in view.text_cache_clashes()]
        out.append(
            (
                [("network.network_train_unet_only", True), ("dataset.cache_text_encoder_outputs", True)] + off,
                "text encoders frozen and off the GPU; forbids shuffle_caption, caption dropout and token warm-up",
            )
        )
    width, height = view.resolution_or_native
    for side in (768, 512):
        if max(width, height) > side:
            extra = [("buckets.max_bucket_reso", side)] if view.buckets.enabled else []
            out.append(
                ([("dataset.resolution", f"{side},{side}")] + extra, "last resort: lower resolution loses detail")
            )
            break
    return out


def memory_savers(view: Effective) -> list[tuple[Sets, str]]:
    """Changes that lower memory, in the order the guide would try them (cheapest in quality first)."""
    return _speed_savers(view) + _precision_savers(view) + _quality_savers(view)


def _faster(view: Effective, vram_gib: float) -> list[Advice]:
    """For a run that fits: no gradient checkpointing, or larger micro-batches, where they still fit."""
    out: list[Advice] = []
    if view.gradient_checkpointing:
        sets: Sets = [("training.gradient_checkpointing", False)]
        peak = _peak(view, sets)
        if fits(peak, vram_gib):
            speed = f"x{SPEEDUP_NO_CHECKPOINTING:.2f} per step measured on an H200 (bf16, batch 8)"
            out.append(Advice(sets, peak, "no recomputation in backward", speed))
    batch, acc = view.train_batch_size, view.gradient_accumulation_steps
    if acc > 1 and acc % 2 == 0:
        sets = [("training.train_batch_size", batch * 2), ("training.gradient_accumulation_steps", acc // 2)]
        peak = _peak(view, sets)
        if fits(peak, vram_gib):
            why = f"same effective batch {batch * acc}, fewer and larger micro-batches"
            out.append(Advice(sets, peak, why, "faster per sample on a busy GPU (not measured)"))
    return out


def advise(view: Effective, vram_gib: float, limit: int = 6) -> list[Advice]:
    """Ranked changes: what makes a run fit when it does not; what makes it faster and still fit when it does."""
    if fits(estimate(view).peak, vram_gib):
        return _faster(view, vram_gib)[:limit]
    out: list[Advice] = []
    for sets, why in memory_savers(view):
        peak = _peak(view, sets)
        if fits(peak, vram_gib):
            out.append(Advice(sets, peak, why))
    if not out:  # no single change is enough: combine them in the guide's order, then drop what is not needed
        combo = _combine(view, vram_gib)
        if combo is not None:
            out.append(combo)
    return out[:limit]


def _group(sets: Sets) -> str:
    return sets[0][0]


BATCH = "training.train_batch_size"


def _pile_up(view: Effective, vram_gib: float) -> dict[str, tuple[Sets, str]] | None:
    """Apply memory savers one after another (halving the batch may repeat) until the run fits."""
    current = view
    chosen: dict[str, tuple[Sets, str]] = {}  # group -> (sets, why)
    for _ in range(16):
        if fits(estimate(current).peak, vram_gib):
            return chosen
        options = [(s, w) for s, w in memory_savers(current) if _group(s) not in chosen or _group(s) == BATCH]
        if not options:
            return None
        sets, why = options[0]
        chosen[_group(sets)] = (sets, why)
        current = _applied(current, sets)
    return None


def _with_all(view: Effective, chosen: dict[str, tuple[Sets, str]], but: str = "") -> Effective:
    for group, (sets, _) in chosen.items():
        if group != but:
            view = _applied(view, sets)
    return view


def _grow_batch(view: Effective, current: Effective, vram_gib: float) -> tuple[Effective, tuple[Sets, str]]:
    """Double the halved batch back while the run still fits; the accumulation keeps the effective batch."""
    total = view.train_batch_size * view.gradient_accumulation_steps
    while current.train_batch_size * 2 <= view.train_batch_size:
        bigger = current.train_batch_size * 2
        trial = _applied(
            current, [(BATCH, bigger), ("training.gradient_accumulation_steps", math.ceil(total / bigger))]
        )
        if not fits(estimate(trial).peak, vram_gib):
            break
        current = trial
    batch = current.train_batch_size
    sets: Sets = [(BATCH, batch), ("training.gradient_accumulation_steps", math.ceil(total / batch))]
    return current, (sets, f"effective batch {batch * math.ceil(total / batch)} (was {total})")


def _combine(view: Effective, vram_gib: float) -> Advice | None:
    """Pile up memory savers until the run fits; then undo every change the fit does not need and double the
    batch back while it still fits."""
    chosen = _pile_up(view, vram_gib)
    if chosen is None:
        return None
    for group in [g for g in chosen if g != BATCH]:
        if fits(estimate(_with_all(view, chosen, but=group)).peak, vram_gib):
            del chosen[group]
    current = _with_all(view, chosen)
    if BATCH in chosen:
        current, chosen[BATCH] = _grow_batch(view, current, vram_gib)
    sets_all = [kv for sets, _ in chosen.values() for kv in sets]
    whys = [why for _, why in chosen.values()]
    return Advice(sets_all, estimate(current).peak, "together: " + "; ".join(whys))
