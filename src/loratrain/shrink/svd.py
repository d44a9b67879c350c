"""Singular value decomposition of a LoRA update without ever forming it.

ΔW = s · A · B with A (out × r) and B (r × n) has rank ≤ r. With A = Qa·Ra and Bᵀ = Qb·Rb (thin QR),
ΔW = Qa · (s·Ra·Rbᵀ) · Qbᵀ, so the SVD of the small r × r core, rotated back by Qa and Qb, is the exact
thin SVD of ΔW: O((out + n)·r²) work instead of O(out·n·min(out, n)) for a dense SVD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Spectrum:
    """Thin SVD of one layer's update: ΔW (flattened to out × n) = U · diag(S) · Vh."""

    U: Any  # (out, q)
    S: Any  # (q,), descending, float32
    Vh: Any  # (q, n)
    full_len: int  # min(out, n): the length of the spectrum a dense SVD would return

    @property
    def sigma0(self) -> float:
        return float(self.S[0]) if self.S.numel() else 0.0


def factors(layer, device="cpu"):
    """(A, B) with ΔW = A @ B flattened to (out, in·kh·kw); the LoRA scale is folded into A.

    A Tucker core is folded into B: B[i, c, y, x] = Σ_j mid[i, j, y, x] · down[j, c], which is how
    LyCORIS rebuilds a Tucker LoCon (the core's first index meets up, its second meets down).
    """
    import torch

    up = layer.up.to(device=device, dtype=torch.float32)
    down = layer.down.to(device=device, dtype=torch.float32)
    A = up.reshape(up.shape[0], -1) * layer.scale
    if layer.mid is not None:
        mid = layer.mid.to(device=device, dtype=torch.float32)
        B = torch.einsum("ijyx,jc->icyx", mid, down.reshape(down.shape[0], -1))
        B = B.reshape(B.shape[0], -1)
    else:
        B = down.reshape(down.shape[0], -1)
    return A, B


def low_rank_svd(A, B) -> Spectrum:
    """Exact thin SVD of A @ B through two thin QRs and one small SVD (computed in float64)."""
    import torch

    Qa, Ra = torch.linalg.qr(A)
    Qb, Rb = torch.linalg.qr(B.T)
    core = Ra.double() @ Rb.double().T
    u, s, vh = torch.linalg.svd(core, full_matrices=False)
    U = Qa @ u.to(Qa.dtype)
    Vh = vh.to(Qb.dtype) @ Qb.T
    return Spectrum(U=U, S=s.to(torch.float32), Vh=Vh, full_len=min(A.shape[0], B.shape[1]))


def layer_spectrum(layer, device="cpu") -> Spectrum:
    A, B = factors(layer, device)
    return low_rank_svd(A, B)
