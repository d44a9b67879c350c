"""Scanning N_name folders and dataset_config files the way sd-scripts builds its datasets."""

from __future__ import annotations

import json

from helpers import SIX_SHAPES, make_images

from loratrain.plan.dataset import scan_folder
from loratrain.plan.dataset_config import Subset, plan_datasets, validate_user_config
from loratrain.plan.planner import build_plan

ARGS = {"resolution": "1024,1024", "enable_bucket": True, "bucket_reso_steps": 32, "caption_extension": ".txt"}


def test_reference_example_4_images_x10_and_2_images_x5_make_10_batches_of_8(tmp_path):
    make_images(tmp_path / "train" / "10_foo", SIX_SHAPES[:4])
    make_images(tmp_path / "train" / "5_bar", SIX_SHAPES[4:], ext=".jpg")
    report = build_plan(
        {
            **ARGS,
            "train_data_dir": str(tmp_path / "train"),
            "train_batch_size": 8,
            "gradient_accumulation_steps": 6,
            "max_train_steps": 400,
            "save_every_n_epochs": 50,
        }
    )
    data = report.data
    assert data["train_items"] == 50 and len(data["buckets"]) == 6 and data["batches_per_epoch"] == 10
    assert (data["steps_per_epoch"], data["epochs"], data["total_steps"]) == (2, 200, 400)
    assert [s["epoch"] for s in data["saves"]] == [50, 100, 150, 200]
    assert {
        (d["dir"].rsplit("/", 1)[-1], d["repeats"], d["images"], d["missing_captions"]) for d in data["datasets"]
    } == {("10_foo", 10, 4, 0), ("5_bar", 5, 2, 0)}


def test_folders_without_a_repeat_count_or_with_zero_are_ignored_and_reported(tmp_path):
    for name in ("3_ok", "nocount", "0_zero"):
        make_images(tmp_path / name, [(64, 64)])
    plan = plan_datasets({"train_data_dir": str(tmp_path)})
    assert [s.image_dir.rsplit("/", 1)[-1] for s in plan.datasets[0].subsets] == ["3_ok"]
    messages = " ".join(p.message for p in plan.problems)
    assert "'nocount' has no repeat count" in messages and "'0_zero' has 0 repeats" in messages


def test_folder_name_after_the_count_becomes_the_class_tokens(tmp_path):
    make_images(tmp_path / "2_my_char", [(64, 64)])
    (subset,) = plan_datasets({"train_data_dir": str(tmp_path)}).datasets[0].subsets
    assert (subset.num_repeats, subset.class_tokens, subset.caption_extension) == (2, "my_char", ".caption")


def test_caption_states_are_counted_per_folder(tmp_path):
    folder = tmp_path / "1_x"
    make_images(folder, [(64, 64)] * 6, caption=None)
    (folder / "img0.txt").write_text("good caption\nsecond line ignored", encoding="utf-8")
    (folder / "img1.txt").write_bytes(b"")
    (folder / "img2.txt").write_bytes("caf\xe9".encode("latin-1"))
    (folder / "img3.txt").write_text("   \n", encoding="utf-8")
    (folder / "stray.txt").write_text("no image", encoding="utf-8")
    (folder / "anim.gif").write_bytes(b"GIF89a")
    (folder / "shout.Png").write_bytes(b"")
    scan = scan_folder(Subset(image_dir=str(folder), num_repeats=1, caption_extension=".txt"))
    assert scan.captions_found == 4
    assert scan.missing_captions == ["img4.png", "img5.png"]
    assert (scan.empty_captions, scan.not_utf8_captions, scan.blank_captions) == (
        ["img1.txt"],
        ["img2.txt"],
        ["img3.txt"],
    )
    assert scan.captions[0] == "good caption"
    assert scan.orphan_captions == ["stray.txt"]
    assert scan.unsupported == ["anim.gif", "shout.Png"]


