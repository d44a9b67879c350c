"""Exact trainable-parameter counts of an SDXL adapter, without torch.

Reads the module table of sd-scripts' SDXL U-Net and the two CLIP text encoders (data/fit/sdxl_layers.json,
made by data/fit/make_sdxl_fit_data.py on the meta device) and applies, in plain Python, the rules by which
sd-scripts' networks.lora and LyCORIS 4.1.3 (lycoris.kohya) pick layers and shape their weights:

* networks.lora: Linear and 1x1 Conv2d layers inside Transformer2DModel (U-Net) and CLIPAttention /
  CLIPSdpaAttention / CLIPMLP (text encoders) get rank network_dim; with conv_dim set, the 3x3 convs of
  ResnetBlock2D / Downsample2D / Upsample2D too. down: in x r (x kernel), up: r x out.
* lycoris.kohya: every Linear / Conv2d (and norm layers with train_norm) inside the preset's target classes,
  or named by the preset; 1x1 convs and Linear layers get network_dim, larger kernels conv_dim (default:
  network_dim; 0 = off; off for presets without convs). Per-algorithm tensor shapes: LoCon (lora/locon,
  optionally Tucker), LoHa (Hadamard of two low-rank products, optionally Tucker), LoKr (Kronecker product
  of a small factor and a low-rank or full factor, LyCORIS' factorization()).

The data-driven table is checked against the real packages on the meta device by tests/fit/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from loratrain.effective import Effective
from loratrain.errors import ConfigError, Problem

COMPONENTS = ("unet", "te1", "te2")
PREFIX = {"unet": "lora_unet", "te1": "lora_te1", "te2": "lora_te2"}

# networks.lora (sd-scripts 48d368f, networks/lora.py, class LoRANetwork)
LORA_UNET_TARGETS = ("Transformer2DModel",)
LORA_UNET_CONV_TARGETS = ("ResnetBlock2D", "Downsample2D", "Upsample2D")
LORA_TE_TARGETS = ("CLIPAttention", "CLIPSdpaAttention", "CLIPMLP")


@dataclass(frozen=True)
class Preset:
    """A LyCORIS 4.1.3 builtin preset, reduced to what can match SDXL (lycoris/config.py)."""

    enable_conv: bool
    unet_modules: tuple[str, ...]
    unet_names: tuple[str, ...]
    te_modules: tuple[str, ...]


_FULL_UNET = ("Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D")
_FULL_NAMES = ("conv_in", "conv_out", "time_embedding.linear_1", "time_embedding.linear_2")
_TE = ("CLIPAttention", "CLIPSdpaAttention", "CLIPMLP")
LYCORIS_PRESETS = {
    "full": Preset(True, _FULL_UNET, _FULL_NAMES, _TE),
    "full-lin": Preset(
        False, ("Transformer2DModel", "ResnetBlock2D"), ("time_embedding.linear_1", "time_embedding.linear_2"), _TE
    ),
    "attn-mlp": Preset(False, ("Transformer2DModel",), (), _TE),
    "attn-only": Preset(False, ("CrossAttention", "SelfAttention"), (), ("CLIPAttention", "CLIPSdpaAttention")),
    "unet-only": Preset(True, _FULL_UNET, _FULL_NAMES, ()),
    "unet-transformer-only": Preset(False, ("Transformer2DModel",), (), ()),
    "unet-convblock-only": Preset(True, ("ResnetBlock2D", "Downsample2D", "Upsample2D"), ("conv_in", "conv_out"), ()),
}
LYCORIS_ALGOS = {"lora": "locon", "locon": "locon", "loha": "loha", "lokr": "lokr"}

# Modules that gradient checkpointing recomputes as one unit (sd-scripts' U-Net; transformers' CLIP layers).
CHECKPOINT_UNITS = {
    "unet": ("ResnetBlock2D", "BasicTransformerBlock", "Downsample2D", "Upsample2D"),
    "te1": ("CLIPEncoderLayer",),
    "te2": ("CLIPEncoderLayer",),
}


@dataclass(frozen=True)
class Layer:
    component: str
    name: str
    cls: str
    kind: str  # linear, conv2d, groupnorm, layernorm, "" (container)
    ancestors: tuple[tuple[str, str], ...]  # (name, class), outermost first, excluding the layer
    in_dim: int = 0
    out_dim: int = 0
    kh: int = 1
    kw: int = 1
    groups: int = 1
    positions: int = 0  # output positions per sample at the reference size
    norm_dim: int = 0
    unit_name: str | None = None  # the gradient-checkpoint unit holding this layer, if any

    @property
    def weight_numel(self) -> int:
        return self.out_dim * (self.in_dim // self.groups) * self.kh * self.kw

    def unit(self) -> str | None:
        """The gradient-checkpoint unit holding this layer (its name), if any."""
        return self.unit_name


def _unit_of(component: str, ancestors: tuple[tuple[str, str], ...]) -> str | None:
    for name, cls in ancestors:
        if cls in CHECKPOINT_UNITS[component]:
            return name
    return None


@dataclass
class AdaptedModule:
    layer: Layer
    shapes: list[tuple[int, ...]]
    rank: int
    params: int = field(init=False)

    def __post_init__(self) -> None:
        self.params = sum(_prod(shape) for shape in self.shapes)


@dataclass
class AdapterSize:
    module: str  # network_module
    algo: str  # lora (networks.lora), locon, loha, lokr
    modules: list[AdaptedModule] = field(default_factory=list)
    bypass: bool = True  # forward as org(x) + up(down(x)) (saves rank-sized activations) vs rebuilt weight

    @property
    def params(self) -> int:
        return sum(m.params for m in self.modules)

    def by_component(self) -> dict[str, tuple[int, int]]:
        out = {c: (0, 0) for c in COMPONENTS}
        for m in self.modules:
            p, n = out[m.layer.component]
            out[m.layer.component] = (p + m.params, n + 1)
        return out

    def shapes(self) -> list[tuple[int, ...]]:
        return [s for m in self.modules for s in m.shapes]


@lru_cache(maxsize=1)
def sdxl_data() -> dict[str, Any]:
    text = resources.files("loratrain").joinpath("data/fit/sdxl_layers.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def sdxl_layers() -> dict[str, list[Layer]]:
    """Every Linear / Conv2d / norm layer of each component, with its ancestors' classes."""
    out: dict[str, list[Layer]] = {}
    for comp, rows in sdxl_data()["modules"].items():
        classes = {row[0]: row[1] for row in rows}
        layers = []
        for row in rows:
            name, cls = row[0], row[1]
            if len(row) == 2:
                continue
            parts = name.split(".")
            anc = tuple((p, classes[p]) for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in classes)
            kind = row[2]
            if kind in ("linear", "conv2d"):
                _, _, _, i, o, kh, kw, g, pos = row
                layers.append(Layer(comp, name, cls, kind, anc, i, o, kh, kw, g, pos, unit_name=_unit_of(comp, anc)))
            else:
                layers.append(Layer(comp, name, cls, kind, anc, norm_dim=row[3], unit_name=_unit_of(comp, anc)))
        out[comp] = layers
    return out


