"""The numbers behind the report: event-file curves, sample matching, adapter health, the run's facts."""

from __future__ import annotations

import datetime as dt
import json
import math

import helpers as synth
import numpy as np
import pytest
from helpers import NAN_MODULE, UNTRAINED

from loratrain.report import curves as curves_mod
from loratrain.report import health, samples
from loratrain.report.build import build
from loratrain.report.run import locate

# --- curves -------------------------------------------------------------------------------------------


def test_curves_have_sd_scripts_tags_per_step_and_epoch(finished_run):
    report = build(locate(finished_run))
    series = report.curves.series
    assert {"loss/current", "loss/average", "lr/unet", "lr/textencoder", "loss/epoch_average"} <= set(series)
    assert series["loss/current"].steps == list(range(1, 201))

    def loss(s):  # what helpers.write_events logged
        return 0.12 + 0.05 * math.exp(-s / 300) + 0.01 * math.sin(s)

    assert series["loss/current"].values[9] == pytest.approx(loss(10), rel=1e-6)
    assert series["lr/unet"].values[-1] == pytest.approx(1e-4)
    assert series["loss/epoch_average"].steps == [1, 2]  # logged with the epoch as the step
    data = report.to_json()["curves"]
    assert data["series"]["loss/epoch_average"]["x"] == "epoch"
    assert len(data["series"]["loss/current"]["smoothed"]) == 200
    assert data["saves"] == [50, 100, 150, 200] and data["reason"] is None


def test_resumed_launch_is_chained_and_marked(tmp_path):
    logs = tmp_path / "logs"
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5)
    synth.write_events(logs, t0, range(1, 121), 100, loss_at=lambda s: 1.0)
    # Resumed from the state saved at step 100: steps 101.. are logged again by the new launch.
    synth.write_events(logs, t0 + dt.timedelta(hours=1), range(101, 201), 100, loss_at=lambda s: 2.0)
    c = curves_mod.read_curves(logs, None, None)
    assert c.resumes == [101]
    s = c.series["loss/current"]
    assert s.steps == list(range(1, 201))
    assert s.values[99] == 1.0 and s.values[100] == 2.0  # the resumed launch's values replace the old ones
    assert len(c.folders) == 2


def test_unrelated_earlier_training_is_not_chained(tmp_path):
    logs = tmp_path / "logs"
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5)
    synth.write_events(logs, t0, range(1, 51), 100)
    synth.write_events(logs, t0 + dt.timedelta(hours=1), range(1, 31), 100)
    c = curves_mod.read_curves(logs, None, None)
    assert c.resumes == [] and c.series["loss/current"].steps == list(range(1, 31))


def test_log_prefix_and_window_pick_this_runs_folder(tmp_path):
    logs = tmp_path / "logs"
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5)
    synth.write_events(logs, t0, range(1, 11), 100, prefix="other")
    synth.write_events(logs, t0 + dt.timedelta(minutes=1), range(1, 21), 100, prefix="mine")
    synth.write_events(logs, t0 + dt.timedelta(days=1), range(1, 31), 100, prefix="mine")
    c = curves_mod.read_curves(logs, "mine", None, window=(t0, t0 + dt.timedelta(hours=1)))
    assert c.series["loss/current"].steps[-1] == 20
    c = curves_mod.read_curves(logs, "mine", None, window=(t0 - dt.timedelta(days=9), t0 - dt.timedelta(days=8)))
    assert not c.series and "began while this run ran" in c.reason


@pytest.mark.parametrize(
    "logging_dir, log_with, expect",
    [
        (None, None, "logging_dir was not set"),
        ("missing", None, "does not exist"),
        ("empty", None, "no TensorBoard event files"),
        ("empty", "wandb", "Weights & Biases"),
    ],
)
def test_no_curves_says_why(tmp_path, logging_dir, log_with, expect):
    (tmp_path / "empty").mkdir()
    c = curves_mod.read_curves(tmp_path / logging_dir if logging_dir else None, None, None, log_with)
    assert expect in c.reason and not c.series


