"""How many directions of each layer to keep: the recipe grammar and sd-scripts' rank rules.

Two families:
- recipes (the grammar of elias-gaeros/resize_lora, as the guide writes them: `fro_ckpt=1,thr=-3.55`):
  each singular value σᵢ gets a score log10(σᵢ·rescale) − Σ w·log10(reference), references from the
  base checkpoint (`*_ckpt`, `subspace`), the LoRA layer itself (`*_lora`) or the layer size (`params`);
  a direction is kept when its score ≥ `thr`, or the threshold is chosen so the file fits `size=` MiB.
- sd-scripts' methods: a fixed rank (`--rank`, `--conv-rank` for every 4-D weight), or a dynamic rank
  from `sv_ratio`, `sv_fro` or `sv_cumulative` with sd-scripts' rank rule (its +1 included).
Neither ever keeps more directions than the layer was trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loratrain.errors import ConfigError, Problem

CLI = "command line"  # where a problem with an argument of `loratrain shrink` is

SCORE_KEYS = ("spn_ckpt", "spn_lora", "fro_ckpt", "fro_lora", "subspace", "params")
BASE_KEYS = ("spn_ckpt", "fro_ckpt", "subspace")
DYNAMIC_METHODS = ("sv_ratio", "sv_fro", "sv_cumulative")


@dataclass(frozen=True)
class Recipe:
    text: str
    weights: dict = field(default_factory=dict)  # normalised to sum 1; only non-zero entries
    thr: float | None = None
    size_mib: float | None = None
    rescale: float = 1.0

    @property
    def needs_base(self) -> bool:
        return any(k in self.weights for k in BASE_KEYS)

    def tag(self) -> str:
        """File-name tag, as elias-gaeros/resize_lora names its outputs (`frockpt1`, `scale2`, ...)."""
        parts = [f"{k.replace('_', '')}{_num(v)}" for k, v in sorted(self.weights.items())]
        if self.rescale != 1.0:
            parts.append(f"scale{_num(self.rescale)}")
        if self.size_mib is not None:
            parts.append(f"size{_num(self.size_mib)}")
        else:
            parts.append(f"th{_num(self.thr)}")
        return "_".join(parts)

    def record(self) -> dict:
        return {
            "recipe": self.text,
            "weights": self.weights,
            "threshold": self.thr,
            "target_size_mib": self.size_mib,
            "rescale": self.rescale,
        }


@dataclass(frozen=True)
class SdMethod:
    """sd-scripts' `resize_lora.py` selection: fixed rank, or a dynamic method capped by `rank`."""

    method: str  # "fixed" or one of DYNAMIC_METHODS
    rank: int | None = None
    conv_rank: int | None = None
    param: float | None = None

    @property
    def needs_base(self) -> bool:
        return False

    @property
    def text(self) -> str:
        if self.method == "fixed":
            return f"rank={self.rank},conv_rank={self.conv_rank}"
        cap = f",rank_cap={self.rank}" if self.rank else ""
        if self.conv_rank != self.rank:
            cap += f",conv_rank_cap={self.conv_rank}"
        return f"{self.method}={_num(self.param)}{cap}"

    def tag(self) -> str:
        if self.method == "fixed":
            conv = f"_conv{self.conv_rank}" if self.conv_rank != self.rank else ""
            return f"rank{self.rank}{conv}"
        cap = f"_cap{self.rank}" if self.rank else ""
        if self.conv_rank != self.rank:
            cap += f"_convcap{self.conv_rank}"
        return f"{self.method.replace('_', '')}{_num(self.param)}{cap}"

    def record(self) -> dict:
        return {"method": self.method, "rank": self.rank, "conv_rank": self.conv_rank, "param": self.param}


def _num(x: float | None) -> str:
    if x is None:
        return "none"
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _recipe_error(text: str, message: str, fix: str) -> ConfigError:
    return ConfigError([Problem(message=message, key=f"--recipe {text}", fix=fix, file=CLI)])


def parse_recipes(text: str) -> list[Recipe]:
    """`a:b:c` -> one Recipe per `:`-separated part."""
    parts = [p.strip() for p in text.split(":")]
    if not text.strip() or any(not p for p in parts):
        raise _recipe_error(text, "empty recipe", "write e.g. fro_ckpt=1,thr=-3.55; separate recipes with ':'")
    return [parse_recipe(p) for p in parts]