def parse_network_args(items: list[str] | None) -> dict[str, str]:
    """sd-scripts' own split of --network_args: key=value, the value kept as text."""
    out: dict[str, str] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def _truthy_text(value: Any) -> bool:  # LyCORIS' str_bool
    return str(value).lower() != "false"


def _prod(values) -> int:
    n = 1
    for v in values:
        n *= v
    return n


def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """Split `dimension` into m <= n with m * n == dimension, m as close to `factor` as LyCORIS picks it."""
    if factor > 0 and dimension % factor == 0:
        m, n = factor, dimension // factor
        return (n, m) if m > n else (m, n)
    if factor < 0:
        factor = dimension
    m, n = 1, dimension
    length = m + n
    while m < n:
        new_m = m + 1
        while dimension % new_m != 0:
            new_m += 1
        new_n = dimension // new_m
        if new_m + new_n > length or new_m > factor:
            break
        m, n = new_m, new_n
    return (n, m) if m > n else (m, n)


def _selected(layer: Layer, classes: tuple[str, ...], names: tuple[str, ...] = ()) -> bool:
    """LyCORIS / networks.lora selection: an ancestor of a target class (not itself excluded by a target name),
    or the layer named by a target name (LyCORIS matches names with re.match)."""
    for anc_name, anc_cls in layer.ancestors:
        if anc_cls in classes and not any(re.match(t, anc_name) for t in names):
            return True
    if layer.cls in classes and not any(re.match(t, layer.name) for t in names):
        return False  # a target class that is itself a leaf: LyCORIS walks it; not the case in SDXL
    return any(layer.name == t or re.match(t, layer.name) for t in names)


def _lora_shapes(layer: Layer, r: int) -> list[tuple[int, ...]]:
    if layer.kind == "linear":
        return [(r, layer.in_dim), (layer.out_dim, r)]
    return [(r, layer.in_dim, layer.kh, layer.kw), (layer.out_dim, r, 1, 1)]


