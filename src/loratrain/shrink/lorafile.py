"""Reading and writing kohya-format LoRA / LyCORIS safetensors files.

A file is a flat dict `<module>.<suffix> -> tensor`. We group the keys by module (the text before the
first dot), classify each group, and keep everything we do not resize untouched so a caller can copy it
through. Writing recomputes the two `sshs_*` hashes the way sd-scripts does, so tools that index LoRAs
by those hashes see the shrunk file as a new model.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain.errors import ConfigError, Problem

# The tensors a LoRA / LoCon / Tucker LoCon / DoRA module may carry; anything else makes it "other".
LORA_SUFFIXES = {"lora_down.weight", "lora_up.weight", "alpha", "lora_mid.weight", "dora_scale"}

# Suffix families of the LyCORIS algorithms we recognise but do not resize (for a clear message).
OTHER_ALGOS = (
    ("loha", ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")),
    ("lokr", ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")),
    ("full", ("diff", "diff_b")),
    ("norm", ("w_norm", "b_norm")),
    ("ia3", ("on_input",)),
    ("oft", ("oft_blocks", "oft_diag")),
    ("glora", ("a1.weight", "a2.weight", "b1.weight", "b2.weight")),
)


@dataclass
class LoraLayer:
    """One down/up module. `delta_w = scale * up @ [mid] @ down` reshaped to `weight_shape`."""

    name: str
    down: Any  # torch.Tensor (r, in[, kh, kw])
    up: Any  # torch.Tensor (out, r[, 1, 1])
    alpha: float
    mid: Any = None  # Tucker core (r, r, kh, kw)
    dora_scale: Any = None
    has_alpha: bool = True

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def is_conv(self) -> bool:
        return self.down.dim() == 4

    @property
    def kernel(self) -> tuple[int, ...]:
        if self.mid is not None:
            return tuple(self.mid.shape[2:])
        return tuple(self.down.shape[2:])

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (int(self.up.shape[0]), int(self.down.shape[1]), *self.kernel)

    @property
    def kind(self) -> str:
        if self.mid is not None:
            base = "tucker-locon"
        elif self.is_conv:
            base = "locon" if any(k != 1 for k in self.kernel) else "conv1x1"
        else:
            base = "lora"
        return base + ("+dora" if self.dora_scale is not None else "")

    @property
    def in_flat(self) -> int:
        n = int(self.down.shape[1])
        for k in self.kernel:
            n *= int(k)
        return n

    def param_count(self) -> int:
        n = self.down.numel() + self.up.numel()
        if self.mid is not None:
            n += self.mid.numel()
        return int(n)


@dataclass
class OtherLayer:
    """A module we do not resize (LoHa, LoKr, ...): its tensors, verbatim."""

    name: str
    algo: str
    tensors: dict = field(default_factory=dict)  # suffix -> tensor


@dataclass
class LoraFile:
    path: Path
    metadata: dict
    layers: dict  # name -> LoraLayer (file order)
    others: dict  # name -> OtherLayer
    dtype: Any  # the dtype of the first lora_up tensor: what "keep the input precision" means
    size_bytes: int


def _bad(path: Path, message: str, fix: str = "") -> ConfigError:
    return ConfigError([Problem(message=message, file=str(path), fix=fix)])


def _classify_other(suffixes: set[str]) -> str:
    for algo, names in OTHER_ALGOS:
        if suffixes & set(names):
            return algo
    return "unknown"


def read_lora(path: str | os.PathLike) -> LoraFile:
    """Load a LoRA file fully into memory (float tensors as stored) and group it by module."""
    import torch
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise _bad(path, "no such file", "give the path of a .safetensors LoRA")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _bad(path, f"not a readable safetensors file ({exc})", "give a LoRA saved as .safetensors") from None

    groups: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        module, dot, suffix = key.partition(".")
        groups.setdefault(module, {})[suffix if dot else ""] = tensor

    layers: dict[str, LoraLayer] = {}
    others: dict[str, OtherLayer] = {}
    problems: list[Problem] = []
    for name, parts in groups.items():
        suffixes = set(parts)
        if "lora_down.weight" in suffixes and "lora_up.weight" in suffixes and suffixes <= LORA_SUFFIXES:
            layer, problem = _make_layer(name, parts, path)
            if problem:
                problems.append(problem)
            else:
                assert layer is not None  # _make_layer returns a layer or a problem
                layers[name] = layer
        else:
            others[name] = OtherLayer(name=name, algo=_classify_other(suffixes), tensors=parts)
    if problems:
        raise ConfigError(problems)
    if not layers and not any(o.algo != "unknown" for o in others.values()):
        raise _bad(
            path,
            "not a LoRA: no module has lora_down/lora_up tensors or LyCORIS weights",
            "give a LoRA/LoCon file saved by sd-scripts or LyCORIS",
        )
    first = next(iter(layers.values()), None)
    dtype = first.up.dtype if first is not None else torch.float16
    return LoraFile(
        path=path, metadata=metadata, layers=layers, others=others, dtype=dtype, size_bytes=path.stat().st_size
    )


def _make_layer(name: str, parts: dict, path: Path) -> tuple[LoraLayer | None, Problem | None]:
    import torch

    down, up = parts["lora_down.weight"], parts["lora_up.weight"]
    mid = parts.get("lora_mid.weight")

    def bad(message: str, fix: str = "the file is damaged or not a kohya-format LoRA"):
        return None, Problem(message=message, key=name, file=str(path), fix=fix)

    for suffix, tensor in parts.items():
        if not tensor.is_floating_point():
            return bad(f"{suffix} holds {str(tensor.dtype).replace('torch.', '')} values, not floating-point weights")
        if not bool(torch.isfinite(tensor).all()):
            return bad(f"{suffix} holds NaN or infinite values", "the training diverged; use an earlier save")
    if down.dim() == 0 or up.dim() < 2:
        return bad(f"tensor shapes do not form a LoRA layer (down {tuple(down.shape)}, up {tuple(up.shape)})")
    r = int(down.shape[0])
    if r == 0:
        return bad("the layer has rank 0 (no directions to keep)")
    ok = down.dim() in (2, 4) and up.dim() == down.dim() and int(up.shape[1]) == r
    if ok and up.dim() == 4:
        ok = tuple(up.shape[2:]) == (1, 1)
    if ok and mid is not None:
        ok = mid.dim() == 4 and tuple(mid.shape[:2]) == (r, r) and tuple(down.shape[2:]) == (1, 1)
    if not ok:
        shapes = f"down {tuple(down.shape)}, up {tuple(up.shape)}"
        if mid is not None:
            shapes += f", mid {tuple(mid.shape)}"
        return None, Problem(
            message=f"tensor shapes do not form a LoRA layer ({shapes})",
            key=name,
            file=str(path),
            fix="the file is damaged or not a kohya-format LoRA",
        )
    alpha_t = parts.get("alpha")
    if alpha_t is not None and alpha_t.numel() != 1:
        return bad(f"alpha has shape {tuple(alpha_t.shape)}; it must be one number")
    # sd-scripts and LyCORIS both treat a missing (or zero) alpha as alpha = rank, i.e. scale 1.
    alpha = float(alpha_t.float().item()) if alpha_t is not None else float(r)
    if alpha == 0.0:
        alpha = float(r)
    return (
        LoraLayer(
            name=name,
            down=down,
            up=up,
            alpha=alpha,
            mid=mid,
            dora_scale=parts.get("dora_scale"),
            has_alpha=alpha_t is not None,
        ),
        None,
    )


def sshs_hashes(tensors: dict, metadata: dict) -> tuple[str, str]:
    """(`sshs_model_hash`, `sshs_legacy_hash`) as sd-scripts computes them.

    Both come from an in-memory serialisation with only the `ss_*` metadata: the model hash is the sha256
    of everything after the header, the legacy hash the first 8 hex digits of the sha256 of the 64 KiB
    starting at offset 1 MiB (empty for small files).
    """
    from safetensors.torch import save

    blob = save(tensors, {k: v for k, v in metadata.items() if k.startswith("ss_")})
    header_len = int.from_bytes(blob[:8], "little")
    model_hash = hashlib.sha256(blob[8 + header_len :]).hexdigest()
    legacy_hash = hashlib.sha256(blob[0x100000 : 0x100000 + 0x10000]).hexdigest()[:8]
    return model_hash, legacy_hash


def write_lora(path: str | os.PathLike, tensors: dict, metadata: dict) -> int:
    """Write atomically (temp file + rename) with fresh hashes; returns the file size in bytes."""
    from safetensors.torch import save

    metadata = dict(metadata)
    metadata["sshs_model_hash"], metadata["sshs_legacy_hash"] = sshs_hashes(tensors, metadata)
    path = Path(path)
    blob = save(tensors, metadata)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".shrink-", suffix=".tmp", dir=str(path.parent))
    except OSError as exc:
        from loratrain.errors import RuntimeFailure

        raise RuntimeFailure(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        # mkstemp makes the file private; give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(blob)
