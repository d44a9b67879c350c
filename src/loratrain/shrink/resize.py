"""One pass over a LoRA: the spectrum of every layer once, then one output per selection.

Per layer and selection the result is one of:
- `kept`      every direction kept: the original tensors are copied (only cast), bit for bit;
- `resized`   the kept directions rebuilt from the SVD, σ split evenly between up and down;
- `converted` a Tucker LoCon cut to rank k and written as a plain rank-k conv LoCon (exact), because
              that is smaller than the Tucker layer;
- `whole`     a Tucker LoCon kept whole: a rank-k plain conv would be larger than the trained layer;
- `dropped`   no direction kept by the selection; `zero`: the update is all zero (σ₀ ≤ 1e-6);
- `copied`    a LyCORIS layer of another algorithm copied through unchanged (`--keep-other`).
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from loratrain.shrink.recipes import Recipe, SdMethod, scores, sd_rank
from loratrain.shrink.svd import layer_spectrum

ZERO_SIGMA = 1e-6  # both reference tools treat a layer whose σ₀ is below this as empty


@dataclass
class LayerInfo:
    """What one layer's spectrum and references are, shared by every selection."""

    name: str
    kind: str
    rank: int
    is_4d: bool
    out: int
    in_flat: int
    spectrum: Any
    refs: dict = field(default_factory=dict)
    subspace: Any = None

    @property
    def zero(self) -> bool:
        return self.spectrum.sigma0 <= ZERO_SIGMA


@dataclass
class LayerResult:
    name: str
    kind: str
    action: str
    rank_before: int
    rank_after: int
    fro_kept: float  # ‖kept σ‖ / ‖σ‖ of the update (1.0 when copied whole)
    note: str = ""


@dataclass
class Outcome:
    selection: Any  # Recipe or SdMethod
    tensors: dict
    metadata: dict
    results: list
    threshold: float | None  # the (given or computed) score threshold of a recipe
    scores: dict  # layer name -> per-direction score (for the plot)


@contextmanager
def one_cpu_thread():
    """Run torch's CPU kernels on one thread for the duration.

    Every step here is small (a thin QR, a 32×32 SVD, one weight's norm) and there are ~800 of them.
    With intra-op threads, each step pays a fork/join, and when other processes share the CPU the
    waiting threads stall: on the 2-core dev box the decompositions of an SDXL LoCon took 2.7–4.7 s
    with 2 threads and 0.85 s with 1, and the base norms 11–16 s against 6–8 s.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def analyse(lora, selections, base=None, device="cpu") -> list[LayerInfo]:
    """Spectra of all layers, plus the reference numbers the selections' scores need."""
    with one_cpu_thread():
        return _analyse(lora, selections, base, device)


def _analyse(lora, selections, base, device) -> list[LayerInfo]:
    need = set()
    for sel in selections:
        if isinstance(sel, Recipe):
            need |= set(sel.weights)
    infos = []
    for name, layer in lora.layers.items():
        spec = layer_spectrum(layer, device)
        info = LayerInfo(
            name=name,
            kind=layer.kind,
            rank=layer.rank,
            is_4d=layer.is_conv,
            out=layer.weight_shape[0],
            in_flat=layer.in_flat,
            spectrum=spec,
        )
        S = spec.S
        info.refs["spn_lora"] = float(S[0]) if S.numel() else 0.0
        info.refs["fro_lora"] = float(S.double().norm())
        info.refs["params"] = float(info.out + info.in_flat)
        if base is not None:
            kinds = {k.split("_")[0] for k in need & {"fro_ckpt", "spn_ckpt"}}
            if kinds:
                for kind, value in base.norms(name, kinds, device).items():
                    info.refs[f"{kind}_ckpt"] = value
            if "subspace" in need:
                # |uᵢᵀ W vᵢ|: how strongly the base already acts along each direction of the update.
                W = base.weight(name).to(device)
                info.subspace = ((spec.U.T @ W) * spec.Vh).sum(dim=1).abs().cpu()
                del W
        # Selections and output building run on the CPU; only the decompositions use `device`.
        spec.U, spec.S, spec.Vh = spec.U.cpu(), spec.S.cpu(), spec.Vh.cpu()
        infos.append(info)
    if base is not None:
        base.save_cache()
    return infos