def _locon_shapes(layer: Layer, r: int, tucker: bool) -> list[tuple[int, ...]]:
    if layer.kind == "linear":
        return [(r, layer.in_dim), (layer.out_dim, r)]
    i = layer.in_dim // layer.groups
    if tucker and (layer.kh != 1 or layer.kw != 1):
        return [(r, i, 1, 1), (r, r, layer.kh, layer.kw), (layer.out_dim, r, 1, 1)]
    return [(r, i, layer.kh, layer.kw), (layer.out_dim, r, 1, 1)]


def _loha_shapes(layer: Layer, r: int, tucker: bool) -> list[tuple[int, ...]]:
    out = layer.out_dim
    if layer.kind == "linear":
        return [(out, r), (r, layer.in_dim)] * 2
    i = layer.in_dim // layer.groups
    if tucker and (layer.kh != 1 or layer.kw != 1):
        return [(r, r, layer.kh, layer.kw), (r, out), (r, i)] * 2
    return [(out, r), (r, i * layer.kh * layer.kw)] * 2


def _lokr_shapes(layer: Layer, r: int, tucker: bool, opts: dict[str, Any]) -> list[tuple[int, ...]]:
    factor, full, both = opts["factor"], opts["full_matrix"], opts["decompose_both"]
    i = layer.in_dim // layer.groups if layer.kind == "conv2d" else layer.in_dim
    in_m, in_n = factorization(i, factor)
    out_l, out_k = factorization(layer.out_dim, factor)
    if opts["unbalanced_factorization"]:
        out_l, out_k = out_k, out_l
    shapes: list[tuple[int, ...]]
    if both and r < max(out_l, in_m) / 2 and not full:
        shapes = [(out_l, r), (r, in_m)]
    else:
        shapes = [(out_l, in_m)]
    if layer.kind == "linear":
        if r < max(out_k, in_n) / 2 and not full:
            return shapes + [(out_k, r), (r, in_n)]
        return shapes + [(out_k, in_n)]
    k = (layer.kh, layer.kw)
    if r >= max(out_k, in_n) / 2 or full:
        return shapes + [(out_k, in_n, *k)]
    if tucker and k != (1, 1):
        return shapes + [(r, r, *k), (r, out_k), (r, in_n)]
    return shapes + [(out_k, r), (r, in_n * k[0] * k[1])]


def _problem(message: str, key: str, fix: str) -> ConfigError:
    return ConfigError([Problem(message=message, key=key, fix=fix)])


def _components(view: Effective) -> list[str]:
    """The model parts the adapter attaches to (train_network.py:707-709: apply_to(text_encoder, unet,
    train_text_encoder, train_unet)), from the effective view."""
    return [c for c in COMPONENTS if (view.unet_trained if c == "unet" else view.text_encoders_trained)]


def _lora_size(module: str, nargs: dict[str, str], dim: int, comps: list[str]) -> AdapterSize:
    """networks.lora: Linear/1x1 layers of the target classes at network_dim, 3x3 convs at conv_dim."""
    if nargs.get("block_dims") or nargs.get("conv_block_dims"):
        raise _problem(
            "fit does not model networks.lora's per-block ranks (block_dims / conv_block_dims)",
            "network.network_args.block_dims",
            "remove block_dims to get a prediction",
        )
    conv_dim = int(nargs["conv_dim"]) if nargs.get("conv_dim") not in (None, "") else None
    size = AdapterSize(module, "lora", bypass=True)
    layers = sdxl_layers()
    for comp in comps:
        targets: tuple[str, ...]
        if comp != "unet":
            targets = LORA_TE_TARGETS
        else:
            targets = LORA_UNET_TARGETS + (LORA_UNET_CONV_TARGETS if conv_dim is not None else ())
        for layer in layers[comp]:
            if layer.kind not in ("linear", "conv2d") or not _selected(layer, targets):
                continue
            pointwise = layer.kind == "linear" or (layer.kh, layer.kw) == (1, 1)
            r = dim if pointwise else conv_dim
            if r:
                size.modules.append(AdaptedModule(layer, _lora_shapes(layer, r), r))
    return size


@dataclass(frozen=True)
class _LycorisOptions:
    """LyCORIS' network_args as its create_network reads them (lycoris/kohya.py, LyCORIS 4.1.3)."""

    algo: str
    preset: Preset
    dim: int
    conv_dim: int
    tucker: bool
    use_scalar: bool
    train_norm: bool
    dora: bool
    wd_on_out: bool
    bypass: bool
    lokr: dict[str, Any]


