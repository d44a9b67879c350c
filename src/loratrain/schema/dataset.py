"""[dataset]: where the images and captions are and how captions are processed and cached."""

from __future__ import annotations

from typing import Any

from pydantic import confloat, conint, field_validator

from loratrain.schema.choices import MaxTokenLength
from loratrain.schema.common import Group, flag

# Largest image side loratrain accepts anywhere (resolution, bucket sizes): 16384 px is 8x SDXL's native
# 2048 and already far beyond what a GPU can encode; larger values only make the bucket list huge.
MAX_SIDE = 16384


def normalize_resolution(value: Any) -> str:
    """Accept 1024, "1024", "1024,1024" or [1024, 1024]; return sd-scripts' "W,H" text."""
    if isinstance(value, bool):
        raise ValueError('expected a number, "W,H" or [W, H]')
    if isinstance(value, int):
        sides = [value, value]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
            raise ValueError(f'{value!r} is not a resolution; write 1024, "1024,1024" or [1024, 1024]')
        sides = [int(p) for p in parts] * (2 if len(parts) == 1 else 1)
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        sides = list(value)
    else:
        raise ValueError('expected a number, "W,H" or [W, H]')
    if min(sides) < 64:
        raise ValueError(f"each side must be at least 64 pixels, got {sides[0]}x{sides[1]}")
    if max(sides) > MAX_SIDE:
        raise ValueError(f"each side must be at most {MAX_SIDE} pixels, got {sides[0]}x{sides[1]}")
    return f"{sides[0]},{sides[1]}"


Fraction = confloat(ge=0.0, le=1.0)


