"""`loratrain fit`: the issue's three measured H200 runs, the verdict, the advice, and bad input.

In-process through typer's CliRunner (the real app with every verb registered); no torch involved.
"""

from __future__ import annotations

import json
import shlex

import pytest
from helpers import CONFIGS
from typer.testing import CliRunner

from loratrain import cli

PONY = str(CONFIGS / "pony-sdxl-locon.toml")
BF16 = ["--set", "precision.mixed_precision=bf16", "--set", "saving.save_precision=bf16"]
NO_GC = ["--set", "training.gradient_checkpointing=false"]
# The measurements: one H200, the guide's pony config, batch 8, 1024x1024, nvidia-smi memory.used peak.
RUNS = {
    "run 1 fp16, checkpointing": ([], 20.2),
    "run 2 bf16, checkpointing": (BF16, 18.5),
    "run 3 bf16, no checkpointing": (BF16 + NO_GC, 84.9),
}


def fit(*args: str) -> tuple[int, str]:
    cli._register()
    result = CliRunner().invoke(cli.app, ["fit", *args], catch_exceptions=False)
    return result.exit_code, result.output


def fit_json(*args: str) -> dict:
    code, out = fit(*args, "--json")
    assert code == 0, out
    return json.loads(out)


@pytest.mark.parametrize("name", list(RUNS))
def test_the_three_measured_h200_runs_are_predicted_within_ten_percent(name):
    extra, measured = RUNS[name]
    data = fit_json(PONY, "--gpu", "h200", *extra)
    assert abs(data["peak_gib"] / measured - 1) < 0.10, (data["peak_gib"], measured)


def test_the_guides_adapter_is_counted_exactly():
    adapter = fit_json(PONY, "--vram", "24")["adapter"]
    assert (adapter["trainable_params"], adapter["modules"]) == (120_067_584, 1_052)
    assert {k: v["modules"] for k, v in adapter["by_component"].items()} == {"unet": 788, "te1": 72, "te2": 192}


def test_on_an_h200_run_1_is_told_to_turn_gradient_checkpointing_off():
    data = fit_json(PONY, "--gpu", "h200")
    assert data["fits"] is True
    first = data["advice"][0]
    assert first["set"] == "--set training.gradient_checkpointing=false"
    assert first["peak_gib"] < 141 * 0.95 and "1.28" in first["speedup"]


def test_on_a_24_gb_card_run_1_keeps_gradient_checkpointing():
    data = fit_json(PONY, "--gpu", "rtx4090")
    assert data["fits"] is True
    assert not any("gradient_checkpointing=false" in a["set"] for a in data["advice"])


@pytest.mark.parametrize("vram", ["8", "12", "16"])
def test_every_advice_line_pastes_back_and_gives_the_peak_it_promised(vram):
    data = fit_json(PONY, "--vram", vram)
    assert data["fits"] is False and data["advice"], data["verdict"]
    for advice in data["advice"]:
        assert advice["peak_gib"] <= float(vram) * 0.95
        again = fit_json(PONY, "--vram", vram, *shlex.split(advice["set"]))
        assert again["fits"] is True and again["peak_gib"] == advice["peak_gib"]


@pytest.mark.parametrize("config", ["pony-sdxl-locon", "sdxl-lora-minimal"])
def test_every_memory_saver_is_a_valid_change_to_the_config(config):
    """Each candidate change, pasted as --set, is accepted by the config rules (none trips a forbidden pair)."""
    from loratrain.config.loader import load_config
    from loratrain.effective import Effective
    from loratrain.fit import advice

    path = str(CONFIGS / f"{config}.toml")
    base = [
        "training.gradient_checkpointing=false",
        "dataset.cache_latents=false",
        "dataset.cache_latents_to_disk=false",
        "training.sdpa=false",
        "dataset.color_aug=true",
    ]
    savers = advice.memory_savers(Effective.from_config(load_config(path, base).config))
    assert len(savers) >= 8
    for sets, _ in savers:
        line = advice.Advice(sets, 0, "").set_line()
        code, out = fit(path, "--vram", "80", *[a for kv in base for a in ("--set", kv)], *shlex.split(line))
        assert code == 0, (line, out)