def _lycoris_options(nargs: dict[str, str], dim: int) -> _LycorisOptions:
    algo_name = (nargs.get("algo") or "lora").lower()
    if algo_name not in LYCORIS_ALGOS:
        raise _problem(
            f"fit counts LyCORIS lora/locon, loha and lokr, not algo={algo_name}",
            "network.network_args.algo",
            "pick one of lora, locon, loha, lokr to get a prediction",
        )
    preset_name = nargs.get("preset") or "full"
    if preset_name not in LYCORIS_PRESETS:
        raise _problem(
            f"fit knows LyCORIS' builtin presets, not {preset_name!r}",
            "network.network_args.preset",
            f"use one of {', '.join(LYCORIS_PRESETS)} to get a prediction",
        )
    preset = LYCORIS_PRESETS[preset_name]
    tucker = any(_truthy_text(nargs[k]) for k in ("use_tucker", "use_conv_cp", "use_cp") if k in nargs) or (
        "disable_conv_cp" in nargs and not nargs["disable_conv_cp"]
    )
    return _LycorisOptions(
        algo=LYCORIS_ALGOS[algo_name],
        preset=preset,
        dim=dim,
        conv_dim=int(nargs.get("conv_dim", dim) or dim) if preset.enable_conv else 0,
        tucker=tucker,
        use_scalar=_truthy_text(nargs.get("use_scalar", False)),
        train_norm=_truthy_text(nargs.get("train_norm", False)),
        dora=_truthy_text(nargs.get("dora_wd", False)),
        wd_on_out=_truthy_text(nargs.get("wd_on_output", True)),
        bypass=_truthy_text(nargs.get("bypass_mode", False)),
        lokr={
            "factor": int(nargs.get("factor", -1)),
            "full_matrix": _truthy_text(nargs.get("full_matrix", False)),
            "decompose_both": bool(nargs.get("decompose_both", False)),
            "unbalanced_factorization": _truthy_text(nargs.get("unbalanced_factorization", False)),
        },
    )


def _lycoris_module(layer: Layer, o: _LycorisOptions) -> AdaptedModule | None:
    """The module LyCORIS wraps this (selected) layer in, or None where it adds none."""
    if o.train_norm and "Norm" in layer.cls:
        n = layer.norm_dim
        return AdaptedModule(layer, [(n,), (n,)] if layer.kind else [], 0)
    if layer.kind == "linear":
        r = o.dim
    elif layer.kind == "conv2d":
        r = o.dim if (layer.kh, layer.kw) == (1, 1) else o.conv_dim
    else:
        return None
    if r <= 0:
        return None
    if o.algo == "locon":
        shapes = _locon_shapes(layer, r, o.tucker)
    elif o.algo == "loha":
        shapes = _loha_shapes(layer, r, o.tucker)
    else:
        shapes = _lokr_shapes(layer, r, o.tucker, o.lokr)
    if o.use_scalar:
        shapes = shapes + [()]
    if o.dora:
        shapes = shapes + [(layer.out_dim if o.wd_on_out else layer.in_dim // layer.groups,)]
    return AdaptedModule(layer, shapes, r)


def _lycoris_size(module: str, nargs: dict[str, str], dim: int, comps: list[str]) -> AdapterSize:
    o = _lycoris_options(nargs, dim)
    size = AdapterSize(module, o.algo, bypass=o.bypass)
    layers = sdxl_layers()
    for comp in comps:
        classes = o.preset.unet_modules if comp == "unet" else o.preset.te_modules
        names = o.preset.unet_names if comp == "unet" else ()
        for layer in layers[comp]:
            adapted = _lycoris_module(layer, o) if _selected(layer, classes, names) else None
            if adapted is not None:
                size.modules.append(adapted)
    return size


def adapter_size(run: Mapping[str, Any] | Effective) -> AdapterSize:
    """The adapter sd-scripts will train for a run's effective view (or its sd-scripts-named arguments)."""
    view = run if isinstance(run, Effective) else Effective.from_args(run)
    module = view.args.get("network_module") or "networks.lora"
    nargs = parse_network_args(view.args.get("network_args"))
    dim = view.args.get("network_dim")
    dim = 4 if dim is None else int(dim)  # networks/lora.py:429 (create_network): None -> 4
    comps = _components(view)
    if module == "networks.lora":
        return _lora_size(module, nargs, dim, comps)
    if module != "lycoris.kohya":
        raise _problem(
            f"fit counts adapters of networks.lora and lycoris.kohya, not {module!r}",
            "network.network_module",
            "use networks.lora or lycoris.kohya to get a prediction",
        )
    return _lycoris_size(module, nargs, dim, comps)