def _masks_for(sel, infos, save_bytes: int):
    """Per layer: a bool mask over its directions, the per-direction scores, the final threshold."""
    import torch

    masks, layer_scores, threshold = {}, {}, None
    if isinstance(sel, SdMethod):
        for info in infos:
            q = int(info.spectrum.S.numel())
            k = 0 if info.zero else sd_rank(info.spectrum.S, info.spectrum.full_len, info.is_4d, sel)
            mask = torch.zeros(q, dtype=torch.bool)
            mask[:k] = True
            masks[info.name] = mask
            S = info.spectrum.S
            layer_scores[info.name] = torch.log10(S.double().clamp_min(1e-30) / max(float(S[0]), 1e-30)) if q else S
        if sel.method == "sv_ratio":
            assert sel.param is not None
            threshold = -math.log10(sel.param)
        return masks, layer_scores, threshold

    for info in infos:
        layer_scores[info.name] = scores(info.spectrum.S, info.refs, sel, info.subspace)
    live = [i for i in infos if not i.zero]
    if sel.size_mib is not None:
        # Greedy by score: the threshold is the score at which the running size reaches the target.
        all_scores = torch.cat([layer_scores[i.name] for i in live]) if live else torch.zeros(0)
        costs = (
            torch.cat([torch.full((i.spectrum.S.numel(),), float((i.out + i.in_flat) * save_bytes)) for i in live])
            if live
            else torch.zeros(0)
        )
        order = torch.argsort(all_scores, descending=True)
        running = torch.cumsum(costs[order].double(), 0)
        target = sel.size_mib * 2**20
        over = torch.nonzero(running >= target)
        if len(over):
            threshold = float(all_scores[order[int(over[0])]])
        else:
            threshold = float(all_scores.min()) if all_scores.numel() else 0.0
    else:
        threshold = sel.thr
    for info in infos:
        if info.zero:
            masks[info.name] = torch.zeros(info.spectrum.S.numel(), dtype=torch.bool)
        else:
            masks[info.name] = layer_scores[info.name] >= threshold
    return masks, layer_scores, threshold


def _cast(t, dtype):
    return t.to(dtype) if t.is_floating_point() else t


def build(lora, infos, sel, save_dtype, keep_other=False) -> Outcome:
    """The output tensors, metadata and per-layer report of one selection."""
    with one_cpu_thread():
        return _build(lora, infos, sel, save_dtype, keep_other)


def _build(lora, infos, sel, save_dtype, keep_other) -> Outcome:
    import torch

    save_bytes = torch.empty(0, dtype=save_dtype).element_size()
    masks, layer_scores, threshold = _masks_for(sel, infos, save_bytes)
    rescale = sel.rescale if isinstance(sel, Recipe) else 1.0
    tensors: dict[str, Any] = {}
    results: list[Any] = []
    for info in infos:
        layer = lora.layers[info.name]
        spec = info.spectrum
        mask = masks[info.name]
        k = int(mask.sum())
        S = spec.S
        total = float(S.double().norm())
        kept_share = float(S[mask].double().norm()) / total if total > 0 else 0.0

        def result(action, rank_after, share, note=""):
            results.append(LayerResult(info.name, info.kind, action, info.rank, rank_after, share, note))

        if info.zero:
            result("zero", 0, 0.0, "update is all zero; layer left out")
            continue
        if k == 0:
            result("dropped", 0, 0.0)
            continue
        if k == int(S.numel()) and bool(mask.all()):
            _copy_whole(tensors, layer, save_dtype, rescale)
            result("kept", layer.rank, 1.0)
            continue
        if layer.mid is not None:
            plain = k * (info.out + info.in_flat)
            if plain >= layer.param_count():
                _copy_whole(tensors, layer, save_dtype, rescale)
                result(
                    "whole",
                    layer.rank,
                    1.0,
                    f"Tucker layer kept whole: rank {k} as a plain conv ({plain} params) is not smaller",
                )
                continue
        _write_resized(tensors, layer, spec, mask, save_dtype, rescale)
        if layer.mid is not None:
            result("converted", k, kept_share, f"Tucker rank {layer.rank} -> plain conv LoCon rank {k}")
        else:
            result("resized", k, kept_share)

    for other in lora.others.values():
        if keep_other:
            for suffix, t in other.tensors.items():
                tensors[f"{other.name}.{suffix}" if suffix else other.name] = _cast(t, save_dtype)
            note = f"{other.algo} layer copied unchanged"
            results.append(LayerResult(other.name, other.algo, "copied", 0, 0, 1.0, note))

    metadata = _metadata(lora, sel, results, threshold, tensors)
    return Outcome(sel, tensors, metadata, results, threshold, layer_scores)


