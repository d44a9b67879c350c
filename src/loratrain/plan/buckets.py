"""Aspect-ratio buckets exactly as sd-scripts makes them (`make_bucket_resolutions`, `BucketManager`).

Three modes: `enable_bucket` (a fixed bucket list around the resolution's area; an image goes to the
bucket with the nearest aspect ratio, scaled to cover it), `enable_bucket` + `bucket_no_upscale` (each
image's own size, shrunk to the resolution's area when larger, floored to `bucket_reso_steps`), and no
bucketing (one bucket, the resolution). Arithmetic mirrors sd-scripts' so the buckets match to the pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loratrain.errors import Problem
from loratrain.sdscripts import flags


@dataclass(frozen=True)
class BucketSettings:
    """The bucket-related arguments of one dataset (unset ones take sd-scripts' defaults from the flag table)."""

    resolution: tuple[int, int]
    enable_bucket: bool = False
    min_bucket_reso: int = field(default_factory=lambda: flags.default("min_bucket_reso"))
    max_bucket_reso: int = field(default_factory=lambda: flags.default("max_bucket_reso"))
    bucket_reso_steps: int = field(default_factory=lambda: flags.default("bucket_reso_steps"))
    bucket_no_upscale: bool = False


def rounded_min_max(min_reso: int, max_reso: int, steps: int) -> tuple[int, int]:
    """min_bucket_reso rounded down and max_bucket_reso rounded up to a multiple of `steps`, as sd-scripts does."""
    lo = min_reso - min_reso % steps
    hi = max_reso if max_reso % steps == 0 else max_reso + steps - max_reso % steps
    return lo, hi


def _resolution_failures(resolution: tuple[int, int], lo: int, hi: int, no_upscale: bool) -> list[tuple[str, str, str]]:
    """(key, message, fix) for each of sd-scripts' two resolution asserts that fails, in its order."""
    # sd-scripts runs these asserts whenever bucketing is on, before it looks at bucket_no_upscale.
    also = " (it checks this even with bucket_no_upscale)" if no_upscale else ""
    width, height = resolution
    failures = []
    if min(width, height) < lo:
        failures.append(
            (
                "min_bucket_reso",
                f"min_bucket_reso {lo} is larger than the resolution's shorter side {min(width, height)}; "
                f"sd-scripts stops with an AssertionError{also}",
                "lower min_bucket_reso or raise resolution",
            )
        )
    if max(width, height) > hi:
        failures.append(
            (
                "max_bucket_reso",
                f"max_bucket_reso {hi} is smaller than the resolution's longer side {max(width, height)}; "
                f"sd-scripts stops with an AssertionError{also}",
                "raise max_bucket_reso or lower resolution",
            )
        )
    return failures


def resolution_bucket_problem(
    resolution_w: int,
    resolution_h: int,
    enable_bucket: bool,
    bucket_no_upscale: bool,
    min_reso: int,
    max_reso: int,
    steps: int,
) -> str | None:
    """Why sd-scripts stops at its dataset's min/max bucket check for these settings, or None when it passes.

    With bucketing on, sd-scripts rounds min/max to `steps` and asserts the resolution lies between them;
    `bucket_no_upscale` does not skip this (it only stops min/max from shaping the buckets).
    """
    if not enable_bucket:
        return None
    if steps < 1:
        return f"bucket_reso_steps {steps} is not positive; sd-scripts fails dividing by it"
    lo, hi = rounded_min_max(min_reso, max_reso, steps)
    failures = _resolution_failures((resolution_w, resolution_h), lo, hi, bucket_no_upscale)
    return failures[0][1] if failures else None  # sd-scripts stops at the first


def adjust_min_max(settings: BucketSettings) -> tuple[int, int, list[Problem]]:
    """sd-scripts' rounding of min (down) and max (up) to `bucket_reso_steps`, and its two asserts.

    Returns the effective min and max and the problems: warnings for a rounding, errors where
    sd-scripts would stop with an AssertionError.
    """
    steps = settings.bucket_reso_steps
    lo, hi = rounded_min_max(settings.min_bucket_reso, settings.max_bucket_reso, steps)
    problems: list[Problem] = []
    if lo != settings.min_bucket_reso:
        problems.append(
            Problem(
                f"sd-scripts rounds min_bucket_reso down to a multiple of bucket_reso_steps ({steps}): "
                f"{settings.min_bucket_reso} -> {lo}",
                key="min_bucket_reso",
                severity="warning",
                fix=f"set min_bucket_reso = {lo}",
            )
        )
    if hi != settings.max_bucket_reso:
        problems.append(
            Problem(
                f"sd-scripts rounds max_bucket_reso up to a multiple of bucket_reso_steps ({steps}): "
                f"{settings.max_bucket_reso} -> {hi}",
                key="max_bucket_reso",
                severity="warning",
                fix=f"set max_bucket_reso = {hi}",
            )
        )
    for key, message, fix in _resolution_failures(settings.resolution, lo, hi, settings.bucket_no_upscale):
        problems.append(Problem(message, key=key, fix=fix))
    return lo, hi, problems


MAX_BUCKETS = 100_000


def bucket_resolutions(resolution: tuple[int, int], min_size: int, max_size: int, step: int) -> list[tuple[int, int]]:
    """The predefined bucket list (sd-scripts' `make_bucket_resolutions`), sorted."""
    area = resolution[0] * resolution[1]
    side = int(math.sqrt(area) // step) * step
    resos = {(side, side)}
    width = max(min_size, step)  # a minimum rounded down to 0 by a coarse step would divide by zero
    max_size = min(max_size, width + MAX_BUCKETS * step)  # bounded whatever the settings (dataset_config)
    while width <= max_size:
        height = min(max_size, int((area // width) // step) * step)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += step
    return sorted(resos)


class Bucketer:
    """Assigns image sizes to buckets for one dataset's settings. Results are cached per size."""

    def __init__(self, settings: BucketSettings):
        self.settings = settings
        self.problems: list[Problem] = []
        self.area = settings.resolution[0] * settings.resolution[1]
        self.predefined: list[tuple[int, int]] = []
        if settings.enable_bucket:
            lo, hi, self.problems = adjust_min_max(settings)
            self.min_size, self.max_size = lo, hi
            self.step = settings.bucket_reso_steps
            if settings.bucket_no_upscale:
                self.problems.append(
                    Problem(
                        "with bucket_no_upscale, min_bucket_reso and max_bucket_reso do not limit the bucket "
                        "sizes (buckets follow each image's own size); sd-scripts still requires the resolution "
                        "to lie between them",
                        key="bucket_no_upscale",
                        severity="warning",
                    )
                )
            else:
                self.predefined = bucket_resolutions(settings.resolution, lo, hi, self.step)
        else:
            self.predefined = [settings.resolution]
        self._predefined_set = set(self.predefined)
        self._aspects = [w / h for w, h in self.predefined]
        self._cache: dict[tuple[int, int], tuple[int, int]] = {}

    @property
    def no_upscale(self) -> bool:
        return self.settings.enable_bucket and self.settings.bucket_no_upscale

    def assign(self, width: int, height: int) -> tuple[int, int]:
        """The bucket (width, height) sd-scripts puts an image of this size into."""
        key = (width, height)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._no_upscale(width, height) if self.no_upscale else self._nearest(width, height)
            self._cache[key] = hit
        return hit

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the image is scaled to before the crop to its bucket (upscaling modes)."""
        bw, bh = self.assign(width, height)
        aspect = width / height
        scale = bh / height if aspect > bw / bh else bw / width
        return int(width * scale + 0.5), int(height * scale + 0.5)

    def _nearest(self, width: int, height: int) -> tuple[int, int]:
        if (width, height) in self._predefined_set:
            return (width, height)
        aspect = width / height
        # min() keeps the first of equal errors, as numpy's argmin does.
        best = min(range(len(self._aspects)), key=lambda i: abs(self._aspects[i] - aspect))
        return self.predefined[best]

    def _round(self, x: float) -> int:
        x = int(x + 0.5)
        return x - x % self.step

    def _no_upscale(self, width: int, height: int) -> tuple[int, int]:
        aspect = width / height
        if width * height > self.area:
            rw = math.sqrt(self.area * aspect)
            rh = self.area / rw
            bw_from_w = self._round(rw)
            bh_from_w = self._round(bw_from_w / aspect)
            bh_from_h = self._round(rh)
            bw_from_h = self._round(bh_from_h * aspect)
            # sd-scripts divides by these; a zero only happens for absurd aspect ratios.
            err_w = abs(bw_from_w / bh_from_w - aspect) if bh_from_w else math.inf
            err_h = abs(bw_from_h / bh_from_h - aspect) if bh_from_h else math.inf
            if err_w < err_h:
                resized = (bw_from_w, int(bw_from_w / aspect + 0.5))
            else:
                resized = (int(bh_from_h * aspect + 0.5), bh_from_h)
        else:
            resized = (width, height)
        return resized[0] - resized[0] % self.step, resized[1] - resized[1] % self.step
