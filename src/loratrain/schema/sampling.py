"""[sampling]: preview images drawn during training."""

from __future__ import annotations

from pydantic import conint, field_validator

from loratrain.schema.choices import Sampler
from loratrain.schema.common import Group, flag

PROMPT_EXTENSIONS = (".txt", ".toml", ".json")


class SamplingArgs(Group):
    sample_prompts: str | None = flag(
        "Prompt file for preview images (.txt, .toml or .json). In .txt, one prompt per line with options "
        "--n negative, --w/--h size, --d seed, --l CFG scale, --s steps.",
        advice="Keep each prompt within 75 CLIP tokens; with several GPUs make the prompt count divisible by the "
        "number of GPUs so none idles.",
        interacts=("sampling.sample_every_n_steps", "sampling.sample_every_n_epochs", "sampling.sample_sampler"),
        example="/training_dir/sample-prompts.txt",
    )
    sample_sampler: Sampler | None = flag(
        "Sampler for preview images. sd-scripts' default is ddim; k_ names are aliases (k = Karras, _a = ancestral).",
        advice="euler_a for toony styles, k_dpm_2 for realistic ones; anything but the default ddim.",
        example="euler_a",
    )
    sample_every_n_steps: conint(ge=1) | None = flag(
        "Draw preview images every N steps. Ignored when sample_every_n_epochs is set.",
        advice="The guide's example samples every 100 steps.",
        interacts=("sampling.sample_every_n_epochs", "sampling.sample_prompts"),
        example=100,
    )
    sample_every_n_epochs: conint(ge=1) | None = flag(
        "Draw preview images every N epochs; takes precedence over sample_every_n_steps.",
        advice="The guide mentions it as the alternative that overrides the step interval.",
        interacts=("sampling.sample_every_n_steps",),
    )
    sample_at_first: bool | None = flag("Also draw preview images before the first step.")

    @field_validator("sample_prompts")
    @classmethod
    def _prompt_extension(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().endswith(PROMPT_EXTENSIONS):
            raise ValueError(
                f"{value!r}: sd-scripts reads prompt files ending in .txt, .toml or .json and fails on anything else"
            )
        return value