def _copy_whole(tensors, layer, dtype, rescale):
    up = layer.up if rescale == 1.0 else layer.up.float() * rescale
    tensors[f"{layer.name}.lora_up.weight"] = _cast(up, dtype)
    tensors[f"{layer.name}.lora_down.weight"] = _cast(layer.down, dtype)
    if layer.mid is not None:
        tensors[f"{layer.name}.lora_mid.weight"] = _cast(layer.mid, dtype)
    if layer.has_alpha:
        import torch

        tensors[f"{layer.name}.alpha"] = torch.tensor(layer.alpha, dtype=dtype)
    if layer.dora_scale is not None:
        tensors[f"{layer.name}.dora_scale"] = _cast(layer.dora_scale, dtype)


def _write_resized(tensors, layer, spec, mask, dtype, rescale):
    """Rebuild so that (alpha′/k)·up′·down′ = rescale·Σ_kept σᵢuᵢvᵢᵀ.

    alpha′ = (alpha/r)·k keeps the trained per-rank scale.
    """
    import torch

    k = int(mask.sum())
    alpha = torch.tensor(layer.scale * k, dtype=dtype)
    # Split using the alpha as stored, so rounding it to fp16/bf16 does not change the update.
    scale = float(alpha.float()) / k
    root = torch.sqrt(spec.S[mask].double() * rescale / scale).float()
    U = spec.U[:, mask] * root
    Vh = root[:, None] * spec.Vh[mask]
    out, *_ = layer.weight_shape
    if layer.is_conv:
        up = U.reshape(out, k, 1, 1)
        down = Vh.reshape(k, layer.weight_shape[1], *layer.kernel)
    else:
        up, down = U, Vh
    tensors[f"{layer.name}.lora_up.weight"] = up.to(dtype).contiguous()
    tensors[f"{layer.name}.lora_down.weight"] = down.to(dtype).contiguous()
    tensors[f"{layer.name}.alpha"] = alpha
    if layer.dora_scale is not None:
        tensors[f"{layer.name}.dora_scale"] = _cast(layer.dora_scale, dtype)


def _common(values):
    values = set(values)
    return values.pop() if len(values) == 1 else None


def _fmt_alpha(a: float) -> str:
    return str(int(a)) if float(a).is_integer() else f"{a:.6g}"


def _metadata(lora, sel, results, threshold, tensors) -> dict:
    from loratrain import __version__

    meta = dict(lora.metadata)
    for key in ("sshs_model_hash", "sshs_legacy_hash"):
        meta.pop(key, None)
    live = [r for r in results if r.action in ("kept", "resized", "converted", "whole")]
    linear = [r for r in live if not lora.layers[r.name].is_conv]
    if linear:
        rank = _common(r.rank_after for r in linear)
        alphas = []
        for r in linear:
            t = tensors.get(f"{r.name}.alpha")
            alphas.append(round(float(t.float()), 6) if t is not None else float(r.rank_after))
        alpha = _common(alphas)
        meta["ss_network_dim"] = str(rank) if rank is not None else "Dynamic"
        meta["ss_network_alpha"] = _fmt_alpha(alpha) if alpha is not None else "Dynamic"
    old_max = max((layer.rank for layer in lora.layers.values()), default=0)
    old_comment = meta.get("ss_training_comment", "")
    comment = f"loratrain shrink {sel.text} from rank {old_max}"
    meta["ss_training_comment"] = f"{comment}; {old_comment}" if old_comment else comment
    record = {"tool": f"loratrain {__version__}", **sel.record()}
    if isinstance(sel, Recipe):
        record["threshold"] = threshold
        # The key elias-gaeros/resize_lora writes, for tools that already read it.
        meta["resize_params"] = json.dumps(
            {"weights": sel.weights, "target_size": sel.size_mib, "threshold": threshold, "rescale": sel.rescale}
        )
    meta["loratrain_shrink"] = json.dumps(record)
    return meta