def test_smaller_batch_advice_keeps_the_effective_batch():
    data = fit_json(PONY, "--vram", "16")
    lines = [a["set"] for a in data["advice"] if "train_batch_size" in a["set"]]
    assert lines
    for line in lines:
        sets = dict(part.split("=", 1) for part in shlex.split(line) if part != "--set")
        assert int(sets["training.train_batch_size"]) * int(sets["training.gradient_accumulation_steps"]) >= 48


def test_text_output_shows_breakdown_verdict_and_pasteable_advice():
    code, out = fit(PONY, "--gpu", "h200")
    assert code == 0
    assert "120,067,584 trainable parameters in 1,052 modules (U-Net 788, TE1 72, TE2 192)" in out
    for part in ("U-Net weights", "optimizer state", "U-Net activations", "CUDA context", "host RAM while loading"):
        assert part in out
    assert "H200 (141 GB): predicted peak 20.1 GiB of 140.4 GiB: fits" in out
    assert "1. --set training.gradient_checkpointing=false" in out


def test_gradient_checkpointing_and_attention_choice_move_the_prediction():
    peaks = {
        mode: fit_json(
            PONY,
            "--vram",
            "80",
            *BF16,
            *NO_GC,
            "--set",
            f"training.{mode}=true",
            *(["--set", "training.sdpa=false"] if mode != "sdpa" else []),
        )["peak_gib"]
        for mode in ("sdpa", "xformers", "mem_eff_attn")
    }
    plain = fit_json(PONY, "--vram", "80", *BF16, *NO_GC, "--set", "training.sdpa=false")["peak_gib"]
    assert plain > peaks["sdpa"] >= peaks["xformers"]
    with_gc = fit_json(PONY, "--vram", "80", *BF16)["peak_gib"]
    assert with_gc < peaks["sdpa"] / 3


def test_weights_follow_the_precision_flags():
    def weights(*extra):
        items = {i["name"]: i["gib"] for i in fit_json(PONY, "--vram", "80", *extra)["breakdown"]}
        return items["U-Net weights"], items["text encoder weights"], items["VAE weights"], items["adapter"]

    unet16, te16, vae_cached, adapter32 = weights()
    assert vae_cached == 0 and unet16 == pytest.approx(2_567_463_684 * 2 / 2**30, abs=0.01)
    unet8, te8, _, _ = weights("--set", "precision.fp8_base=true")
    assert unet8 == pytest.approx(unet16 / 2, abs=0.01) and te8 == pytest.approx(te16 / 2, abs=0.01)
    _, _, vae, _ = weights("--set", "dataset.cache_latents=false", "--set", "dataset.cache_latents_to_disk=false")
    assert vae == pytest.approx(83_653_863 * 4 / 2**30, abs=0.01)  # no_half_vae: fp32
    _, te_cached, _, _ = weights(
        "--set",
        "dataset.cache_text_encoder_outputs=true",
        "--set",
        "network.network_train_unet_only=true",
        "--set",
        "dataset.shuffle_caption=false",
    )
    assert te_cached == 0
    _, _, _, adapter16 = weights(*BF16, "--set", "precision.full_bf16=true")
    assert adapter16 == pytest.approx(adapter32 / 2, abs=0.01)


@pytest.mark.parametrize("optimizer,per_param", [("AdamW", 8), ("AdamW8bit", 2), ("Lion", 4), ("Prodigy", 16)])
def test_optimizer_state_per_optimizer_type(optimizer, per_param):
    data = fit_json(PONY, "--vram", "80", "--set", f"optimizer.optimizer_type={optimizer}")
    state = next(i["gib"] for i in data["breakdown"] if i["name"] == "optimizer state")
    assert state == pytest.approx(120_067_584 * per_param / 2**30, abs=0.01)


