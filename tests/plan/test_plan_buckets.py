"""Bucket lists and assignments reproduce sd-scripts' BucketManager to the pixel."""

from __future__ import annotations

from loratrain.plan.buckets import Bucketer, BucketSettings, adjust_min_max, bucket_resolutions

SDXL = dict(
    resolution=(1024, 1024), enable_bucket=True, min_bucket_reso=256, max_bucket_reso=1024, bucket_reso_steps=32
)


def test_sdxl_1024_with_step_32_makes_49_buckets_from_256x1024_to_1024x256():
    buckets = bucket_resolutions((1024, 1024), 256, 1024, 32)
    assert len(buckets) == 49
    assert buckets[0] == (256, 1024) and (1024, 256) in buckets  # tallest and widest
    assert (1024, 1024) in buckets and (704, 1024) in buckets and (1024, 704) in buckets
    assert all(w % 32 == 0 and h % 32 == 0 and w * h <= 1024 * 1024 for w, h in buckets)


def test_default_step_64_list_is_symmetric_and_within_area():
    buckets = bucket_resolutions((1024, 1024), 256, 1024, 64)
    assert set(buckets) == {(h, w) for w, h in buckets}
    assert all(w * h <= 1024 * 1024 for w, h in buckets)


def test_portrait_832x1216_goes_to_704x1024_and_is_resized_to_704x1029():
    bucketer = Bucketer(BucketSettings(**SDXL))
    assert bucketer.assign(832, 1216) == (704, 1024)
    assert bucketer.resized_size(832, 1216) == (704, 1029)


def test_small_500x700_image_is_upscaled_into_736x1024():
    assert Bucketer(BucketSettings(**SDXL)).assign(500, 700) == (736, 1024)


def test_image_of_exactly_a_bucket_size_keeps_it():
    bucketer = Bucketer(BucketSettings(**SDXL))
    assert bucketer.assign(1024, 1024) == (1024, 1024)
    assert bucketer.assign(640, 1024) == (640, 1024)


def test_no_upscale_shrinks_3000x1000_to_1728x576_beyond_max_bucket_reso():
    bucketer = Bucketer(BucketSettings(**{**SDXL, "bucket_no_upscale": True}))
    assert bucketer.assign(3000, 1000) == (1728, 576)
    assert any(p.key == "bucket_no_upscale" and p.severity == "warning" for p in bucketer.problems)


def test_no_upscale_keeps_small_images_at_their_size_floored_to_the_step():
    bucketer = Bucketer(BucketSettings(**{**SDXL, "bucket_no_upscale": True}))
    assert bucketer.assign(500, 700) == (480, 672)
    assert bucketer.assign(20, 20) == (0, 0)  # smaller than one step: sd-scripts would make an empty bucket


def test_without_bucketing_every_image_goes_to_the_resolution():
    bucketer = Bucketer(BucketSettings(resolution=(1024, 768)))
    assert {bucketer.assign(w, h) for w, h in [(10, 4000), (4000, 10), (1024, 768)]} == {(1024, 768)}


def test_min_and_max_bucket_reso_are_rounded_to_the_step_with_a_warning():
    lo, hi, problems = adjust_min_max(BucketSettings(**{**SDXL, "min_bucket_reso": 300, "max_bucket_reso": 1100}))
    assert (lo, hi) == (288, 1120)
    assert [p.key for p in problems] == ["min_bucket_reso", "max_bucket_reso"]
    assert all(p.severity == "warning" for p in problems)


def test_min_bucket_reso_above_the_resolution_is_the_assertion_sd_scripts_stops_on():
    _, _, problems = adjust_min_max(BucketSettings(**{**SDXL, "resolution": (512, 512), "min_bucket_reso": 640}))
    assert [(p.key, p.severity) for p in problems] == [("min_bucket_reso", "error")]
    _, _, problems = adjust_min_max(BucketSettings(**{**SDXL, "max_bucket_reso": 896}))
    assert [(p.key, p.severity) for p in problems] == [("max_bucket_reso", "error")]


def test_sd_scripts_resolution_assertion_holds_with_bucket_no_upscale_too():
    from loratrain.plan.buckets import resolution_bucket_problem

    for no_upscale in (False, True):
        message = resolution_bucket_problem(1024, 1024, True, no_upscale, 256, 896, 64)
        assert message is not None and "max_bucket_reso 896" in message and "AssertionError" in message
        message = resolution_bucket_problem(512, 768, True, no_upscale, 640, 2048, 64)
        assert message is not None and "min_bucket_reso 640" in message and "512" in message


def test_resolution_assertion_uses_min_and_max_after_sd_scripts_rounds_them():
    from loratrain.plan.buckets import resolution_bucket_problem

    assert resolution_bucket_problem(1024, 1024, True, False, 256, 1000, 64) is None  # 1000 rounds up to 1024
    message = resolution_bucket_problem(600, 600, True, False, 610, 1024, 64)  # 610 rounds down to 576
    assert message is None
    assert resolution_bucket_problem(1024, 960, True, False, 256, 1024, 32) is None


def test_resolution_assertion_only_runs_with_bucketing_on():
    from loratrain.plan.buckets import resolution_bucket_problem

    assert resolution_bucket_problem(1024, 1024, False, False, 256, 512, 64) is None
    assert resolution_bucket_problem(1024, 1024, False, True, 2048, 512, 0) is None


def test_resolution_assertion_reports_a_step_sd_scripts_would_divide_by_zero_with():
    from loratrain.plan.buckets import resolution_bucket_problem

    message = resolution_bucket_problem(1024, 1024, True, False, 256, 1024, 0)
    assert message is not None and "bucket_reso_steps" in message


def test_no_upscale_with_max_below_the_resolution_errors_without_calling_min_max_ignored():
    bucketer = Bucketer(BucketSettings(**{**SDXL, "bucket_no_upscale": True, "max_bucket_reso": 896}))
    errors = [p for p in bucketer.problems if p.severity == "error"]
    assert [p.key for p in errors] == ["max_bucket_reso"] and "bucket_no_upscale" in errors[0].message
    assert not any("ignored" in p.message for p in bucketer.problems)
    note = [p for p in bucketer.problems if p.key == "bucket_no_upscale"]
    assert note and "still" in note[0].message
