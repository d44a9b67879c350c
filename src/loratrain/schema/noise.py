"""[noise]: how noise is sampled during training."""

from __future__ import annotations

from pydantic import confloat, conint

from loratrain.schema.common import Group, flag


class NoiseArgs(Group):
    noise_offset: confloat(ge=0.0) | None = flag(
        "Add a per-channel offset to the noise so the model learns very dark and very bright images (typical 0.0357).",
        interacts=("noise.adaptive_noise_scale",),
    )
    multires_noise_iterations: conint(ge=1) | None = flag(
        "Multi-resolution (pyramid) noise: how many downscaled noise layers are added. Helps the model produce "
        "a wider range of brightness and detail.",
        advice="6 to 10, together with multires_noise_discount 0.1; the guide uses it on every run.",
        interacts=("noise.multires_noise_discount",),
        example=10,
    )
    multires_noise_discount: confloat(gt=0.0, le=1.0) | None = flag(
        "How much weaker each coarser level of multi-resolution noise is. Does nothing without "
        "multires_noise_iterations. sd-scripts' default is 0.3.",
        advice="0.1 is the recommended value.",
        interacts=("noise.multires_noise_iterations",),
        example=0.1,
    )
    adaptive_noise_scale: float | None = flag(
        "Scale the noise offset by the latents' mean absolute value; requires noise_offset.",
        interacts=("noise.noise_offset",),
    )
