"""The SDXL base checkpoint a recipe scores against: name mapping, shape checks and layer norms.

Only single-file SDXL checkpoints in the original (SGM) layout are accepted, the layout sd-scripts'
LoRA names are derived from. Tensors are read one at a time through `safe_open`, so the 7 GB file is
never held in memory.

CLIP-G (`lora_te2_*`) stores q, k and v fused in `attn.in_proj_weight`; we slice its rows in the order
q, k, v. That is the order of PyTorch's MultiheadAttention (which open_clip uses) and of sd-scripts'
own checkpoint conversion; elias-gaeros/resize_lora slices k, q, v, which scores q_proj against the key
weights and vice versa.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from loratrain.errors import ConfigError, Problem

UNET = "model.diffusion_model."
TE1 = "conditioner.embedders.0.transformer.text_model."
TE2 = "conditioner.embedders.1.model.transformer.resblocks."
# SDXL base conditions its UNet on 2816 extra features (pooled CLIP-G + size/crop embeddings); SD 1.x/2.x
# have no label_emb and the refiner has 2560.
SDXL_MARKER = (UNET + "label_emb.0.0.weight", 2816)
TE2_RENAMES = {"attn.out_proj": "self_attn_out_proj", "mlp.c_fc": "mlp_fc1", "mlp.c_proj": "mlp_fc2"}


@dataclass(frozen=True)
class BaseRef:
    key: str
    rows: tuple[int, int] | None  # row slice of a fused q/k/v weight
    shape: tuple[int, ...]


def _lora_name(key: str) -> list[tuple[str, int | None, str]]:
    """LoRA module names a base key serves: [(lora_name, third of a fused q/k/v weight or None, key)]."""
    if key.startswith(UNET) and key.endswith(".weight"):
        return [("lora_unet_" + key[len(UNET) : -len(".weight")].replace(".", "_"), None, key)]
    if key.startswith(TE1) and key.endswith(".weight"):
        return [("lora_te1_text_model_" + key[len(TE1) : -len(".weight")].replace(".", "_"), None, key)]
    if key.startswith(TE2):
        block, _, rest = key[len(TE2) :].partition(".")
        head = f"lora_te2_text_model_encoder_layers_{block}_"
        if rest == "attn.in_proj_weight":
            return [(head + f"self_attn_{p}_proj", i, key) for i, p in enumerate("qkv")]
        for src, dst in TE2_RENAMES.items():
            if rest == src + ".weight":
                return [(head + dst, None, key)]
    return []


class BaseCheckpoint:
    def __init__(self, path: str | os.PathLike):
        from safetensors import SafetensorError, safe_open

        self.path = Path(path)
        fix = "give the SDXL single-file .safetensors checkpoint the LoRA was trained on"
        if not self.path.is_file():
            raise ConfigError([Problem("no such file", key="--base", file=str(self.path), fix=fix)])
        try:
            self._fh = safe_open(str(self.path), framework="pt", device="cpu")
            keys = list(self._fh.keys())
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                [Problem(f"not a readable safetensors file ({exc})", key="--base", file=str(self.path), fix=fix)]
            ) from None
        marker, width = SDXL_MARKER
        shape = tuple(self._fh.get_slice(marker).get_shape()) if marker in keys else None
        if shape is None or len(shape) != 2 or shape[1] != width:
            what = "an SDXL refiner" if shape and shape[1] == 2560 else "not an SDXL base checkpoint"
            raise ConfigError(
                [
                    Problem(
                        f"{what}: expected {marker} with {width} input features (SGM single-file layout)",
                        key="--base",
                        file=str(self.path),
                        fix=fix,
                    )
                ]
            )
        self.refs: dict[str, BaseRef] = {}
        for key in keys:
            for name, rows, wkey in _lora_name(key):
                full = tuple(self._fh.get_slice(wkey).get_shape())
                if rows is not None:
                    third = full[0] // 3
                    self.refs[name] = BaseRef(wkey, (rows * third, (rows + 1) * third), (third, *full[1:]))
                else:
                    self.refs[name] = BaseRef(wkey, None, full)
        self._open_cache()

    def check_layers(self, layers: dict, lora_path: str) -> None:
        """Refuse a LoRA whose layers the base does not have, or has with other shapes."""
        missing, wrong = [], []
        for name, layer in layers.items():
            ref = self.refs.get(name)
            if ref is None:
                missing.append(name)
                continue
            out, n = layer.weight_shape[0], layer.in_flat
            base_n = 1
            for d in ref.shape[1:]:
                base_n *= d
            if ref.shape[0] != out or base_n != n:
                wrong.append(f"{name} (LoRA {layer.weight_shape}, base {ref.shape})")
        problems = []
        if missing:
            problems.append(
                Problem(
                    f"{len(missing)} of {len(layers)} LoRA layers have no weight in the base checkpoint "
                    f"(first: {', '.join(missing[:3])})",
                    key="--base",
                    file=str(self.path),
                    fix=f"the LoRA {lora_path} was not trained on this SDXL checkpoint; give the right base",
                )
            )
        if wrong:
            problems.append(
                Problem(
                    f"{len(wrong)} LoRA layers do not match the base's weight shapes (first: {wrong[0]})",
                    key="--base",
                    file=str(self.path),
                    fix="give the checkpoint the LoRA was trained on",
                )
            )
        if problems:
            raise ConfigError(problems)

    def norms(self, name: str, kinds: set[str], device="cpu") -> dict:
        """{"fro": ‖W‖_F, "spn": ‖W‖_2} of a layer's base weight, from the cache when it has them."""
        cached = self._cache.get(name, {})
        missing = kinds - set(cached)
        if missing:
            import torch

            raw = self.weight(name, as_stored=True)
            if "fro" in missing:
                cached["fro"] = frobenius(raw)
            if "spn" in missing:
                cached["spn"] = spectral_norm(raw.to(device=device, dtype=torch.float32))
            self._cache[name] = cached
            self._dirty = True
        return {k: cached[k] for k in kinds}

    def save_cache(self) -> None:
        """Keep the norms for the next run on this checkpoint (reading a whole SDXL base takes seconds)."""
        if not self._dirty or self._cache_file is None:
            return
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=str(self._cache_file.parent), suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(self._cache, fh)
            os.replace(tmp, self._cache_file)
            self._dirty = False
        except OSError:
            pass  # a cache we cannot write only costs time

    def _open_cache(self) -> None:
        """The cache key is the file's header, size and modification time: a replaced or re-saved
        checkpoint gets a new key, a moved one keeps its norms."""
        self._cache, self._dirty, self._cache_file = {}, False, None
        self._layout, self._data_start = None, 0
        from loratrain.safetensors_header import read_header_bytes

        try:
            stat = self.path.stat()
            header = read_header_bytes(self.path)
            self._layout, self._data_start = json.loads(header), 8 + len(header)
        except (OSError, ValueError):  # HeaderError is a ValueError
            return
        digest = hashlib.sha256(header + f"|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        self._cache_file = cache_dir() / "base-norms" / f"{digest[:32]}.json"
        try:
            self._cache = json.loads(self._cache_file.read_text())
        except (OSError, ValueError):
            self._cache = {}

    def weight(self, name: str, as_stored: bool = False):
        """The base weight of a LoRA layer flattened to (out, in·kh·kw), as float32 or in its stored dtype.

        Read with plain file reads rather than through safe_open's memory map: mapped pages stay in the
        process's resident set, so reading a whole SDXL base would show ~5 GB of RSS; this keeps one
        tensor at a time.
        """
        import torch

        ref = self.refs[name]
        entry = self._layout.get(ref.key) if self._layout else None
        stored = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}.get(
            entry["dtype"] if entry else ""
        )
        if stored is None:  # anything unusual: let safetensors decode it
            if ref.rows is None:
                w = self._fh.get_tensor(ref.key)
            else:
                w = self._fh.get_slice(ref.key)[ref.rows[0] : ref.rows[1]]
            return (w if as_stored else w.to(torch.float32)).reshape(w.shape[0], -1)
        assert entry is not None  # a known dtype came from the entry
        start, end = entry["data_offsets"]
        shape = list(entry["shape"])
        if ref.rows is not None:
            row_bytes = (end - start) // shape[0]
            start, shape[0] = start + ref.rows[0] * row_bytes, ref.rows[1] - ref.rows[0]
            end = start + shape[0] * row_bytes
        buf = bytearray(end - start)
        with open(self.path, "rb") as fh:
            fh.seek(self._data_start + start)
            fh.readinto(buf)
        w = torch.frombuffer(buf, dtype=stored).reshape(shape[0], -1)
        return w if as_stored else w.to(torch.float32)


