"""The GPUs fit knows by name, and the verdict of a predicted peak against a card's memory."""

from __future__ import annotations

from loratrain.errors import ConfigError, Problem

GIB = 1024**3
FITS_SHARE = 0.95  # a prediction above this share of the card is "tight"


def _gib(n: float) -> float:
    return n / GIB


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
