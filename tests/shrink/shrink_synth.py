"""Synthetic LoRA / LyCORIS files and SDXL-layout base checkpoints with known spectra.

Every down/up layer is built as ΔW = U·diag(σ)·Vᵀ with orthonormal U, V and a chosen σ, stored the way
sd-scripts stores it (scale alpha/r outside), so the tests know the exact singular values.
"""

from __future__ import annotations

import math

import torch
from safetensors.torch import save_file

LINEAR_Q = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
LINEAR_FF = "lora_unet_input_blocks_4_1_transformer_blocks_0_ff_net_2"
CONV3 = "lora_unet_input_blocks_4_0_in_layers_2"
CONV1 = "lora_unet_input_blocks_4_0_skip_connection"
TE1_Q = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"
TE1_ZERO = "lora_te1_text_model_encoder_layers_11_self_attn_q_proj"
TE2 = "lora_te2_text_model_encoder_layers_0_self_attn_{}_proj"

UNET = "model.diffusion_model."
TE1P = "conditioner.embedders.0.transformer.text_model."
TE2P = "conditioner.embedders.1.model.transformer.resblocks."


def geometric(r: int, step: float = 4.0, top: float = 1.0) -> torch.Tensor:
    """σᵢ = top·10^(−i/step): the spectrum the reference's measurements used."""
    return top * 10 ** (-torch.arange(r, dtype=torch.float64) / step)


def orthonormal(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=gen, dtype=torch.float64))
    return q


def known_layer(out: int, in_flat: int, sigma: torch.Tensor, alpha: float, gen, kernel=()):
    """(down, up, alpha) with (alpha/r)·up·down = U diag(σ) Vᵀ exactly (up to float32 rounding)."""
    r = len(sigma)
    U, V = orthonormal(out, r, gen), orthonormal(in_flat, r, gen)
    s = alpha / r
    root = torch.sqrt(sigma / s)
    up = (U * root).float()
    down = (root[:, None] * V.T).float()
    if kernel:
        up = up.reshape(out, r, 1, 1)
        down = down.reshape(r, in_flat // math.prod(kernel), *kernel)
    return {"lora_down.weight": down, "lora_up.weight": up, "alpha": torch.tensor(float(alpha))}


def add(tensors: dict, name: str, parts: dict) -> None:
    for suffix, t in parts.items():
        tensors[f"{name}.{suffix}"] = t


def lora_tensors(seed: int = 0) -> dict:
    """A LoRA + LoCon mix covering UNet linear, 3x3 and 1x1 convs, CLIP-L, CLIP-G q/k/v, a zero layer."""
    gen = torch.Generator().manual_seed(seed)
    t: dict = {}
    add(t, LINEAR_Q, known_layer(64, 48, geometric(16), 8.0, gen))
    add(t, LINEAR_FF, known_layer(48, 96, geometric(16, step=3, top=3.0), 16.0, gen))
    add(t, CONV3, known_layer(40, 32 * 9, geometric(8, step=2, top=0.5), 1.0, gen, kernel=(3, 3)))
    add(t, CONV1, known_layer(40, 32, geometric(8), 4.0, gen, kernel=(1, 1)))
    add(t, TE1_Q, known_layer(32, 32, geometric(8, top=0.2), 8.0, gen))
    for p in "qkv":
        add(t, TE2.format(p), known_layer(40, 40, geometric(8, step=2), 8.0, gen))
    zero = known_layer(32, 32, geometric(8), 8.0, gen)
    zero["lora_up.weight"] = torch.zeros_like(zero["lora_up.weight"])
    add(t, TE1_ZERO, zero)
    return t


def tucker_layer(out: int, cin: int, r: int, gen, alpha: float = 4.0) -> dict:
    return {
        "lora_down.weight": torch.randn(r, cin, 1, 1, generator=gen) * 0.3,
        "lora_mid.weight": torch.randn(r, r, 3, 3, generator=gen) * 0.3,
        "lora_up.weight": torch.randn(out, r, 1, 1, generator=gen) * 0.3,
        "alpha": torch.tensor(alpha),
    }


def tucker_delta(parts: dict) -> torch.Tensor:
    """ΔW of a Tucker LoCon, written out index by index: ΔW[o,c,y,x] = s·Σ up[o,i]·mid[i,j,y,x]·down[j,c]."""
    up = parts["lora_up.weight"].double()[:, :, 0, 0]
    down = parts["lora_down.weight"].double()[:, :, 0, 0]
    mid = parts["lora_mid.weight"].double()
    s = float(parts["alpha"]) / down.shape[0]
    return s * torch.einsum("oi,ijyx,jc->ocyx", up, mid, down)


def loha_layer(out: int, cin: int, r: int, gen) -> dict:
    return {
        "hada_w1_a": torch.randn(out, r, generator=gen),
        "hada_w1_b": torch.randn(r, cin, generator=gen),
        "hada_w2_a": torch.randn(out, r, generator=gen),
        "hada_w2_b": torch.randn(r, cin, generator=gen),
        "alpha": torch.tensor(float(r)),
    }


def base_tensors(fro: dict | None = None, sdxl: bool = True, seed: int = 1) -> dict:
    """An SGM-layout SDXL checkpoint holding just the weights the synthetic LoRA touches.

    Each weight is scaled to a chosen Frobenius norm so `fro_ckpt` references are known. CLIP-G's fused
    in_proj has q, k, v thirds with norms 1, 10 and 100 so a test can tell which third a layer was scored
    against.
    """
    gen = torch.Generator().manual_seed(seed)
    fro = fro or {}

    def weight(shape, norm):
        w = torch.randn(*shape, generator=gen)
        return (w * (norm / w.norm())).to(torch.float16)

    t = {
        UNET + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight": weight((64, 48), fro.get(LINEAR_Q, 20.0)),
        UNET + "input_blocks.4.1.transformer_blocks.0.ff.net.2.weight": weight((48, 96), fro.get(LINEAR_FF, 30.0)),
        UNET + "input_blocks.4.0.in_layers.2.weight": weight((40, 32, 3, 3), fro.get(CONV3, 10.0)),
        UNET + "input_blocks.4.0.skip_connection.weight": weight((40, 32, 1, 1), fro.get(CONV1, 5.0)),
        TE1P + "encoder.layers.0.self_attn.q_proj.weight": weight((32, 32), fro.get(TE1_Q, 8.0)),
        TE1P + "encoder.layers.11.self_attn.q_proj.weight": weight((32, 32), 8.0),
        TE2P + "0.attn.in_proj_weight": torch.cat([weight((40, 40), n) for n in (1.0, 10.0, 100.0)]),
        TE2P + "0.attn.out_proj.weight": weight((40, 40), 4.0),
    }
    if sdxl:
        t[UNET + "label_emb.0.0.weight"] = torch.zeros(4, 2816, dtype=torch.float16)
    return t


def save(path, tensors: dict, metadata: dict | None = None):
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


TRAINING_METADATA = {
    "ss_network_module": "lycoris.kohya",
    "ss_network_dim": "16",
    "ss_network_alpha": "8",
    "ss_network_args": '{"conv_dim": "8", "conv_alpha": "1", "algo": "locon"}',
    "ss_base_model_version": "sdxl_base_v1-0",
    "ss_training_comment": "trained for a test",
    "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
    "sshs_model_hash": "stale",
    "sshs_legacy_hash": "stale",
}
