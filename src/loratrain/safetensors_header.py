"""Read a .safetensors header (8-byte little-endian length, then JSON) without loading any tensor.

Enough to tell an SDXL checkpoint from an SD 1.x/2.x one or from a LoRA before a GPU-hour is spent
on loading it, and small enough not to need the safetensors package in loratrain's process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors itself refuses headers above 100 MB


class HeaderError(ValueError):
    """The file is not a readable safetensors file."""


def read_header_bytes(path: str | os.PathLike) -> bytes:
    """The raw JSON header, length-checked against the file (tensor data starts 8 + len(result) bytes in)."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise HeaderError("file is shorter than the 8-byte header length")
        length = int.from_bytes(prefix, "little")
        if length < 2 or length > MAX_HEADER_BYTES or length > size - 8:
            raise HeaderError(f"header length {length} does not fit a {size}-byte file")
        return f.read(length)


def read_header(path: str | os.PathLike) -> dict:
    raw = read_header_bytes(path)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeaderError(f"header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise HeaderError("header is not a JSON object")
    return header


def tensor_names(header: dict) -> list[str]:
    return [k for k in header if k != "__metadata__"]


def model_family(names: list[str]) -> str:
    """'sdxl', 'sd1', 'sd2', 'lora' or 'unknown', from the tensor names of a single-file checkpoint."""
    if any(n.startswith(("lora_unet_", "lora_te", "lora_te1_", "lora_te2_")) for n in names):
        return "lora"
    # SDXL has the second (OpenCLIP bigG) text encoder under conditioner.embedders.1 and a U-Net
    # with the size/crop embedding (label_emb); SD 1.x/2.x have neither.
    if any(n.startswith("conditioner.embedders.1.") for n in names) or any(
        n.startswith("model.diffusion_model.label_emb.") for n in names
    ):
        return "sdxl"
    if any(n.startswith("cond_stage_model.model.") for n in names):
        return "sd2"
    if any(n.startswith("cond_stage_model.transformer.") for n in names):
        return "sd1"
    return "unknown"