def test_wrong_caption_extension_is_spotted_and_the_fix_named(tmp_path):
    make_images(tmp_path / "train" / "1_x", [(64, 64)] * 3, caption_ext=".txt")
    report = build_plan({"resolution": "1024,1024", "train_data_dir": str(tmp_path / "train")})  # default .caption
    (problem,) = [p for p in report.problems if "no .caption caption" in p.message]
    assert 'caption_extension = ".txt"' in problem.fix
    assert report.data["datasets"][0]["missing_captions"] == 3


def test_corrupt_image_and_empty_caption_are_errors_but_the_scan_goes_on(tmp_path):
    folder = tmp_path / "train" / "1_x"
    make_images(folder, [(1024, 1024), (832, 1216)])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    (folder / "img1.txt").write_bytes(b"")
    report = build_plan({**ARGS, "train_data_dir": str(tmp_path / "train")})
    errors = " | ".join(p.message for p in report.errors)
    assert "broken.jpg: unreadable image (truncated JPEG" in errors
    assert "empty caption file" in errors
    assert report.data["datasets"][0]["images"] == 3 and len(report.data["buckets"]) == 2


def test_regularisation_images_are_repeated_up_to_the_training_items(tmp_path):
    make_images(tmp_path / "train" / "5_a", [(1024, 1024)] * 2)
    make_images(tmp_path / "reg" / "1_person", [(1024, 1024)] * 3)
    report = build_plan(
        {
            **ARGS,
            "train_data_dir": str(tmp_path / "train"),
            "reg_data_dir": str(tmp_path / "reg"),
            "train_batch_size": 4,
        }
    )
    assert (report.data["train_items"], report.data["reg_items"]) == (10, 10)
    assert report.data["buckets"] == [
        {
            "dataset": 0,
            "width": 1024,
            "height": 1024,
            "images": 5,
            "items": 20,
            "batches": 5,
            "batch_size": 4,
            "partial": False,
            "short": False,
        }
    ]


def test_small_buckets_get_a_partial_batch_warning(tmp_path):
    make_images(tmp_path / "train" / "1_x", [(1024, 1024)] * 4 + [(1344, 768)])
    report = build_plan({**ARGS, "train_data_dir": str(tmp_path / "train"), "train_batch_size": 4})
    (warning,) = [p for p in report.problems if "fewer items than the batch size" in p.message]
    assert "1024x576 (1)" in warning.message and warning.severity == "warning"


def test_long_captions_warn_with_their_token_count(tmp_path):
    long_caption = ", ".join(f"tag{i} word{i}" for i in range(20))
    make_images(tmp_path / "train" / "1_x", [(64, 64)], caption=long_caption)
    report = build_plan({**ARGS, "train_data_dir": str(tmp_path / "train")})
    if report.data["tokenizer"] is None:
        return  # no CLIP vocabulary here: covered by the tokenizer tests' skip
    (warning,) = [p for p in report.problems if "longer than 75 tokens" in p.message]
    assert str(report.data["datasets"][0]["longest_caption_tokens"]) in warning.message
    report = build_plan({**ARGS, "train_data_dir": str(tmp_path / "train"), "max_token_length": 225})
    assert not [p for p in report.problems if "longer than" in p.message]


def test_dataset_config_values_inherit_from_general_dataset_and_command_line(tmp_path):
    make_images(tmp_path / "a", [(1024, 1024)] * 2, caption_ext=".cap")
    make_images(tmp_path / "b", [(1024, 1024)], caption_ext=".txt")
    config = tmp_path / "ds.toml"
    config.write_text(
        f'''
[general]
caption_extension = ".cap"
[[datasets]]
resolution = 1024
batch_size = 2
  [[datasets.subsets]]
  image_dir = "{tmp_path / "a"}"
  num_repeats = 3
  [[datasets.subsets]]
  image_dir = "{tmp_path / "b"}"
  caption_extension = ".txt"
''',
        encoding="utf-8",
    )
    plan = plan_datasets({"dataset_config": str(config), "train_data_dir": "/ignored", "dataset_repeats": 2})
    (ds,) = plan.datasets
    assert [(s.num_repeats, s.caption_extension) for s in ds.subsets] == [(3, ".cap"), (2, ".txt")]
    assert ds.batch_size == 2 and ds.buckets.resolution == (1024, 1024)
    assert any("ignored because dataset_config is set: train_data_dir" in p.message for p in plan.problems)
    report = build_plan({"dataset_config": str(config)})
    assert report.data["train_items"] == 7 and report.data["batches_per_epoch"] == 4


