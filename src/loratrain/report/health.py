"""Health of each saved adapter file: broken numbers, modules that never trained, update size per U-Net block.

kohya's LoRA and LyCORIS initialise the "up" factor (lora_up, hada_w2_a, lokr_w2/w2_b ...) to zero, so a
module's update is exactly zero until an optimizer step changes it: a module whose update is all zero in a
saved file never trained (its learning rate was 0, it got no gradient, or it was frozen). The update norm
‖ΔW‖_F = ‖scale · up @ [mid] @ down‖_F is computed from the small r×r Gram matrices, never from the full
weight, so a file is checked in about the time it takes to read it.

Tensors are read with numpy from the safetensors layout (header via loratrain.safetensors_header), bf16
included, so the report does not need torch (whose import alone costs more than a file's check); modules are
grouped and classified with shrink/lorafile.py's suffix tables.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain.safetensors_header import HeaderError, read_header_bytes
from loratrain.shrink.lorafile import LORA_SUFFIXES, _classify_other

_DTYPES = {
    "F16": "<f2",
    "F32": "<f4",
    "F64": "<f8",
    "BF16": "bf16",
    "I8": "i1",
    "U8": "u1",
    "I16": "<i2",
    "I32": "<i4",
    "I64": "<i8",
    "BOOL": "?",
}
# sd-scripts' file names: <name>-<epoch:06d>, <name>-step<step:08d>, <name> (the last save).
_EPOCH_NAME = re.compile(r"-(\d{6})$")
_STEP_NAME = re.compile(r"-step(\d{8})$")

# kohya module names -> U-Net block: SDXL keeps the original U-Net's names (input_blocks / middle_block /
# output_blocks), SD 1.x/2.x networks use diffusers' (down_blocks / mid_block / up_blocks).
_BLOCKS = [
    (re.compile(r"^lora_unet_input_blocks_(\d+)_"), "down"),
    (re.compile(r"^lora_unet_down_blocks_(\d+)_"), "down"),
    (re.compile(r"^lora_unet_middle_block_"), "mid"),
    (re.compile(r"^lora_unet_mid_block_"), "mid"),
    (re.compile(r"^lora_unet_output_blocks_(\d+)_"), "up"),
    (re.compile(r"^lora_unet_up_blocks_(\d+)_"), "up"),
]


def block_of(module: str) -> str:
    """'down 4', 'mid', 'up 2', 'unet other', 'te1', 'te2', 'te' or 'other'."""
    for pattern, label in _BLOCKS:
        m = pattern.match(module)
        if m:
            return f"{label} {int(m.group(1))}" if m.groups() else label
    if module.startswith("lora_unet_"):
        return "unet other"
    for te in ("lora_te1_", "lora_te2_", "lora_te3_", "lora_te_"):
        if module.startswith(te):
            return te[5:-1]
    return "other"


def block_order(label: str) -> tuple[int, int, str]:
    kinds = {"down": 0, "mid": 1, "up": 2, "unet": 3, "te": 4, "te1": 5, "te2": 6, "te3": 7}
    head, _, num = label.partition(" ")
    return (kinds.get(head, 9), int(num) if num.isdigit() else 0, label)


@dataclass
class FileHealth:
    path: Path
    size_bytes: int
    step: int | None = None
    epoch: int | None = None
    modules: int = 0
    nonfinite: list[str] = field(default_factory=list)  # tensor names holding NaN or inf
    untrained: list[str] = field(default_factory=list)  # modules whose update is exactly zero
    unchecked: list[str] = field(default_factory=list)  # modules of an algorithm without a norm here
    block_norms: dict[str, float] = field(default_factory=dict)  # block -> sqrt(sum of module norms^2)
    total_norm: float | None = None
    growth: float | None = None  # total_norm / the previous save's
    block_growth: dict[str, float] = field(default_factory=dict)
    error: str = ""  # the file could not be read

    @property
    def flags(self) -> list[str]:
        out: list[str] = []
        if self.error:
            out.append(f"unreadable: {self.error}")
        if self.nonfinite:
            out.append(f"{len(self.nonfinite)} tensor(s) hold NaN/inf")
        if self.untrained:
            out.append(f"{len(self.untrained)} of {self.modules} module(s) never trained (update all zero)")
        return out

    @property
    def ok(self) -> bool:
        return not self.flags


class _Tensors:
    """The tensors of one safetensors file as numpy arrays (float32 for floats), read on demand."""

    def __init__(self, path: Path):
        import json

        raw = read_header_bytes(path)
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise HeaderError("header is not a JSON object")
        self.metadata = {str(k): str(v) for k, v in (header.pop("__metadata__", None) or {}).items()}
        self.entries = header
        with path.open("rb") as fh:  # one read; numpy views into it cost nothing per tensor
            fh.seek(8 + len(raw))
            self.data = memoryview(fh.read())

    def all_finite(self) -> bool | None:
        """One pass over the whole data block when every tensor has the same float dtype (what sd-scripts saves):
        True when no value is NaN/inf; None when the dtypes are mixed (check tensor by tensor)."""
        import numpy as np

        dtypes = {e.get("dtype") for e in self.entries.values()}
        if len(dtypes) != 1:
            return None
        bits = {"F16": ("<u2", 0x7C00), "BF16": ("<u2", 0x7F80), "F32": ("<u4", 0x7F800000)}.get(dtypes.pop())
        if bits is None:
            return None
        end = max((e["data_offsets"][1] for e in self.entries.values()), default=0)
        words = np.frombuffer(self.data[: min(end, len(self.data)) // 2 * 2], dtype=bits[0])
        # NaN and inf are exactly the values whose exponent bits are all ones.
        return not bool(np.any((words & bits[1]) == bits[1]))

    def get(self, name: str):
        import numpy as np

        entry = self.entries[name]
        kind = _DTYPES.get(entry["dtype"])
        if kind is None:
            raise HeaderError(f"tensor {name} has dtype {entry['dtype']}, which the report does not read")
        start, end = entry["data_offsets"]
        if not 0 <= start <= end <= len(self.data):
            raise HeaderError(f"tensor {name} lies outside the file (truncated?)")
        chunk = self.data[start:end]
        if kind == "bf16":
            arr = (np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(chunk, dtype=kind)
        return arr.reshape(entry["shape"])


def _name_numbers(path: Path) -> tuple[int | None, int | None]:
    m = _STEP_NAME.search(path.stem)
    if m:
        return int(m.group(1)), None
    m = _EPOCH_NAME.search(path.stem)
    if m:
        return None, int(m.group(1))
    return None, None


def _int(value) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _lora_norm(parts: dict, r: int, alpha: float) -> float:
    """‖scale · up @ [mid] @ down‖_F via Gram matrices: tr((UᵀU) M (DDᵀ) Mᵀ), summed over the kernel taps."""
    import numpy as np

    down = parts["lora_down.weight"].reshape(r, -1).astype(np.float32)
    up = parts["lora_up.weight"].reshape(-1, r).astype(np.float32)
    g_up = (up.T @ up).astype(np.float64)  # r x r: float32 products, summed in float64
    g_down = (down @ down.T).astype(np.float64)
    mid = parts.get("lora_mid.weight")
    if mid is None:
        sq = float(np.sum(g_up * g_down))  # tr(A B) for symmetric A, B
    else:
        m = mid.astype(np.float64)  # (r, r, kh, kw)
        taps = m.reshape(m.shape[0], m.shape[1], -1).transpose(2, 0, 1)
        sq = float(sum(np.sum(g_up * (t @ g_down @ t.T)) for t in taps))
    scale = alpha / r
    return abs(scale) * math.sqrt(max(sq, 0.0)) if sq == sq else float("nan")


def _alpha(parts: dict, r: int) -> float:
    """sd-scripts and LyCORIS read a missing or zero alpha as alpha = rank (scale 1)."""
    alpha_t = parts.get("alpha")
    alpha = float(alpha_t.reshape(-1)[0]) if alpha_t is not None else float(r)
    return alpha or float(r)


def _batched_lora_norms(modules: list[tuple[str, dict]]) -> dict[str, float]:
    """_lora_norm for many modules at once: modules of equal shapes are stacked and multiplied together."""
    import numpy as np

    by_shape: dict[tuple, list[tuple[str, dict]]] = {}
    for module, parts in modules:
        key = (parts["lora_down.weight"].shape, parts["lora_up.weight"].shape)
        by_shape.setdefault(key, []).append((module, parts))
    out: dict[str, float] = {}
    for (down_shape, up_shape), items in by_shape.items():
        r = int(down_shape[0])
        if len(up_shape) < 2 or int(up_shape[1]) != r:
            raise ValueError(f"{items[0][0]}: down {tuple(down_shape)} and up {tuple(up_shape)} do not fit")
        downs = np.empty((len(items), r, math.prod(down_shape[1:])), np.float32)
        ups = np.empty((len(items), int(up_shape[0]), r), np.float32)
        for i, (_, p) in enumerate(items):  # converted while copied: one pass over the data
            downs[i] = p["lora_down.weight"].reshape(r, -1)
            ups[i] = p["lora_up.weight"].reshape(-1, r)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf weights are reported as NaN below, not warned
            g_up = np.matmul(ups.transpose(0, 2, 1), ups).astype(np.float64)
            g_down = np.matmul(downs, downs.transpose(0, 2, 1)).astype(np.float64)
            sq = np.sum(g_up * g_down, axis=(1, 2))
        for (module, parts), value in zip(items, sq):
            value = float(value)
            scale = abs(_alpha(parts, r) / r)
            out[module] = scale * math.sqrt(max(value, 0.0)) if value == value else float("nan")
    return out


def _product(parts: dict, full: str, a: str, b: str):
    import numpy as np

    if full in parts:
        return parts[full].astype(np.float64).reshape(parts[full].shape[0], -1), None
    if a in parts and b in parts:
        pa = parts[a].astype(np.float64)
        pb = parts[b].astype(np.float64)
        return pa.reshape(pa.shape[0], -1) @ pb.reshape(pb.shape[0], -1), int(pb.shape[0])
    return None, None


def _other_norm(algo: str, parts: dict) -> float | None:
    """Update norm of a LyCORIS module we can compute cheaply; None for the others (tucker LoHa/LoKr, IA3, ...)."""
    import numpy as np

    alpha = float(parts["alpha"].reshape(-1)[0]) if "alpha" in parts else None
    if algo == "full":
        return float(np.linalg.norm(parts["diff"].astype(np.float64)))
    if algo == "loha" and "hada_t1" not in parts:
        w1, r = _product(parts, "", "hada_w1_a", "hada_w1_b")
        w2, _ = _product(parts, "", "hada_w2_a", "hada_w2_b")
        if w1 is None or w2 is None or w1.shape != w2.shape:
            return None
        scale = (alpha / r) if alpha and r else 1.0
        return abs(scale) * float(np.linalg.norm(w1 * w2))
    if algo == "lokr" and "lokr_t2" not in parts:
        w1, r1 = _product(parts, "lokr_w1", "lokr_w1_a", "lokr_w1_b")
        w2, r2 = _product(parts, "lokr_w2", "lokr_w2_a", "lokr_w2_b")
        if w1 is None or w2 is None:
            return None
        r = r2 or r1
        scale = (alpha / r) if alpha and r else 1.0
        return abs(scale) * float(np.linalg.norm(w1)) * float(np.linalg.norm(w2))  # ‖A ⊗ B‖ = ‖A‖‖B‖
    return None


def check_file(path: Path) -> FileHealth:
    """Read one adapter file and measure it. A file that cannot be read comes back with `error` set."""
    import numpy as np

    health = FileHealth(path=path, size_bytes=path.stat().st_size)
    health.step, health.epoch = _name_numbers(path)
    try:
        tensors = _Tensors(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        health.error = str(exc)
        return health
    meta = tensors.metadata
    health.step = _int(meta.get("ss_steps")) if meta.get("ss_steps") else health.step
    health.epoch = _int(meta.get("ss_epoch")) if meta.get("ss_epoch") else health.epoch
    groups: dict[str, dict[str, Any]] = {}  # module -> suffix -> numpy array
    try:
        finite = tensors.all_finite()
        for key in tensors.entries:
            module, dot, suffix = key.partition(".")
            arr = tensors.get(key)
            if not finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                health.nonfinite.append(key)
            groups.setdefault(module, {})[suffix if dot else ""] = arr
    except (HeaderError, ValueError, KeyError, TypeError) as exc:
        health.error = f"damaged tensor data ({exc})"
        return health
    norms: dict[str, float | None] = {}
    plain: list[tuple[str, dict]] = []  # down/up LoRA modules without a Tucker core: measured in batches
    dora: set[str] = set()
    for module, parts in groups.items():
        suffixes = set(parts)
        if "dora_scale" in suffixes:
            dora.add(module)
        if "lora_down.weight" in suffixes and "lora_up.weight" in suffixes and suffixes <= LORA_SUFFIXES:
            if "lora_mid.weight" in parts:
                r = int(parts["lora_down.weight"].shape[0])
                norms[module] = _lora_norm(parts, r, _alpha(parts, r))
            else:
                norms[module] = None
                plain.append((module, parts))
        else:
            algo = _classify_other(suffixes)
            if algo != "unknown":
                norms[module] = _other_norm(algo, parts)
    try:
        norms.update(_batched_lora_norms(plain))
    except ValueError as exc:  # shapes that do not form a LoRA layer
        health.error = f"damaged LoRA module ({exc})"
        return health
    squares: dict[str, float] = {}
    for module, norm in norms.items():
        health.modules += 1
        if norm is None:
            health.unchecked.append(module)
            continue
        if norm == 0.0 and module not in dora:
            health.untrained.append(module)
        block = block_of(module)
        squares[block] = squares.get(block, 0.0) + norm * norm
    health.block_norms = {b: math.sqrt(squares[b]) for b in sorted(squares, key=block_order)}
    if squares:
        health.total_norm = math.sqrt(sum(squares.values()))
    return health


def adapter_files(output_dir: Path, output_name: str | None, ext: str | None) -> list[Path]:
    """The adapter files of this run in output_dir: <name>-<epoch>, <name>-step<step> and <name> itself."""
    suffix = "." + (ext or "safetensors")
    if suffix != ".safetensors":
        return []  # .ckpt/.pt files are pickles: the report does not unpickle them
    files = []
    for p in sorted(output_dir.glob(f"*{suffix}")):
        stem = p.stem
        if output_name is not None:
            base = _STEP_NAME.sub("", _EPOCH_NAME.sub("", stem)) if stem != output_name else stem
            if base != output_name:
                continue
        files.append(p)
    return files


def order_and_grow(files: list[FileHealth]) -> list[FileHealth]:
    """Sort the saves by step (then epoch, the final file last) and fill each one's growth over the previous."""

    def key(h: FileHealth):
        final = h.step is None and h.epoch is None
        return (final, h.step if h.step is not None else -1, h.epoch if h.epoch is not None else -1, h.path.name)

    ordered = sorted(files, key=key)
    prev: FileHealth | None = None
    for h in ordered:
        if h.error or h.total_norm is None or not math.isfinite(h.total_norm):
            continue  # growth is measured against the last save with finite numbers
        if prev is not None and prev.total_norm:
            h.growth = h.total_norm / prev.total_norm
            h.block_growth = {
                b: v / prev.block_norms[b]
                for b, v in h.block_norms.items()
                if prev.block_norms.get(b) and math.isfinite(prev.block_norms[b])
            }
        prev = h
    return ordered