def parse_recipe(text: str) -> Recipe:
    fix = "items are score weights (" + ", ".join(SCORE_KEYS) + "), thr=LOG10, size=MIB or rescale=FACTOR"
    weights: dict[str, float] = {}
    thr = size = None
    rescale = 1.0
    for item in text.split(","):
        item = item.strip()
        key, eq, value = item.partition("=")
        key = key.strip()
        if not key:
            raise _recipe_error(text, "empty item", fix)
        if key not in SCORE_KEYS and key not in ("thr", "size", "rescale"):
            raise _recipe_error(text, f"unknown item {key!r}", fix)
        if key in ("thr", "size", "rescale") and not eq:
            raise _recipe_error(text, f"{key} needs a value", f"write {key}=NUMBER")
        try:
            number = float(value) if eq else 1.0
        except ValueError:
            raise _recipe_error(text, f"{key}={value!r} is not a number", fix) from None
        if not math.isfinite(number):
            raise _recipe_error(text, f"{key}={value} is not a finite number", fix)
        if key == "thr":
            thr = number
        elif key == "size":
            if number <= 0:
                raise _recipe_error(text, "size must be a positive number of MiB", "write e.g. size=16")
            size = number
        elif key == "rescale":
            if number <= 0:
                raise _recipe_error(text, "rescale must be positive", "write e.g. rescale=1.5")
            rescale = number
        else:
            if number < 0:
                raise _recipe_error(text, f"weight {key}={value} is negative", "score weights are >= 0")
            weights[key] = weights.get(key, 0.0) + number
    total = sum(weights.values())
    if total <= 0:
        raise _recipe_error(text, "no score weight is non-zero", "add e.g. fro_ckpt=1")
    if thr is None and size is None:
        raise _recipe_error(text, "neither thr= nor size= given", "add thr=LOG10 (e.g. thr=-3.55) or size=MIB")
    if size is not None:
        thr = None  # as in resize_lora: size wins when both are given
    normalised = {k: v / total for k, v in weights.items() if v > 0}
    return Recipe(text=text, weights=normalised, thr=thr, size_mib=size, rescale=rescale)


def sd_method(rank: int | None, conv_rank: int | None, method: str | None, param: float | None) -> SdMethod:
    if method is None:
        if param is not None:
            raise ConfigError([Problem("--dynamic-param needs --dynamic-method", key="--dynamic-param", file=CLI)])
        if rank is None:
            raise ConfigError([Problem("give --rank N (and optionally --conv-rank N)", key="--rank", file=CLI)])
        conv_rank = rank if conv_rank is None else conv_rank
        if rank < 1 or conv_rank < 1:
            raise ConfigError(
                [Problem("ranks must be >= 1", key="--rank", fix="drop layers with a recipe instead", file=CLI)]
            )
        return SdMethod("fixed", rank=rank, conv_rank=conv_rank)
    if method not in DYNAMIC_METHODS:
        raise ConfigError(
            [
                Problem(
                    f"unknown dynamic method {method!r}",
                    key="--dynamic-method",
                    fix="one of " + ", ".join(DYNAMIC_METHODS),
                    file=CLI,
                )
            ]
        )
    if param is None or not math.isfinite(param) or param <= 0:
        raise ConfigError([Problem(f"{method} needs a positive --dynamic-param", key="--dynamic-param", file=CLI)])
    if method != "sv_ratio" and param > 1:
        raise ConfigError(
            [
                Problem(
                    f"{method} takes a fraction in (0, 1], got {param}", key="--dynamic-param", fix="e.g. 0.9", file=CLI
                )
            ]
        )
    if (rank is not None and rank < 1) or (conv_rank is not None and conv_rank < 1):
        raise ConfigError([Problem("--rank and --conv-rank must be >= 1", key="--rank", file=CLI)])
    # As in sd-scripts, --rank caps Linear layers and --conv-rank (default: --rank) conv layers; but
    # sd-scripts' cap defaults to 4, ours to none (deviation, see docs/shrink.md).
    return SdMethod(method, rank=rank, conv_rank=conv_rank if conv_rank is not None else rank, param=param)


def sd_rank(S, full_len: int, is_4d: bool, m: SdMethod) -> int:
    """Rank sd-scripts' resize_lora.py would pick, then capped at the trained rank `len(S)`.

    `S` holds the q ≤ r non-trivial singular values; a dense SVD would also return `full_len - q` zeros,
    which we account for exactly without materialising them.
    """
    import torch

    q = int(S.numel())
    if m.method == "fixed":
        k = m.conv_rank if is_4d else m.rank
        assert k is not None  # a fixed method always has its rank
        return max(0, min(k, q))
    N = full_len
    p = m.param
    assert p is not None  # every dynamic method has its parameter
    if m.method == "sv_ratio":
        count = int((S > S[0] / p).sum())
    else:
        vals = S.double() ** 2 if m.method == "sv_fro" else S.double()
        target = p * p if m.method == "sv_fro" else p
        frac = torch.cumsum(vals, 0) / vals.sum()
        # The zeros a dense SVD would add have a cumulative fraction of 1, never below p <= 1.
        count = int((frac < target).sum()) + 1
    k = min(max(count, 1), N - 1) + 1
    cap = m.conv_rank if is_4d else m.rank
    if cap is not None:
        k = min(k, cap)
    return max(0, min(k, q))


def scores(S, refs: dict, recipe: Recipe, subspace=None):
    """Per-direction scores of one layer: log10(σ·rescale) − Σ w·log10(reference).

    `refs` maps score keys to one positive number per layer; `subspace` is a per-direction tensor.
    """
    import torch

    s = torch.log10(S.double().clamp_min(1e-30) * recipe.rescale)
    for key, w in recipe.weights.items():
        if key == "subspace":
            s = s - w * torch.log10(subspace.double().clamp_min(1e-30))
        else:
            s = s - w * math.log10(max(refs[key], 1e-30))
    return s
