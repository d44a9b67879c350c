"""[buckets]: aspect-ratio bucketing."""

from __future__ import annotations

from pydantic import conint

from loratrain.schema.common import Group, flag
from loratrain.schema.dataset import MAX_SIDE


class BucketArgs(Group):
    enable_bucket: bool | None = flag(
        "Group images of similar aspect ratio into resolution buckets so that nothing is cropped to a square; "
        "every batch holds images of one size, batches differ in size.",
        advice="Keep it on for datasets with mixed aspect ratios: it avoids the odd crops of square-only training.",
        interacts=("buckets.min_bucket_reso", "buckets.max_bucket_reso", "buckets.bucket_reso_steps"),
        example=True,
    )
    min_bucket_reso: conint(ge=64, le=MAX_SIDE) | None = flag(
        "Smallest side length a bucket may have, in pixels (sd-scripts rounds it down to a multiple of "
        "bucket_reso_steps). sd-scripts' default is 256.",
        advice="The guide's example uses 256 (with max_bucket_reso 1024).",
        interacts=("dataset.resolution", "buckets.bucket_reso_steps", "buckets.bucket_no_upscale"),
        example=256,
    )
    max_bucket_reso: conint(ge=64, le=MAX_SIDE) | None = flag(
        "Largest side length a bucket may have, in pixels (rounded up to a multiple of bucket_reso_steps). "
        "sd-scripts' default is 1024. Must be at least the larger side of the resolution.",
        advice=(
            "The guide's example uses 1024; note that this caps every bucket side at 1024, so non-square buckets have "
            "less area than 1024x1024."
        ),
        interacts=("dataset.resolution", "buckets.bucket_reso_steps", "buckets.bucket_no_upscale"),
        example=1024,
    )
    bucket_reso_steps: conint(ge=1, le=MAX_SIDE) | None = flag(
        "Step between bucket side lengths, in pixels. SDXL requires a multiple of 32; sd-scripts' default is 64.",
        advice="32 gives finer buckets and fits SDXL's requirement.",
        example=32,
    )
    bucket_no_upscale: bool | None = flag(
        "Never enlarge an image to fill a bucket: images larger than the target area are scaled down keeping "
        "their aspect ratio, smaller ones keep their size. min/max_bucket_reso then no longer shape the buckets, "
        "though sd-scripts still requires the resolution to lie between them.",
        advice="The guide uses it to shrink oversized images to the area budget while never enlarging small ones.",
        interacts=("buckets.min_bucket_reso", "buckets.max_bucket_reso"),
        example=True,
    )