class DatasetArgs(Group):
    train_data_dir: str | None = flag(
        "Parent folder of the image folders. Each sub-folder is named N_name: N is how often its images repeat "
        "per epoch, name becomes the class token when an image has no caption.",
        interacts=("dataset.dataset_config", "dataset.reg_data_dir", "dataset.caption_extension"),
        example="/training_dir",
    )
    reg_data_dir: str | None = flag(
        "Parent folder of regularisation image folders (same N_name layout). They are repeated to match the "
        "number of training images.",
    )
    dataset_config: str | None = flag(
        "A dataset config file (.toml or .json) describing datasets and subsets in detail. When set, "
        "train_data_dir and reg_data_dir are ignored.",
        interacts=("dataset.train_data_dir", "dataset.dataset_repeats"),
    )
    resolution: str | None = flag(
        'Training resolution: one number for a square or "W,H". With buckets it sets the target pixel area.',
        advice="Match the model's native resolution: 1024x1024 for SDXL/Pony. Drop to 512,512 only as a last "
        "resort when VRAM is short.",
        interacts=("buckets.min_bucket_reso", "buckets.max_bucket_reso"),
        example="1024,1024",
    )
    caption_extension: str | None = flag(
        "File extension of the caption files next to each image. sd-scripts' default is .caption.",
        advice="Set it to .txt when your captions are in .txt files (the usual case); otherwise every caption "
        "is silently missing.",
        example=".txt",
    )
    caption_separator: str | None = flag(
        "Separator between caption pieces, used for shuffling and keep_tokens. sd-scripts' default is a comma.",
        advice="The default comma fits the guide's tag-style captions.",
        interacts=("dataset.shuffle_caption", "dataset.keep_tokens"),
        example=",",
    )
    shuffle_caption: bool | None = flag(
        "Shuffle the comma-separated caption pieces every time an image is used (after the first keep_tokens pieces).",
        advice="Separate both tags and sentences with commas so everything gets shuffled.",
        interacts=("dataset.keep_tokens", "dataset.cache_text_encoder_outputs"),
        example=True,
    )
    keep_tokens: conint(ge=0) | None = flag(
        "Number of leading caption pieces that stay in place when captions are shuffled or dropped.",
        advice="The guide's example keeps the first caption piece (1) fixed while shuffling.",
        interacts=("dataset.shuffle_caption",),
        example=1,
    )
    dataset_repeats: conint(ge=0) | None = flag(
        "Repeat count used for datasets that do not set one: metadata (in_json) mode and dataset_config subsets "
        "without num_repeats. Folder mode takes repeats from the folder names and ignores it.",
        advice=(
            "The guide sets 0. In folder mode that changes nothing (the N_ folder prefixes set repeats); with a "
            "dataset_config or in_json it would skip every subset without num_repeats, so better leave it unset."
        ),
        interacts=("dataset.train_data_dir", "dataset.dataset_config"),
        example=1,
    )
    max_token_length: MaxTokenLength | None = flag(
        "Let captions use 150 or 225 CLIP tokens instead of 75 (sd-scripts splits them into 75-token chunks).",
    )
    cache_latents: bool | None = flag(
        "Encode every image with the VAE once before training and keep the latents in memory: faster steps and "
        "less VRAM, but image augmentations that change pixels (color_aug, random_crop) become impossible.",
        advice=(
            "Recommended for speed; encoding happens once instead of every step, and latents stay consistent across "
            "epochs."
        ),
        interacts=("dataset.cache_latents_to_disk", "dataset.color_aug", "dataset.random_crop"),
        example=True,
    )
    cache_latents_to_disk: bool | None = flag(
        "Like cache_latents, but store the latents as .npz files next to the images so later runs reuse them "
        "(implies cache_latents). The image folders must be writable and have room.",
        advice="Recommended for large datasets that would not fit in RAM; mind the disk space the .npz files take.",
        interacts=("dataset.cache_latents",),
        example=True,
    )
    cache_text_encoder_outputs: bool | None = flag(
        "Run both text encoders once before training and cache their outputs, saving VRAM. Captions then cannot "
        "change between epochs and the text encoders cannot be trained.",
        interacts=(
            "network.network_train_unet_only",
            "dataset.shuffle_caption",
            "dataset.caption_dropout_rate",
            "dataset.caption_tag_dropout_rate",
            "dataset.token_warmup_step",
        ),
    )
    cache_text_encoder_outputs_to_disk: bool | None = flag(
        "Like cache_text_encoder_outputs, but keep the cache on disk next to the images (implies it).",
        interacts=("dataset.cache_text_encoder_outputs",),
    )
    color_aug: bool | None = flag("Randomly shift image colours as an augmentation. Incompatible with latent caching.")
    flip_aug: bool | None = flag("Randomly mirror images horizontally as an augmentation.")
    random_crop: bool | None = flag(
        "Crop a random region instead of the centre when an image does not fit its bucket exactly. "
        "Incompatible with latent caching.",
    )
    caption_dropout_rate: Fraction | None = flag(
        "Probability that an image is trained with an empty caption in a step.",
        interacts=("dataset.cache_text_encoder_outputs",),
    )
    caption_tag_dropout_rate: Fraction | None = flag(
        "Probability that each caption piece (tag) is dropped in a step.",
        interacts=("dataset.cache_text_encoder_outputs",),
    )
    caption_dropout_every_n_epochs: conint(ge=0) | None = flag(
        "Drop every caption on every N-th epoch.",
    )
    token_warmup_step: confloat(ge=0.0) | None = flag(
        "Steps over which the number of caption pieces grows from token_warmup_min to all (a value below 1 is a "
        "fraction of max_train_steps).",
        interacts=("dataset.cache_text_encoder_outputs",),
    )
    token_warmup_min: conint(ge=1) | None = flag("Number of caption pieces used at the start of token warmup.")
    max_data_loader_n_workers: conint(ge=0) | None = flag(
        "Processes that load images in parallel. sd-scripts' default is 8; 0 loads in the main process.",
        advice="The guide's example uses 8.",
        example=8,
    )
    persistent_data_loader_workers: bool | None = flag(
        "Keep data-loader workers alive between epochs (faster epoch starts, more memory).",
    )

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution(cls, value: Any) -> Any:
        return None if value is None else normalize_resolution(value)