def test_dataset_config_problems_read_like_sd_scripts_schema_errors():
    problems = validate_user_config(
        {
            "general": {"shuffle_captions": True, "validation_split": 0},
            "datasets": [
                {"batch_size": 1.5, "subsets": [{"num_repeats": 2}]},
                {"subsets": [{"image_dir": "a"}, {"metadata_file": "m.json"}]},
            ],
            "extra": 1,
        },
        file="ds.toml",
    )
    got = {(p.key, p.message.split(" (")[0].split(",")[0]) for p in problems}
    assert ("extra", "unknown key") in got
    assert ("general.shuffle_captions", "unknown key") in got
    assert ("general.validation_split", "expected float") in got
    assert ("datasets[0].batch_size", "expected a positive int") in got
    assert ("datasets[0].subsets[0].image_dir", "required key not provided") in got
    assert any(p.key == "datasets[1]" and "cannot be mixed" in p.message for p in problems)
    fixes = {p.key: p.fix for p in problems}
    assert fixes["general.shuffle_captions"] == "did you mean 'shuffle_caption'?"
    assert "write 0.0" in fixes["general.validation_split"]


def test_dataset_repeats_zero_on_the_command_line_drops_subsets_without_num_repeats(tmp_path):
    make_images(tmp_path / "a", [(1024, 1024)])
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"datasets": [{"resolution": 1024, "subsets": [{"image_dir": str(tmp_path / "a")}]}]}))
    report = build_plan({"dataset_config": str(config), "dataset_repeats": 0})
    assert any("num_repeats is 0" in p.message for p in report.problems)
    assert report.data["total_steps"] == 0 and report.errors


def test_parallel_scan_gives_the_same_report_as_the_serial_one(tmp_path, monkeypatch):
    import sys

    import pytest

    from loratrain.plan import planner as plan_mod

    if not sys.platform.startswith("linux"):
        pytest.skip("the parallel scan forks, on Linux only")
    make_images(tmp_path / "train" / "3_a", SIX_SHAPES * 3, caption=", ".join(f"tag{i} word{i}" for i in range(20)))
    make_images(tmp_path / "train" / "2_b", SIX_SHAPES * 2, ext=".jpg", caption=None)
    (tmp_path / "train" / "2_b" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    make_images(tmp_path / "train" / "1_c", [], caption=None)
    args = {**ARGS, "train_data_dir": str(tmp_path / "train"), "train_batch_size": 3}
    serial = build_plan(args)
    monkeypatch.setenv("LORATRAIN_SCAN_WORKERS", "2")
    monkeypatch.setattr(plan_mod, "_CHUNK", 4)
    assert plan_mod._worker_count(31) == 2
    parallel = build_plan(args)
    assert parallel.data == serial.data
    assert [p.render() for p in parallel.problems] == [p.render() for p in serial.problems]


def test_sideways_phone_photos_are_flagged_because_sd_scripts_ignores_exif_rotation(tmp_path):
    from PIL import Image

    folder = tmp_path / "train" / "1_x"
    make_images(folder, [(1024, 1024)], ext=".jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (1216, 832)).save(folder / "phone.jpg", exif=exif.tobytes())
    report = build_plan({**ARGS, "train_data_dir": str(tmp_path / "train")})
    (warning,) = [p for p in report.problems if "EXIF rotation" in p.message]
    assert "phone.jpg" in warning.message and report.data["datasets"][0]["exif_rotated"] == 1
    # bucketed as stored: landscape, although a viewer shows the photo in portrait
    assert any(b["width"] > b["height"] for b in report.data["buckets"])