def cache_dir() -> Path:
    """`$LORATRAIN_CACHE_DIR`, else `$XDG_CACHE_HOME/loratrain`, else `~/.cache/loratrain`."""
    if os.environ.get("LORATRAIN_CACHE_DIR"):
        return Path(os.environ["LORATRAIN_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "loratrain"


def frobenius(w, chunk: int = 1 << 20) -> float:
    """‖w‖_F of a tensor in any float dtype, converted to float32 one cache-sized chunk at a time.

    Converting a whole fp16 weight to float32 first writes and re-reads 4 bytes per element: on the
    2-core dev box 33 ms for a 1280 × 11520 conv weight against 3 ms in 1M-element chunks, and the
    chunks' float64 sum is also closer to the exact norm (7e-4 relative error for a single float32
    reduction over 15M elements, 1e-6 here).
    """
    import torch

    flat = w.reshape(-1)
    buf = torch.empty(min(chunk, flat.numel()), dtype=torch.float32, device=flat.device)
    total = 0.0
    for part in flat.split(chunk):
        view = buf[: part.numel()]
        view.copy_(part)
        total += float(torch.dot(view, view))
    return total**0.5


def spectral_norm(W) -> float:
    """Largest singular value by seeded randomized subspace iteration (8 vectors, 8 passes).

    Deterministic for a given weight. A dense SVD of a 1280 × 11520 conv weight takes seconds on a CPU;
    this reads W 18 times. The estimate is a lower bound within ~1e-4 relative on SDXL weights, which
    moves a log10 score by ~4e-5.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _, s, _ = torch.svd_lowrank(W, q=min(8, *W.shape), niter=8)
    return float(s[0])