def test_smoothing_is_tensorboards_debiased_ema():
    assert curves_mod.smooth([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])
    out = curves_mod.smooth([0.0, 10.0, float("nan")], 0.5)
    assert out[1] == pytest.approx(5.0 / 0.75) and math.isnan(out[2])


# --- samples ------------------------------------------------------------------------------------------

STAMP = dt.datetime(2026, 3, 4, 5, 6, 7)


@pytest.mark.parametrize(
    "name, kw, expect",
    [
        ("mylora", dict(step=500, index=3, seed=42), ("step", 500, 3, 42)),
        ("mylora", dict(epoch=2, index=0, seed=None), ("epoch", 2, 0, None)),
        (None, dict(step=1234567, index=12, seed=7), ("step", 1234567, 12, 7)),
        ("my_lora_v2_000100", dict(step=100, index=1, seed=None), ("step", 100, 1, None)),
        ("x", dict(step=0, index=123, seed=5), ("step", 0, 123, 5)),
    ],
)
def test_sample_names_as_sd_scripts_writes_them(name, kw, expect):
    fname = synth.sample_name(name, stamp=STAMP, **kw)
    s = samples.parse_name(fname, name)
    assert s is not None and (s.kind, s.number, s.index, s.seed) == expect and s.stamp == STAMP


def test_sample_of_another_output_name_is_not_matched():
    fname = synth.sample_name("other", step=100, index=0, stamp=STAMP, seed=None)
    assert samples.parse_name(fname, "mylora") is None
    assert samples.parse_name(fname, None) is None  # no prefix expected when output_name is unset
    assert samples.parse_name(fname, None, any_name=True).name == "other"
    assert samples.parse_name("mylora_000100_00.png", "mylora") is None  # no timestamp: not sd-scripts'


def test_grid_rows_columns_prompts_and_other_runs(finished_run, tmp_path):
    sample_dir = tmp_path / "out" / "sample"
    # Same name, from a run a week earlier: not this run's.
    synth.sample_png(sample_dir / synth.sample_name("mylora", step=100, index=0, stamp=STAMP, seed=42), 32, 1)
    report = build(locate(finished_run))
    g = report.grid
    assert g.columns == [("step", 100), ("step", 200)] and g.rows == [0, 1, 2]
    assert len(g.cells) == 6 and g.skipped == 1
    assert g.prompts[1] == "a red fox in the snow, highly detailed"
    assert g.cells[(0, ("step", 200))].seed == 42 and g.cells[(2, ("step", 100))].seed is None


def test_epoch_and_step_samples_interleave_in_drawing_order(tmp_path):
    d = tmp_path / "sample"
    d.mkdir()
    for i, (kw, sec) in enumerate([(dict(step=50), 0), (dict(epoch=1), 10), (dict(step=150), 20)]):
        synth.sample_png(
            d / synth.sample_name("n", index=0, stamp=STAMP + dt.timedelta(seconds=sec), seed=None, **kw), 16, i
        )
    g = samples.collect(tmp_path, "n")
    assert g.columns == [("step", 50), ("epoch", 1), ("step", 150)]


# --- adapter health ------------------------------------------------------------------------------------


def test_nan_and_never_trained_modules_are_flagged(finished_run):
    saves = {h.step: h for h in build(locate(finished_run)).saves}
    assert sorted(saves) == [50, 100, 150, 200]
    assert saves[100].nonfinite == [f"{NAN_MODULE}.lora_up.weight"]
    assert any("NaN/inf" in f for f in saves[100].flags)
    for h in saves.values():
        assert sorted(h.untrained) == sorted(UNTRAINED)
        assert any("never trained" in f for f in h.flags) and not h.ok
    assert saves[50].nonfinite == [] and math.isfinite(saves[150].total_norm)
    assert saves[150].growth == pytest.approx(saves[150].total_norm / saves[50].total_norm)  # skips the NaN save


