"""`loratrain plan` and `loratrain prompts` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import GUIDE_PROMPT_1, GUIDE_PROMPT_2, SIX_SHAPES, make_images, plan_config, run_cli

from loratrain.plan.clip_tokenizer import VocabularyNotFound, find_vocabulary

GUIDE_FILE = (
    f"# anthro female kindred\n{GUIDE_PROMPT_1} --n low quality, worst quality, blurred background, blurry, "
    f"simple background --w 1024 --h 1024 --d 1 --l 6.0 --s 40\n# anthro female wolf\n{GUIDE_PROMPT_2} "
    "--n low quality, worst quality, blurred background, blurry, simple background --w 1024 --h 1024 --d 1 "
    "--l 6.0 --s 40\n"
)


def _have_vocabulary() -> bool:
    try:
        find_vocabulary()
        return True
    except VocabularyNotFound:
        return False


needs_vocab = pytest.mark.skipif(not _have_vocabulary(), reason="no CLIP vocabulary on this machine")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    make_images(tmp_path / "train" / "10_foo", SIX_SHAPES[:4])
    make_images(tmp_path / "train" / "5_bar", SIX_SHAPES[4:], ext=".webp")
    (tmp_path / "prompts.txt").write_text(GUIDE_FILE, encoding="utf-8")
    return tmp_path


def test_plan_json_reports_datasets_buckets_steps_saves_and_samples(dataset):
    config = plan_config(
        dataset, f'[sampling]\nsample_prompts = "{dataset / "prompts.txt"}"\nsample_every_n_steps = 100\n'
    )
    result = run_cli("plan", str(config), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {
        "datasets",
        "buckets",
        "batches_per_epoch",
        "steps_per_epoch",
        "epochs",
        "total_steps",
        "saves",
        "samples",
        "prompts",
    } <= set(data)
    assert {k for k in data["datasets"][0]} >= {"dir", "repeats", "images", "missing_captions"}
    assert {k for k in data["buckets"][0]} >= {"width", "height", "images", "items", "batches"}
    assert (data["batches_per_epoch"], data["steps_per_epoch"], data["epochs"], data["total_steps"]) == (
        10,
        2,
        200,
        400,
    )
    assert [s["step"] for s in data["saves"]] == [100, 200, 300, 400]
    assert [s["step"] for s in data["samples"]] == [100, 200, 300, 400]
    assert [p["options"]["width"] for p in data["prompts"]] == [1024, 1024]
    if data["tokenizer"]:
        assert [p["tokens"] for p in data["prompts"]] == [65, 75]


def test_plan_terminal_report_shows_the_bucket_histogram_and_schedule(dataset):
    result = run_cli("plan", str(plan_config(dataset)))
    assert result.returncode == 0, result.stderr
    assert "1024x1024" in result.stdout and "█" in result.stdout and "batches" in result.stdout
    assert "400 steps, 200 epochs (from max_train_steps)" in result.stdout
    assert "after epochs 50, 100, 150, and the final model at step 400" in result.stdout


def test_set_override_changes_the_plan(dataset):
    result = run_cli("plan", str(plan_config(dataset)), "--json", "--set", "training.max_train_epochs=3")
    data = json.loads(result.stdout)
    assert (data["epochs"], data["total_steps"], data["steps_from_epochs"]) == (3, 6, True)


def test_two_processes_split_batches_and_warn_about_an_idle_gpu(dataset):
    config = plan_config(
        dataset,
        f'[sampling]\nsample_prompts = "{dataset / "prompts.txt"}"\nsample_every_n_steps = 100\n'
        "[accelerate]\nnum_processes = 3\n",
    )
    result = run_cli("plan", str(config), "--json")
    data = json.loads(result.stdout)
    assert (data["num_processes"], data["batches_per_process"]) == (3, 4)
    assert "2 prompts over 3 processes" in result.stderr


def test_bucket_smaller_than_the_batch_is_warned_about(dataset):
    result = run_cli("plan", str(plan_config(dataset)))
    assert "fewer items than the batch size 8" in result.stderr and "< batch" in result.stdout


def test_missing_train_data_dir_exits_2_with_one_clear_line(tmp_path):
    result = run_cli("plan", str(plan_config(tmp_path)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'train'} does not exist" in result.stderr


def test_missing_prompt_file_exits_2(dataset):
    config = plan_config(
        dataset, f'[sampling]\nsample_prompts = "{dataset / "nope.txt"}"\nsample_every_n_steps = 100\n'
    )
    result = run_cli("plan", str(config))
    assert result.returncode == 2 and "nope.txt" in result.stderr and "not found" in result.stderr


def test_bad_config_value_exits_2_before_any_scan(tmp_path):
    result = run_cli("plan", str(plan_config(tmp_path, training="train_batch_size = 0")))
    assert result.returncode == 2 and "train_batch_size" in result.stderr and "Traceback" not in result.stderr


@needs_vocab
def test_prompts_command_counts_the_guides_prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text(GUIDE_FILE, encoding="utf-8")
    result = run_cli("prompts", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(p["line"], p["tokens"], p["options"]["sample_steps"]) for p in data["prompts"]] == [
        (2, 65, 40),
        (4, 75, 40),
    ]
    text = run_cli("prompts", str(path)).stdout
    assert "65/75 tokens" in text and "75/75 tokens" in text


@needs_vocab
def test_prompt_over_75_tokens_exits_2_naming_line_and_count(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a cat\n" + GUIDE_PROMPT_2 + ", extra tag\n", encoding="utf-8")
    result = run_cli("prompts", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}:2:" in result.stderr and "78 CLIP tokens" in result.stderr


def test_broken_prompt_file_exits_2(tmp_path):
    path = tmp_path / "prompts.toml"
    path.write_text("[prompt]\nwidth = 1024\n", encoding="utf-8")
    result = run_cli("prompts", str(path))
    assert result.returncode == 2 and "[[prompt.subset]]" in result.stderr


def test_prompt_count_not_divisible_by_gpus_warns(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    result = run_cli("prompts", str(path), "--num-processes", "2")
    assert result.returncode == 0 and "3 prompts over 2 processes" in result.stderr


def test_plan_and_prompts_do_not_import_torch(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a cat\n", encoding="utf-8")
    code = (
        "import sys, runpy; sys.argv = ['loratrain', 'prompts', %r]\n"
        "try:\n    runpy.run_module('loratrain', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules])"
    ) % str(path)
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in out.stdout


def test_dataset_config_with_an_unknown_key_exits_2_naming_file_and_key(tmp_path):
    make_images(tmp_path / "a", [(1024, 1024)])
    ds = tmp_path / "ds.toml"
    ds.write_text(
        f"[general]\nshuffle_captions = true\n[[datasets]]\nresolution = 1024\n"
        f'  [[datasets.subsets]]\n  image_dir = "{tmp_path / "a"}"\n',
        encoding="utf-8",
    )
    config = plan_config(tmp_path)
    config.write_text(config.read_text().replace("[dataset]\n", f'[dataset]\ndataset_config = "{ds}"\n'))
    result = run_cli("plan", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{ds}:2: general.shuffle_captions: unknown key" in result.stderr
    assert "did you mean 'shuffle_caption'?" in result.stderr


def test_missing_prompt_file_given_to_prompts_exits_2(tmp_path):
    result = run_cli("prompts", str(tmp_path / "none.txt"))
    assert result.returncode == 2 and "sample prompt file not found" in result.stderr


def test_without_a_vocabulary_prompts_still_parse_and_say_how_to_get_one(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a cat --w 768\n", encoding="utf-8")
    result = run_cli("prompts", str(path), "--json", env={"LORATRAIN_CLIP_VOCAB": str(tmp_path / "missing")})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["prompts"][0]["tokens"] is None and data["prompts"][0]["options"] == {"width": 768}
    assert "token counts unavailable" in result.stderr and "LORATRAIN_CLIP_VOCAB" in result.stderr
