"""`loratrain fit`: predicted peak GPU memory of an SDXL LoRA run, the verdict against a card, ranked advice.

No torch: the model structure and the activation figures are data (data/fit/, made by make_sdxl_fit_data.py
from sd-scripts' own U-Net and transformers' CLIP on the meta device); the adapter size is exact
(fit/adapter_size.py). Every setting is read from the effective view (loratrain/effective.py): the optimizer
that really runs, the process count, the resolution, what is cached and trained, each part's dtype.

The model, per GPU process:
  peak = max(training step, sample generation)
  training = CUDA context + frozen weights (U-Net, text encoders, VAE: each in the dtype sd-scripts holds it)
           + adapter (fp32, or 16-bit with full_fp16/full_bf16) + its 16-bit autocast copy + gradients
           + optimizer state + DDP gradient buckets (several processes)
           + ALLOC x (saved activations + backward working set)
  saved activations = batch x U-Net per-sample figure at the largest bucket's latent area (a + b*A + c*A^2,
           measured per attention mode, with/without gradient checkpointing) + the adapter's own saved tensors
           (rank-sized for bypass forwards, a weight-sized rebuilt delta per layer for LyCORIS' default forward)
           + text encoders when trained.
  backward working set = (1 + BACKWARD) x the largest checkpoint unit's activations with checkpointing (it is
           recomputed), BACKWARD x that without.
Calibrated constants (see CALIBRATION): ALLOC, BACKWARD, FP16_MIXED, CONTEXT_GIB, HOST_BASE_GB.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from loratrain.effective import Effective
from loratrain.fit.adapter_size import AdapterSize, adapter_size, sdxl_data
from loratrain.fit.cards import GIB

# ---- calibrated constants (H200, sd-scripts 48d368f, the three runs; see docs/fit.md) ----
CONTEXT_GIB = 0.75  # CUDA context, cuBLAS/cuDNN workspaces: set, not fitted (typical for torch 2.x on Hopper)
ALLOC = 1.18  # caching-allocator reserve and fragmentation over the bytes autograd holds (fitted: runs 2 and 3)
BACKWARD = 2.1  # backward working set, in units of the largest checkpoint unit's activations (fitted: runs 2 and 3)
FP16_MIXED = 1.18  # fp16 mixed precision (GradScaler) over bf16, on activations (fitted: run 1 vs run 2)
HOST_BASE_GB = 2.5  # host RSS beyond the fp32 models while loading (fitted: the 16.4 GB CPU run)
CALIBRATION = (
    ("run 1", "fp16 mixed, gradient checkpointing on", 20.2),
    ("run 2", "bf16 mixed, gradient checkpointing on", 18.5),
    ("run 3", "bf16 mixed, gradient checkpointing off", 84.9),
)
SPEEDUP_NO_CHECKPOINTING = 2.68 / 2.09  # run 2 vs run 3, seconds per micro-batch of 8 on an H200

PARAMS = {"vae": 83_653_863}  # diffusers AutoencoderKL with SDXL's config (the rest come from the layer data)

# Bytes of optimizer state per trainable parameter, for an fp32 parameter (scaled for 16-bit parameters where
# the state follows the parameter's dtype). Lower-case sd-scripts names.
OPTIMIZER_STATE = {
    "adamw": 8,
    "adam": 8,
    "pagedadamw": 8,
    "pagedadamw32bit": 8,
    "adamw8bit": 2,
    "pagedadamw8bit": 2,
    "lion": 4,
    "pagedlion8bit": 1,
    "lion8bit": 1,
    "sgdnesterov": 4,
    "sgdnesterov8bit": 1,
    "prodigy": 16,
    "dadaptadam": 12,
    "dadaptadan": 16,
    "dadaptadagrad": 8,
    "dadaptadanip": 16,
    "dadaptlion": 8,
    "dadaptsgd": 8,
    "dadaptation": 12,
    "adafactor": None,
    "sgd": 0,
    "adamwschedulefree": 8,
    "radamschedulefree": 8,
    "sgdschedulefree": 4,
}
EIGHT_BIT = {"adamw8bit", "pagedadamw8bit", "lion8bit", "pagedlion8bit", "sgdnesterov8bit"}


@lru_cache(maxsize=1)
def activation_data() -> dict[str, Any]:
    text = resources.files("loratrain").joinpath("data/fit/sdxl_activations.json").read_text(encoding="utf-8")
    return json.loads(text)


def _poly(coeffs: list[float], area: float) -> float:
    a, b, c = coeffs
    return max(0.0, a + b * area + c * area * area)


def _gib(n: float) -> float:
    return n / GIB


@dataclass
class Item:
    name: str
    bytes: float
    note: str = ""


@dataclass
class Estimate:
    items: list[Item]
    sample_items: list[Item]
    training_peak: float
    sample_peak: float
    host_peak: float
    adapter: AdapterSize
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def peak(self) -> float:
        return max(self.training_peak, self.sample_peak)

    def as_dict(self) -> dict[str, Any]:
        by = self.adapter.by_component()
        return {
            "peak_gib": round(_gib(self.peak), 2),
            "training_peak_gib": round(_gib(self.training_peak), 2),
            "sample_peak_gib": round(_gib(self.sample_peak), 2) if self.sample_peak else None,
            "host_peak_gb": round(self.host_peak / 1e9, 1),
            "breakdown": [{"name": i.name, "gib": round(_gib(i.bytes), 3), "note": i.note} for i in self.items],
            "sample_breakdown": [
                {"name": i.name, "gib": round(_gib(i.bytes), 3), "note": i.note} for i in self.sample_items
            ],
            "adapter": {
                "network_module": self.adapter.module,
                "algo": self.adapter.algo,
                "trainable_params": self.adapter.params,
                "modules": len(self.adapter.modules),
                "by_component": {k: {"params": v[0], "modules": v[1]} for k, v in by.items()},
            },
            "facts": self.facts,
            "notes": self.notes,
        }


def _optimizer_state(view: Effective, adapter: AdapterSize, param_bytes: int) -> tuple[float, str]:
    name = view.optimizer_type  # use_8bit_adam / use_lion_optimizer already resolved
    key = name.lower().rsplit(".", 1)[-1]
    if key not in OPTIMIZER_STATE:
        return adapter.params * 8.0 * param_bytes / 4, f"{name}: not in fit's table, sized like AdamW"
    per = OPTIMIZER_STATE[key]
    if per is None:  # Adafactor: factored second moment (rows + columns) for matrices, full for vectors
        elems = 0
        for shape in adapter.shapes():
            if len(shape) >= 2:
                elems += shape[0] + math.prod(shape[1:])
            else:
                elems += math.prod(shape) if shape else 1
        return elems * 4.0, f"{name}: factored second moment"
    if key in EIGHT_BIT:
        return adapter.params * float(per), f"{name}: 8-bit states"
    return adapter.params * per * param_bytes / 4, f"{name}: {per // 4 if per >= 4 else per} state(s) per parameter"


def _input_needs_no_grad(name: str, component: str, train_te: bool) -> bool:
    """U-Net layers fed by tensors that do not require grad: the time embedding (ResnetBlock2D's emb_layers), and
    the text context (cross-attention to_k / to_v) while the text encoders are frozen. A linear op then keeps no
    copy of its (delta) weight, only the input."""
    if component != "unet":
        return False
    if ".emb_layers." in name:
        return True
    return not train_te and (name.endswith("attn2.to_k") or name.endswith("attn2.to_v"))


def _adapter_activations(
    adapter: AdapterSize,
    batch: int,
    area_ratio: float,
    chunks: int,
    gc_unet: bool,
    gc_te: bool,
    act_bytes: int,
    train_te: bool = True,
) -> tuple[float, float]:
    """(saved bytes held through the step, largest per-unit bytes recomputed under checkpointing)."""
    held = 0.0
    per_unit: dict[str, float] = {}
    for m in adapter.modules:
        layer = m.layer
        if layer.kind not in ("linear", "conv2d"):
            continue
        if (
            not adapter.bypass
            and layer.kind == "linear"
            and _input_needs_no_grad(layer.name, layer.component, train_te)
        ):
            continue
        if adapter.bypass:
            scale = area_ratio if layer.component == "unet" else chunks
            n = m.rank * layer.positions * scale * batch * act_bytes
        else:
            # LyCORIS rebuilds the layer's delta weight each forward and keeps it for the input gradient;
            # LoHa also keeps both Hadamard factors' products.
            n = layer.weight_numel * act_bytes * (3 if adapter.algo == "loha" else 1)
        unit = layer.unit()
        checkpointed = gc_unet if layer.component == "unet" else gc_te
        if checkpointed and unit is not None:
            key = f"{layer.component}:{unit}"
            per_unit[key] = per_unit.get(key, 0.0) + n
        else:
            held += n
    return held, max(per_unit.values(), default=0.0)


@dataclass(frozen=True)
class _Sizing:
    """The settings interpreted once for one estimate: the view plus the bytes each part takes."""

    view: Effective
    adapter: AdapterSize
    batch: int
    width: int
    height: int
    processes: int
    notes: list[str]

    @property
    def area(self) -> int:
        return (self.width // 8) * (self.height // 8)

    @property
    def p_bytes(self) -> int:  # the adapter's parameters, gradients (and state scale)
        return 2 if self.view.precision.full_16 else 4

    @property
    def act_bytes(self) -> int:
        return DTYPE_BYTES[self.view.precision.activations]

    @property
    def vae_bytes(self) -> int:
        return DTYPE_BYTES[self.view.precision.vae]


DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1}


def _sizing(view: Effective) -> _Sizing:
    notes: list[str] = []
    batch = view.train_batch_size
    width, height = view.resolution_or_native
    if view.resolution is None and not view.args.get("dataset_config"):
        notes.append(f"no resolution set: sized at SDXL's native {width}x{height}")
    if view.args.get("dataset_config"):
        found = _dataset_config_worst(dict(view.args))
        if found is None:
            notes.append("dataset_config could not be read: resolution and batch size taken from the arguments")
        else:
            batch, (width, height) = found
            notes.append(f"dataset_config: the largest step is batch {batch} at {width}x{height}")
    if view.processes.total is None:
        notes.append('num_processes = "auto" but no GPU could be counted here: sized for 1 process')
    return _Sizing(view, _adapter(view), batch, width, height, view.processes.total_or_one(), notes)


def _weights(s: _Sizing) -> list[Item]:
    """The CUDA context and the frozen model parts, each in the dtype sd-scripts holds it."""
    data, p = sdxl_data(), s.view.precision
    unet = data["params"]["unet"]
    items = [
        Item("CUDA context", CONTEXT_GIB * GIB, "driver, kernels, cuBLAS workspace"),
        Item("U-Net weights", unet * DTYPE_BYTES[p.unet], f"{unet:,} params in {p.unet}"),
    ]
    te_params = data["params"]["te1"] + data["params"]["te2"]
    if s.view.text_encoder_outputs_cache != "none":
        items.append(Item("text encoder weights", 0, "outputs cached: both encoders wait on the CPU"))
    else:
        items.append(
            Item(
                "text encoder weights",
                te_params * DTYPE_BYTES[p.text_encoders],
                f"{te_params:,} params in {p.text_encoders}",
            )
        )
    if s.view.latents_cache != "none":
        items.append(Item("VAE weights", 0, "latents cached: the VAE waits on the CPU (back on the GPU to sample)"))
    else:
        items.append(
            Item("VAE weights", PARAMS["vae"] * s.vae_bytes, f"{PARAMS['vae']:,} params in {p.vae}; encodes every step")
        )
    return items


def _trainable(s: _Sizing) -> list[Item]:
    """The adapter, its autocast copy, gradients, optimizer state and DDP's buckets."""
    P, p = s.adapter.params, s.view.precision
    items = [Item("adapter", P * s.p_bytes, f"{P:,} trainable params in {p.adapter}")]
    if p.mixed in ("fp16", "bf16") and not p.full_16:
        items.append(Item("adapter autocast copy", P * 2, "16-bit copies autocast makes for each forward"))
    items.append(Item("gradients", P * s.p_bytes, "one per trainable parameter"))
    opt_bytes, opt_note = _optimizer_state(s.view, s.adapter, s.p_bytes)
    items.append(Item("optimizer state", opt_bytes, opt_note))
    if s.processes > 1:
        items.append(Item("DDP gradient buckets", P * s.p_bytes, f"{s.processes} processes"))
    return items


def _activations(s: _Sizing) -> list[Item]:
    """What autograd saves for backward and the backward working set, with the allocator's reserve."""
    v, act = s.view, activation_data()
    mode, gc, chunks, batch = v.attention, v.gradient_checkpointing, v.token_chunks, s.batch
    unet_saved = batch * _poly(act["unet"][f"{mode}/{'gc' if gc else 'full'}"]["total"], s.area)
    unit_max = batch * max(_poly(c, s.area) for c in act["unet"][f"{mode}/full"]["units"].values())
    te_key, te_per = ("gc" if gc else "full"), act["text_encoders_per_77_tokens"]
    te_saved = batch * chunks * (te_per[f"te1/{te_key}"] + te_per[f"te2/{te_key}"]) if v.text_encoders_trained else 0.0
    a_held, a_unit = _adapter_activations(
        s.adapter,
        batch,
        s.area / sdxl_data()["reference"]["latent"] ** 2,
        chunks,
        gc,
        gc,
        s.act_bytes,
        v.text_encoders_trained,
    )
    if s.act_bytes == 4:
        unet_saved, unit_max, te_saved = unet_saved * 2, unit_max * 2, te_saved * 2
        s.notes.append("mixed_precision=no: activations taken as twice the measured bf16 figures")
    working = unit_max * ((1 + BACKWARD) if gc else BACKWARD) + (a_unit if gc else 0.0)
    scale = ALLOC * (FP16_MIXED if v.precision.mixed == "fp16" and not v.precision.full_16 else 1.0)
    where = f"{batch} x {s.width}x{s.height}, {mode}, gradient checkpointing {'on' if gc else 'off'}"
    adapter_note = (
        "rank-sized outputs of each adapter layer"
        if s.adapter.bypass
        else "delta weights LyCORIS rebuilds each forward" + (" (outside checkpointed blocks)" if gc else "")
    )
    items = [
        Item("U-Net activations", unet_saved * scale, f"saved for backward: {where}"),
        Item("adapter activations", a_held * scale, adapter_note),
    ]
    if v.text_encoders_trained:
        items.append(Item("text encoder activations", te_saved * scale, f"both encoders trained, {chunks * 77} tokens"))
    backward_note = "recomputed checkpoint unit and its gradients" if gc else "gradients in flight"
    items.append(Item("backward working set", working * scale, backward_note))
    return items


_KEPT_WHILE_SAMPLING = (
    "CUDA context",
    "U-Net weights",
    "text encoder weights",
    "adapter",
    "optimizer state",
    "DDP gradient buckets",
)


def _sampling(s: _Sizing, training: list[Item]) -> list[Item]:
    """Sample generation: what stays on the GPU, the VAE back on it, a guided U-Net pass and the VAE decode."""
    if not s.view.samples:
        return []
    items = [i for i in training if i.name in _KEPT_WHILE_SAMPLING]
    items.append(Item("VAE weights", PARAMS["vae"] * s.vae_bytes, "moved to the GPU to decode samples"))
    # classifier-free guidance: a batch of 2 through the U-Net without autograd; then the VAE decoder at
    # full resolution (its widest activations: 128 channels x H x W, a few alive at once).
    sw, sh = _sample_size(s.view, (s.width, s.height), s.notes)
    s_area = (sw // 8) * (sh // 8)
    units = activation_data()["unet"][f"{s.view.attention}/full"]["units"].values()
    infer = 2 * max(_poly(c, s_area) for c in units)
    decode = 128 * sw * sh * s.vae_bytes * 4
    items.append(Item("sampling U-Net working set", infer * ALLOC, "batch 2 (guidance), no autograd"))
    items.append(Item("VAE decode", decode * ALLOC, f"{sw}x{sh} in {s.view.precision.vae}"))
    return items


def estimate(view: Effective) -> Estimate:
    """Predict the per-GPU peak memory of sdxl_train_network.py for this effective view of a run."""
    s = _sizing(view)
    items = _weights(s) + _trainable(s) + _activations(s)
    sample_items = _sampling(s, items)
    data = sdxl_data()
    all_params = data["params"]["unet"] + data["params"]["te1"] + data["params"]["te2"] + PARAMS["vae"]
    host = all_params * 4 + HOST_BASE_GB * 1e9
    facts = {
        "mixed_precision": view.precision.mixed,
        "attention": view.attention,
        "gradient_checkpointing": view.gradient_checkpointing,
        "batch": s.batch,
        "resolution": [s.width, s.height],
        "latent_area": s.area,
        "text_encoders_trained": view.text_encoders_trained,
        "latents_cached": view.latents_cache != "none",
        "optimizer": view.optimizer_type,
        "processes": s.processes,
        "processes_per_machine": view.processes.per_machine or 1,
    }
    if view.args.get("lowram"):
        s.notes.append("lowram: sd-scripts loads straight to the GPU, so the host peak shown is an upper bound")
    training_peak = sum(i.bytes for i in items)
    sample_peak = sum(i.bytes for i in sample_items) if sample_items else 0.0
    return Estimate(items, sample_items, training_peak, sample_peak, host, s.adapter, facts, s.notes)


_ADAPTER_KEYS = (
    "network_module",
    "network_dim",
    "network_args",
    "network_train_unet_only",
    "network_train_text_encoder_only",
    "cache_text_encoder_outputs",
    "cache_text_encoder_outputs_to_disk",
)
_adapter_cache: dict[str, AdapterSize] = {}


def _adapter(view: Effective) -> AdapterSize:
    """adapter_size(), memoised on the arguments it reads (the advice search re-estimates many variants)."""
    key = repr([view.args.get(k) for k in _ADAPTER_KEYS])
    if key not in _adapter_cache:
        _adapter_cache[key] = adapter_size(view)
    return _adapter_cache[key]


def _sample_size(view: Effective, fallback: tuple[int, int], notes: list[str]) -> tuple[int, int]:
    """The largest sample any prompt asks for (sd-scripts' default 512x512 where a prompt sets no --w/--h)."""
    from loratrain.plan.prompts import load_prompt_file

    try:
        prompts = load_prompt_file(str(view.args["sample_prompts"])).prompts
    except (OSError, ValueError):
        prompts = []
    if not prompts:
        notes.append("sample prompt file not readable here: samples sized like the training resolution")
        return fallback
    sizes = [(int(o["width"]), int(o["height"])) for o in (p.effective() for p in prompts)]
    return max(sizes, key=lambda wh: wh[0] * wh[1])


def _dataset_config_worst(args: dict[str, Any]) -> tuple[int, tuple[int, int]] | None:
    """(batch, resolution) of the dataset whose steps are largest (batch x area), from the dataset_config file."""
    from loratrain.plan.dataset_config import plan_datasets

    try:
        plan = plan_datasets(args)
    except (OSError, ValueError):
        return None
    best = None
    for ds in plan.datasets:
        if ds.buckets is None:
            continue
        w, h = ds.buckets.resolution
        key = int(ds.batch_size) * w * h
        if best is None or key > best[0]:
            best = (key, int(ds.batch_size), (w, h))
    return None if best is None else (best[1], best[2])