def test_adafactor_state_is_factored_and_far_smaller_than_adam():
    # relative_step off so the config's learning rates and scheduler stay valid (config/optimizer_rules.py)
    ada = fit_json(
        PONY,
        "--vram",
        "80",
        "--set",
        "optimizer.optimizer_type=Adafactor",
        "--set",
        "optimizer.optimizer_args={relative_step=false, scale_parameter=false, warmup_init=false}",
    )
    state = next(i["gib"] for i in ada["breakdown"] if i["name"] == "optimizer state")
    assert 0 < state < 120_067_584 * 4 / 2**30 / 4


def test_every_shipped_config_gets_a_prediction():
    for path in sorted(CONFIGS.glob("*.toml")):
        data = fit_json(str(path), "--gpu", "rtx4090")
        assert 5 < data["peak_gib"] < 200 and data["verdict"].startswith("predicted peak")


def test_an_unknown_card_is_one_clear_error_listing_the_known_ones():
    code, out = fit(PONY, "--gpu", "rtx9999")
    assert code == 2
    assert "unknown GPU 'rtx9999'" in out and "h200" in out and "rtx4090" in out and "Traceback" not in out


def test_an_adapter_fit_cannot_count_is_a_clear_error():
    code, out = fit(PONY, "--vram", "24", "--set", 'network.network_module="networks.dylora"')
    assert code == 2
    assert "network_module" in out and "networks.dylora" in out and "Traceback" not in out


def test_without_a_gpu_the_peak_is_still_given(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    code, out = fit(PONY)
    assert code == 0
    assert "no GPU detected" in out and "predicted peak 20.1 GiB" in out


def test_a_dataset_config_file_sets_batch_and_resolution(tmp_path):
    dc = tmp_path / "datasets.toml"
    dc.write_text(
        """
[general]
caption_extension = ".txt"
[[datasets]]
resolution = 768
batch_size = 2
  [[datasets.subsets]]
  image_dir = "/data/a"
[[datasets]]
resolution = [1024, 1024]
batch_size = 4
  [[datasets.subsets]]
  image_dir = "/data/b"
""",
        encoding="utf-8",
    )
    small = fit_json(PONY, "--vram", "24", "--set", "training.train_batch_size=4")
    data = fit_json(
        PONY, "--vram", "24", "--set", f'dataset.dataset_config="{dc}"', "--set", "training.train_batch_size=1"
    )
    assert data["facts"]["batch"] == 4 and data["facts"]["resolution"] == [1024, 1024]
    assert data["peak_gib"] == small["peak_gib"]
    assert any("dataset_config" in n for n in data["notes"])


def test_host_ram_counts_every_process_on_the_machine():
    one = fit_json(PONY, "--vram", "80")
    two = fit_json(str(CONFIGS / "sdxl-locon-2gpu.toml"), "--vram", "80")
    assert one["host_peak_gb"] == pytest.approx(16.4, abs=0.05)  # the CPU run peaked at 16.4 GB RSS
    assert two["facts"]["processes_per_machine"] == 2
    code, out = fit(str(CONFIGS / "sdxl-locon-2gpu.toml"), "--vram", "80")
    assert "32.8 GB of this machine's" in out


def test_samples_are_sized_from_the_prompt_file(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat --w 2048 --h 2048\na dog\n", encoding="utf-8")
    big = fit_json(PONY, "--vram", "80", "--set", f'sampling.sample_prompts="{prompts}"')
    decode = next(i for i in big["sample_breakdown"] if i["name"] == "VAE decode")
    assert "2048x2048" in decode["note"]
    from loratrain.fit.model import ALLOC

    assert decode["gib"] == pytest.approx(128 * 2048 * 2048 * 4 * 4 * ALLOC / 2**30, rel=0.01)  # fp32 (no_half_vae)
    assert not any("sample prompt file" in n for n in big["notes"])
    unreadable = fit_json(PONY, "--vram", "80")  # the shipped config's prompt path does not exist here
    assert any("sample prompt file" in n for n in unreadable["notes"])
