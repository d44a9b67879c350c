"""[precision]: numeric precision of training and of the VAE."""

from __future__ import annotations

from loratrain.schema.choices import MixedPrecision
from loratrain.schema.common import Group, flag


class PrecisionArgs(Group):
    mixed_precision: MixedPrecision | None = flag(
        "Training precision: no (full 32-bit, slow and stable), fp16 (fast, may overflow into NaN), bf16 (fast, "
        "wide range; needs an Ampere or newer GPU). sd-scripts' value decides, not accelerate's.",
        advice="bf16 where the GPU supports it; fp16 otherwise. Switch to no if losses turn NaN.",
        interacts=("precision.full_fp16", "precision.full_bf16", "accelerate.mixed_precision"),
        example="bf16",
    )
    full_fp16: bool | None = flag(
        "Keep the adapter's gradients in fp16 too (less VRAM, less stable); the U-Net and text encoders are also "
        "loaded in fp16, halving their host memory. Requires mixed_precision fp16.",
        interacts=("precision.mixed_precision",),
    )
    full_bf16: bool | None = flag(
        "Keep the adapter's gradients in bf16 too; the U-Net and text encoders are also loaded in bf16, halving "
        "their host memory. Requires mixed_precision bf16.",
        interacts=("precision.mixed_precision",),
    )
    no_half_vae: bool | None = flag(
        "Run the SDXL VAE in 32-bit even under mixed precision; the half-precision SDXL VAE tends to produce NaNs.",
        advice="Turn it on; it avoids NaNs.",
        example=True,
    )
    fp8_base: bool | None = flag(
        "Hold the frozen base model in fp8 to save VRAM (needs torch 2.1+ and mixed precision).",
        interacts=("precision.mixed_precision",),
    )