def test_update_norms_match_the_full_product_per_block(tmp_path):
    tensors = synth.saved_lora_tensors(300, full=False, seed=3)
    path = synth.save_lora(tmp_path / "a-step00000300.safetensors", tensors, 300, 3)
    h = health.check_file(path)
    assert h.ok and h.step == 300 and h.epoch == 3 and h.modules == len(synth.sdxl_modules(False))
    assert list(h.block_norms) == ["down 4", "mid", "up 3"]
    expect: dict[str, float] = {}
    for name, _, _ in synth.sdxl_modules(False):
        down = tensors[f"{name}.lora_down.weight"].astype(np.float64)
        up = tensors[f"{name}.lora_up.weight"].astype(np.float64)
        scale = float(tensors[f"{name}.alpha"]) / down.shape[0]
        block = health.block_of(name)
        expect[block] = expect.get(block, 0.0) + np.linalg.norm(scale * up @ down) ** 2
    for block, sq in expect.items():
        assert h.block_norms[block] == pytest.approx(math.sqrt(sq), rel=1e-4)


def test_bf16_conv_tucker_and_lycoris_modules(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    conv_down, conv_up = torch.randn(4, 320, 3, 3, generator=g), torch.randn(640, 4, 1, 1, generator=g)
    t_down, t_mid, t_up = (
        torch.randn(4, 320, 1, 1, generator=g),
        torch.randn(4, 4, 3, 3, generator=g),
        torch.randn(640, 4, 1, 1, generator=g),
    )
    w1a, w1b, w2a, w2b = (
        torch.randn(64, 4, generator=g),
        torch.randn(4, 32, generator=g),
        torch.zeros(64, 4),
        torch.randn(4, 32, generator=g),
    )
    tensors = {
        "lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight": conv_down,
        "lora_unet_input_blocks_1_0_in_layers_2.lora_up.weight": conv_up,
        "lora_unet_input_blocks_1_0_in_layers_2.alpha": torch.tensor(2.0),
        "lora_unet_output_blocks_8_0_in_layers_2.lora_down.weight": t_down,
        "lora_unet_output_blocks_8_0_in_layers_2.lora_mid.weight": t_mid,
        "lora_unet_output_blocks_8_0_in_layers_2.lora_up.weight": t_up,
        "lora_unet_output_blocks_8_0_in_layers_2.alpha": torch.tensor(4.0),
        # LoHa with LyCORIS' init: hada_w2_a is zero, so this module never trained.
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.hada_w1_a": w1a,
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.hada_w1_b": w1b,
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.hada_w2_a": w2a,
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.hada_w2_b": w2b,
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha": torch.tensor(4.0),
    }
    path = tmp_path / "x.safetensors"
    save_file({k: v.to(torch.bfloat16) for k, v in tensors.items()}, str(path))
    h = health.check_file(path)
    b = {k: v.to(torch.bfloat16).double() for k, v in tensors.items()}
    conv = (2.0 / 4) * (
        b["lora_unet_input_blocks_1_0_in_layers_2.lora_up.weight"].reshape(640, 4)
        @ b["lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight"].reshape(4, -1)
    )
    tucker = torch.einsum(
        "oa,abhw,bi->oihw",
        b["lora_unet_output_blocks_8_0_in_layers_2.lora_up.weight"][:, :, 0, 0],
        b["lora_unet_output_blocks_8_0_in_layers_2.lora_mid.weight"],
        b["lora_unet_output_blocks_8_0_in_layers_2.lora_down.weight"][:, :, 0, 0],
    )
    assert h.block_norms["down 1"] == pytest.approx(float(conv.norm()), rel=1e-4)
    assert h.block_norms["up 8"] == pytest.approx(float(tucker.norm()), rel=1e-4)
    assert h.untrained == ["lora_te1_text_model_encoder_layers_0_mlp_fc1"] and h.block_norms["te1"] == 0.0


def test_damaged_adapter_file_is_reported_not_raised(tmp_path):
    path = synth.save_lora(tmp_path / "a.safetensors", synth.saved_lora_tensors(10, full=False), 10, 1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a save still being written
    h = health.check_file(path)
    assert h.error and not h.ok and "unreadable" in h.flags[0]


def test_adapter_files_of_this_output_name_only(tmp_path):
    for n in ("run-000001", "run-step00000100", "run", "other-000001", "run-v2"):
        (tmp_path / f"{n}.safetensors").write_bytes(b"")
    got = [p.name for p in health.adapter_files(tmp_path, "run", None)]
    assert got == ["run-000001.safetensors", "run-step00000100.safetensors", "run.safetensors"]


# --- the run's facts -----------------------------------------------------------------------------------


def test_failed_run_cause_from_the_log_tail(tmp_path):
    folder = synth.make_run(tmp_path, status="failed", total_steps=100)
    (folder / "train.log").write_text(
        'steps:  10%|#         | 10/100\nTraceback (most recent call last):\n  File "x.py", line 1\n'
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
        "subprocess.CalledProcessError: Command '['python', 'sdxl_train_network.py']' returned non-zero exit status 1.\n",
        encoding="utf-8",
    )
    report = build(locate(folder))
    facts = report.to_json()["run"]
    assert facts["status"] == "failed" and facts["exit_code"] == 1
    assert "CUDA out of memory" in facts["cause"] and "loratrain fit" in facts["cause"]  # launch.failures explains it
    assert "sdxl_train_network.py" in facts["command"] and facts["versions"]["torch"] == "2.13.0"


def test_run_in_progress_reports_what_exists(tmp_path):
    folder = synth.make_run(tmp_path, status="running", total_steps=100, save_every=50)
    report = build(locate(folder))
    assert report.in_progress and any("in progress" in n for n in report.notes)
    assert [h.step for h in report.saves] == [50, 100]
    data = json.loads(json.dumps(report.to_json(), default=str))
    assert data["in_progress"] is True and data["run"]["finished"] is None


def test_plain_output_dir_reads_its_logs_folder_or_says_why(tmp_path):
    out = tmp_path / "out"
    (out / "sample").mkdir(parents=True)
    report = build(locate(out))
    assert "does not say where its TensorBoard events are" in report.curves.reason
    synth.write_events(out / "logs", dt.datetime(2026, 1, 1), range(1, 11), 100)
    report = build(locate(out))
    assert report.curves.series["loss/current"].steps[-1] == 10 and not report.curves.reason


def test_a_second_build_reads_only_new_or_changed_files(finished_run, tmp_path, monkeypatch):
    from loratrain.report import build as build_mod

    cache = tmp_path / "cache"
    first = build(locate(finished_run), thumbnails=64, cache_dir=cache)
    assert len(first.thumbs) == 6 and (cache / "index.json").is_file()
    read: list[str] = []
    real_check, real_thumb = health.check_file, build_mod._thumbnail
    monkeypatch.setattr(health, "check_file", lambda p: read.append(p.name) or real_check(p))
    monkeypatch.setattr(build_mod, "_thumbnail", lambda p, s: read.append(p.name) or real_thumb(p, s))
    changed = first.saves[0].path
    synth.save_lora(changed, synth.saved_lora_tensors(50, full=False, nan_in=NAN_MODULE), 50, 0)
    second = build(locate(finished_run), thumbnails=64, cache_dir=cache)
    assert second.thumbs.keys() == first.thumbs.keys()
    assert read == [changed.name]  # the rewritten save only
    by_step = {h.step: h for h in second.saves}
    assert by_step[50].nonfinite and by_step[100].nonfinite == first.saves[1].nonfinite
    assert by_step[200].growth == pytest.approx(first.saves[3].growth)
    assert [h.block_norms for h in second.saves[2:]] == [h.block_norms for h in first.saves[2:]]
