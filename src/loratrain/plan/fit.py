"""`loratrain fit`: predicted peak GPU memory of an SDXL LoRA run, the verdict against a card, ranked advice.

No torch: the model structure and the activation figures are data (data/fit/, made by make_sdxl_fit_data.py
from sd-scripts' own U-Net and transformers' CLIP on the meta device); the adapter size is exact
(plan/adapter_size.py). Everything works on sd-scripts-named arguments (`TrainConfig.script_args()`).

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

from loratrain.errors import ConfigError, Problem
from loratrain.plan.adapter_size import AdapterSize, adapter_size, sdxl_data

GIB = 1024**3

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
FITS_SHARE = 0.95  # a prediction above this share of the card is "tight"

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
WEIGHT_BYTES = {"no": 4, "fp16": 2, "bf16": 2}


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


def _resolution(args: dict[str, Any]) -> tuple[int, int]:
    text = args.get("resolution") or "512"
    parts = [int(float(p)) for p in str(text).split(",") if p.strip()]
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _attention(args: dict[str, Any]) -> str:
    # sd-scripts' replace_unet_modules: mem_eff_attn, then xformers, then sdpa, else plain attention.
    if args.get("mem_eff_attn"):
        return "mem_eff_attn"
    if args.get("xformers"):
        return "xformers"
    if args.get("sdpa"):
        return "sdpa"
    return "none"


def _token_chunks(args: dict[str, Any]) -> int:
    length = args.get("max_token_length")
    return 1 if not length else max(1, int(length) // 75)


def _optimizer_state(args: dict[str, Any], adapter: AdapterSize, param_bytes: int) -> tuple[float, str]:
    name = str(args.get("optimizer_type") or "AdamW")
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


def estimate(args: dict[str, Any], num_processes: int = 1) -> Estimate:
    """Predict the per-GPU peak memory of sdxl_train_network.py for these sd-scripts arguments."""
    data = sdxl_data()
    act = activation_data()
    adapter = _adapter(args)
    notes: list[str] = []
    mp = args.get("mixed_precision") or "no"
    wbytes = WEIGHT_BYTES.get(mp, 4)
    full16 = bool(args.get("full_fp16") or args.get("full_bf16"))
    fp8 = bool(args.get("fp8_base") or args.get("fp8_base_unet"))
    cache_latents = bool(args.get("cache_latents") or args.get("cache_latents_to_disk"))
    cache_te = bool(args.get("cache_text_encoder_outputs") or args.get("cache_text_encoder_outputs_to_disk"))
    train_te = not args.get("network_train_unet_only") and not cache_te
    gc = bool(args.get("gradient_checkpointing"))
    batch = int(args.get("train_batch_size") or 1)
    width, height = _resolution(args)
    if args.get("dataset_config"):
        found = _dataset_config_worst(args)
        if found is None:
            notes.append("dataset_config could not be read: resolution and batch size taken from the arguments")
        else:
            batch, (width, height) = found
            notes.append(f"dataset_config: the largest step is batch {batch} at {width}x{height}")
    area = (width // 8) * (height // 8)
    mode = _attention(args)
    chunks = _token_chunks(args)
    vae_bytes = 4 if (args.get("no_half_vae") or mp == "no") else wbytes
    unet_bytes = 1 if fp8 else wbytes
    te_bytes = 1 if (args.get("fp8_base") and not args.get("fp8_base_unet")) else wbytes
    p_bytes = 2 if full16 else 4
    act_bytes = 2 if mp in ("fp16", "bf16") else 4

    items: list[Item] = [Item("CUDA context", CONTEXT_GIB * GIB, "driver, kernels, cuBLAS workspace")]
    items.append(
        Item(
            "U-Net weights",
            data["params"]["unet"] * unet_bytes,
            f"{data['params']['unet']:,} params in {'fp8' if fp8 else _dtype_name(unet_bytes, mp)}",
        )
    )
    te_params = data["params"]["te1"] + data["params"]["te2"]
    if cache_te:
        items.append(Item("text encoder weights", 0, "outputs cached: both encoders wait on the CPU"))
    else:
        items.append(
            Item(
                "text encoder weights",
                te_params * te_bytes,
                f"{te_params:,} params in {'fp8' if te_bytes == 1 else _dtype_name(te_bytes, mp)}",
            )
        )
    if cache_latents:
        items.append(Item("VAE weights", 0, "latents cached: the VAE waits on the CPU (back on the GPU to sample)"))
    else:
        items.append(
            Item(
                "VAE weights",
                PARAMS["vae"] * vae_bytes,
                f"{PARAMS['vae']:,} params in {_dtype_name(vae_bytes, mp)}; encodes every step",
            )
        )
    P = adapter.params
    items.append(Item("adapter", P * p_bytes, f"{P:,} trainable params in {'16-bit' if full16 else 'fp32'}"))
    if mp in ("fp16", "bf16") and not full16:
        items.append(Item("adapter autocast copy", P * 2, "16-bit copies autocast makes for each forward"))
    items.append(Item("gradients", P * p_bytes, "one per trainable parameter"))
    opt_bytes, opt_note = _optimizer_state(args, adapter, p_bytes)
    items.append(Item("optimizer state", opt_bytes, opt_note))
    if num_processes > 1:
        items.append(Item("DDP gradient buckets", P * p_bytes, f"{num_processes} processes"))

    key = f"{mode}/{'gc' if gc else 'full'}"
    unet_saved = batch * _poly(act["unet"][key]["total"], area)
    unit_max = batch * max(_poly(c, area) for c in act["unet"][f"{mode}/full"]["units"].values())
    te_key = "gc" if gc else "full"
    te_per = act["text_encoders_per_77_tokens"]
    te_saved = batch * chunks * (te_per[f"te1/{te_key}"] + te_per[f"te2/{te_key}"]) if train_te else 0.0
    a_held, a_unit = _adapter_activations(
        adapter, batch, area / data["reference"]["latent"] ** 2, chunks, gc, gc, act_bytes, train_te
    )
    if act_bytes == 4:
        unet_saved, unit_max, te_saved = unet_saved * 2, unit_max * 2, te_saved * 2
        notes.append("mixed_precision=no: activations taken as twice the measured bf16 figures")
    working = unit_max * ((1 + BACKWARD) if gc else BACKWARD) + (a_unit if gc else 0.0)
    scale = ALLOC * (FP16_MIXED if mp == "fp16" and not full16 else 1.0)
    where = f"{batch} x {width}x{height}, {mode}, gradient checkpointing {'on' if gc else 'off'}"
    items.append(Item("U-Net activations", unet_saved * scale, f"saved for backward: {where}"))
    items.append(
        Item(
            "adapter activations",
            a_held * scale,
            "rank-sized outputs of each adapter layer"
            if adapter.bypass
            else "delta weights LyCORIS rebuilds each forward" + (" (outside checkpointed blocks)" if gc else ""),
        )
    )
    if train_te:
        items.append(Item("text encoder activations", te_saved * scale, f"both encoders trained, {chunks * 77} tokens"))
    items.append(
        Item(
            "backward working set",
            working * scale,
            "recomputed checkpoint unit and its gradients" if gc else "gradients in flight",
        )
    )
    training_peak = sum(i.bytes for i in items)

    sample_items: list[Item] = []
    sample_peak = 0.0
    if args.get("sample_prompts") and (
        args.get("sample_every_n_steps") or args.get("sample_every_n_epochs") or args.get("sample_at_first")
    ):
        keep = [
            i
            for i in items
            if i.name
            in (
                "CUDA context",
                "U-Net weights",
                "text encoder weights",
                "adapter",
                "optimizer state",
                "DDP gradient buckets",
            )
        ]
        sample_items = list(keep)
        sample_items.append(Item("VAE weights", PARAMS["vae"] * vae_bytes, "moved to the GPU to decode samples"))
        # classifier-free guidance: a batch of 2 through the U-Net without autograd; then the VAE decoder at
        # full resolution (its widest activations: 128 channels x H x W, a few alive at once).
        sw, sh = _sample_size(args, (width, height), notes)
        s_area = (sw // 8) * (sh // 8)
        infer = 2 * max(_poly(c, s_area) for c in act["unet"][f"{mode}/full"]["units"].values())
        decode = 128 * sw * sh * vae_bytes * 4
        sample_items.append(Item("sampling U-Net working set", infer * ALLOC, "batch 2 (guidance), no autograd"))
        sample_items.append(Item("VAE decode", decode * ALLOC, f"{sw}x{sh} in {_dtype_name(vae_bytes, mp)}"))
        sample_peak = sum(i.bytes for i in sample_items)

    all_params = data["params"]["unet"] + te_params + PARAMS["vae"]
    host = all_params * 4 + HOST_BASE_GB * 1e9
    facts = {
        "mixed_precision": mp,
        "attention": mode,
        "gradient_checkpointing": gc,
        "batch": batch,
        "resolution": [width, height],
        "latent_area": area,
        "text_encoders_trained": train_te,
        "latents_cached": cache_latents,
        "processes": num_processes,
    }
    if args.get("lowram"):
        notes.append("lowram: sd-scripts loads straight to the GPU, so the host peak shown is an upper bound")
    return Estimate(items, sample_items, training_peak, sample_peak, host, adapter, facts, notes)


_ADAPTER_KEYS = (
    "network_module",
    "network_dim",
    "network_args",
    "network_train_unet_only",
    "network_train_text_encoder_only",
    "cache_text_encoder_outputs",
)
_adapter_cache: dict[str, AdapterSize] = {}


def _adapter(args: dict[str, Any]) -> AdapterSize:
    """adapter_size(), memoised on the arguments it reads (the advice search re-estimates many variants)."""
    key = repr([args.get(k) for k in _ADAPTER_KEYS])
    if key not in _adapter_cache:
        _adapter_cache[key] = adapter_size(args)
    return _adapter_cache[key]


def _sample_size(args: dict[str, Any], fallback: tuple[int, int], notes: list[str]) -> tuple[int, int]:
    """The largest sample any prompt asks for (sd-scripts' default 512x512 where a prompt sets no --w/--h)."""
    from loratrain.plan.prompts import load_prompt_file

    try:
        prompts = load_prompt_file(str(args["sample_prompts"])).prompts
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


def _dtype_name(nbytes: int, mp: str) -> str:
    if nbytes == 4:
        return "fp32"
    return mp if mp in ("fp16", "bf16") else "16-bit"


# ---- cards -------------------------------------------------------------------------------------------------

# Memory as nvidia-smi reports memory.total (MiB), by size class. Names are matched without case, spaces or
# dashes; `fit --gpu` lists them.
GPU_TABLE: dict[str, tuple[str, int]] = {
    "rtx3070": ("GeForce RTX 3070 (8 GB)", 8192),
    "rtx4060": ("GeForce RTX 4060 (8 GB)", 8188),
    "rtx3060": ("GeForce RTX 3060 (12 GB)", 12288),
    "rtx4070": ("GeForce RTX 4070 / 4070 Ti (12 GB)", 12282),
    "rtx3080": ("GeForce RTX 3080 12 GB", 12288),
    "t4": ("Tesla T4 (16 GB)", 15360),
    "rtx4060ti16": ("GeForce RTX 4060 Ti 16 GB", 16380),
    "rtx4080": ("GeForce RTX 4080 / 4080 Super (16 GB)", 16376),
    "v100": ("Tesla V100 16 GB", 16384),
    "a4000": ("RTX A4000 (16 GB)", 16376),
    "rtx3090": ("GeForce RTX 3090 / 3090 Ti (24 GB)", 24576),
    "rtx4090": ("GeForce RTX 4090 (24 GB)", 24564),
    "a10": ("A10 / A10G (24 GB)", 23028),
    "l4": ("L4 (24 GB)", 23034),
    "rtx5090": ("GeForce RTX 5090 (32 GB)", 32607),
    "v100-32": ("Tesla V100 32 GB", 32768),
    "a100-40": ("A100 40 GB", 40960),
    "a6000": ("RTX A6000 (48 GB)", 49140),
    "rtx6000ada": ("RTX 6000 Ada (48 GB)", 49140),
    "l40s": ("L40S (48 GB)", 46068),
    "a100-80": ("A100 80 GB", 81920),
    "h100": ("H100 80 GB", 81559),
    "rtxpro6000": ("RTX PRO 6000 Blackwell (96 GB)", 97887),
    "h100nvl": ("H100 NVL (94 GB)", 95830),
    "h200": ("H200 (141 GB)", 143771),
}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def gpu_by_name(name: str) -> tuple[str, float]:
    """(description, GiB) of a card in the table; ConfigError listing the table when unknown."""
    wanted = _norm(name)
    for key, (desc, mib) in GPU_TABLE.items():
        if _norm(key) == wanted:
            return desc, mib / 1024
    known = ", ".join(GPU_TABLE)
    raise ConfigError(
        [
            Problem(
                message=f"unknown GPU {name!r}",
                key="--gpu",
                fix=f"use one of {known}, or give the memory with --vram GIB",
            )
        ]
    )


def verdict(peak_bytes: float, vram_gib: float) -> str:
    peak = _gib(peak_bytes)
    if peak <= vram_gib * FITS_SHARE:
        word = "fits"
    elif peak <= vram_gib:
        word = "tight (under 5% to spare)"
    else:
        word = "does not fit"
    return f"predicted peak {peak:.1f} GiB of {vram_gib:.1f} GiB: {word}"


def fits(peak_bytes: float, vram_gib: float) -> bool:
    return _gib(peak_bytes) <= vram_gib * FITS_SHARE


# ---- advice ------------------------------------------------------------------------------------------------


@dataclass
class Advice:
    sets: list[tuple[str, Any]]  # (table.key, value)
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


def _applied(args: dict[str, Any], sets: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(args)
    for key, value in sets:
        out[key.split(".", 1)[1]] = value
    return out


def _memory_savers(args: dict[str, Any]) -> list[tuple[list[tuple[str, Any]], str]]:
    """Changes that lower memory, in the order the guide would try them (cheapest in quality first)."""
    out: list[tuple[list[tuple[str, Any]], str]] = []
    if not args.get("gradient_checkpointing"):
        out.append(
            (
                [("training.gradient_checkpointing", True)],
                "recomputes activations in backward: slower "
                f"(x{SPEEDUP_NO_CHECKPOINTING:.2f} per step on an H200), same result",
            )
        )
    if _attention(args) == "none":
        out.append(([("training.sdpa", True)], "PyTorch's fused attention, same result"))
    if not (args.get("cache_latents") or args.get("cache_latents_to_disk")):
        off: list[tuple[str, Any]] = [(f"dataset.{k}", False) for k in ("color_aug", "random_crop") if args.get(k)]
        out.append(([("dataset.cache_latents", True)] + off, "VAE off the GPU; forbids color_aug and random_crop"))
    batch = int(args.get("train_batch_size") or 1)
    if batch > 1:
        half = batch // 2
        acc = int(args.get("gradient_accumulation_steps") or 1)
        new_acc = math.ceil(acc * batch / half)
        out.append(
            (
                [("training.train_batch_size", half), ("training.gradient_accumulation_steps", new_acc)],
                f"effective batch {half * new_acc} (was {batch * acc})",
            )
        )
    if not (args.get("fp8_base") or args.get("fp8_base_unet")) and (args.get("mixed_precision") or "no") != "no":
        out.append(([("precision.fp8_base", True)], "U-Net and text encoders held in fp8; small quality cost"))
    mp = args.get("mixed_precision") or "no"
    if not (args.get("full_bf16") or args.get("full_fp16")):
        if mp == "bf16":
            out.append(([("precision.full_bf16", True)], "adapter, gradients and optimizer state in bf16"))
        elif mp == "fp16":
            out.append(
                (
                    [("precision.mixed_precision", "bf16"), ("precision.full_bf16", True)],
                    "bf16 everywhere (needs an Ampere or newer GPU)",
                )
            )
    opt = str(args.get("optimizer_type") or "AdamW").lower()
    if opt in ("adamw", "adam"):
        out.append(([("optimizer.optimizer_type", "AdamW8bit")], "8-bit Adam states (bitsandbytes)"))
    train_te = not args.get("network_train_unet_only") and not args.get("cache_text_encoder_outputs")
    if train_te:
        off = [
            (f"dataset.{k}", False if k == "shuffle_caption" else 0)
            for k in ("shuffle_caption", "caption_dropout_rate", "caption_tag_dropout_rate", "token_warmup_step")
            if args.get(k)
        ]
        out.append(
            (
                [("network.network_train_unet_only", True), ("dataset.cache_text_encoder_outputs", True)] + off,
                "text encoders frozen and off the GPU; forbids shuffle_caption, caption dropout and token warm-up",
            )
        )
    width, height = _resolution(args)
    for side in (768, 512):
        if max(width, height) > side:
            res = f"{side},{side}"
            extra = [("buckets.max_bucket_reso", side)] if args.get("enable_bucket") else []
            out.append(([("dataset.resolution", res)] + extra, "last resort: lower resolution loses detail"))
            break
    return out


def advise(args: dict[str, Any], vram_gib: float, num_processes: int = 1, limit: int = 6) -> list[Advice]:
    """Ranked changes: what makes a run fit when it does not; what makes it faster and still fit when it does."""
    base = estimate(args, num_processes)
    out: list[Advice] = []
    if not fits(base.peak, vram_gib):
        savers = _memory_savers(args)
        for sets, why in savers:
            peak = estimate(_applied(args, sets), num_processes).peak
            if fits(peak, vram_gib):
                out.append(Advice(sets, peak, why))
        if not out:  # no single change is enough: combine them in the guide's order, then drop what is not needed
            combo = _combine(args, vram_gib, num_processes)
            if combo is not None:
                out.append(combo)
        return out[:limit]
    if args.get("gradient_checkpointing"):
        sets = [("training.gradient_checkpointing", False)]
        peak = estimate(_applied(args, sets), num_processes).peak
        if fits(peak, vram_gib):
            out.append(
                Advice(
                    sets,
                    peak,
                    "no recomputation in backward",
                    f"x{SPEEDUP_NO_CHECKPOINTING:.2f} per step measured on an H200 (bf16, batch 8)",
                )
            )
    batch = int(args.get("train_batch_size") or 1)
    acc = int(args.get("gradient_accumulation_steps") or 1)
    if acc > 1 and acc % 2 == 0:
        sets = [("training.train_batch_size", batch * 2), ("training.gradient_accumulation_steps", acc // 2)]
        peak = estimate(_applied(args, sets), num_processes).peak
        if fits(peak, vram_gib):
            out.append(
                Advice(
                    sets,
                    peak,
                    f"same effective batch {batch * acc}, fewer and larger micro-batches",
                    "faster per sample on a busy GPU (not measured)",
                )
            )
    return out[:limit]


def _group(sets: list[tuple[str, Any]]) -> str:
    return sets[0][0]


def _combine(args: dict[str, Any], vram_gib: float, num_processes: int) -> Advice | None:
    """Apply memory savers one after another (halving the batch may repeat) until the run fits; then undo every
    change the fit does not need and double the batch back while it still fits."""
    current, chosen = dict(args), {}  # group -> (sets, why)
    for _ in range(16):
        if fits(estimate(current, num_processes).peak, vram_gib):
            break
        options = [
            (sets, why)
            for sets, why in _memory_savers(current)
            if _group(sets) not in chosen or _group(sets) == "training.train_batch_size"
        ]
        if not options:
            return None
        sets, why = options[0]
        chosen[_group(sets)] = (sets, why)
        current = _applied(current, sets)
    else:
        return None
    if not fits(estimate(current, num_processes).peak, vram_gib):
        return None
    for group in [g for g in chosen if g != "training.train_batch_size"]:
        trial = dict(args)
        for g, (sets, _) in chosen.items():
            if g != group:
                trial = _applied(trial, sets)
        if fits(estimate(trial, num_processes).peak, vram_gib):
            del chosen[group]
    current = dict(args)
    for sets, _ in chosen.values():
        current = _applied(current, sets)
    if "training.train_batch_size" in chosen:
        total = int(args.get("train_batch_size") or 1) * int(args.get("gradient_accumulation_steps") or 1)
        while int(current["train_batch_size"]) * 2 <= int(args.get("train_batch_size") or 1):
            bigger = int(current["train_batch_size"]) * 2
            trial = _applied(
                current,
                [
                    ("training.train_batch_size", bigger),
                    ("training.gradient_accumulation_steps", math.ceil(total / bigger)),
                ],
            )
            if not fits(estimate(trial, num_processes).peak, vram_gib):
                break
            current = trial
        batch = int(current["train_batch_size"])
        chosen["training.train_batch_size"] = (
            [("training.train_batch_size", batch), ("training.gradient_accumulation_steps", math.ceil(total / batch))],
            f"effective batch {batch * math.ceil(total / batch)} (was {total})",
        )
    sets_all = [kv for sets, _ in chosen.values() for kv in sets]
    whys = [why for _, why in chosen.values()]
    return Advice(sets_all, estimate(current, num_processes).peak, "together: " + "; ".join(whys))
