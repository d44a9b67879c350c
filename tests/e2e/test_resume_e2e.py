"""The real thing, opt-in: sd-scripts trains through `loratrain run`, resumes without --force, and `report`
covers every launch (the run of issue #20: 4 steps with states, samples and saves every 2 steps, then 6).

Needs the e2e kit's files (shared/e2e-kit/README.md says how to make them) and about 16 GB of memory and
10 minutes on a CPU. Skipped unless LORATRAIN_E2E=1 and each of these points at what the kit made:
  LORATRAIN_E2E_SD_SCRIPTS   an sd-scripts checkout (48d368f)
  LORATRAIN_E2E_PYTHON       the training interpreter (sd-scripts' requirements and lycoris_lora installed)
  LORATRAIN_E2E_MODEL        the random SDXL checkpoint from make_model.py
  LORATRAIN_E2E_TOKENIZERS   the folder make_tok.py filled (the two CLIP tokenizer folders)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import run_cli

NEEDED = ("LORATRAIN_E2E_SD_SCRIPTS", "LORATRAIN_E2E_PYTHON", "LORATRAIN_E2E_MODEL", "LORATRAIN_E2E_TOKENIZERS")


def _missing() -> str:
    if os.environ.get("LORATRAIN_E2E") != "1":
        return "opt-in: set LORATRAIN_E2E=1 (real training, about 16 GB of memory)"
    absent = [name for name in NEEDED if not os.environ.get(name) or not Path(os.environ[name]).exists()]
    return f"the e2e kit's files are not there: {', '.join(absent)}" if absent else ""


pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(_missing()), reason=_missing() or "ready")]


def _data(folder: Path) -> Path:
    """A kohya-style folder: 4 small pictures (two aspect ratios) with captions."""
    import numpy as np
    from PIL import Image

    sub = folder / "5_subject"
    sub.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(256, 256), (256, 384)] * 2):
        coarse = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
        Image.fromarray(coarse).resize((w, h), Image.BICUBIC).save(sub / f"{i:03d}.png")
        (sub / f"{i:03d}.txt").write_text("sbj, a soft gradient, abstract\n", encoding="utf-8")
    return folder


def _config(root: Path, steps: int) -> Path:
    env = os.environ
    (root / "prompts.txt").write_text("sbj, a soft gradient --w 256 --h 256 --s 2 --d 1\n", encoding="utf-8")
    text = f"""
sd_scripts = {json.dumps(env["LORATRAIN_E2E_SD_SCRIPTS"])}
python = {json.dumps(env["LORATRAIN_E2E_PYTHON"])}

[model]
pretrained_model_name_or_path = {json.dumps(env["LORATRAIN_E2E_MODEL"])}
tokenizer_cache_dir = {json.dumps(env["LORATRAIN_E2E_TOKENIZERS"])}

[dataset]
train_data_dir = {json.dumps(str(root / "data"))}
resolution = "256,256"
caption_extension = ".txt"
cache_latents = true
cache_text_encoder_outputs = true
max_data_loader_n_workers = 0

[buckets]
enable_bucket = true
min_bucket_reso = 128
max_bucket_reso = 512
bucket_reso_steps = 64

[network]
network_module = "lycoris.kohya"
network_dim = 4
network_alpha = 2
network_train_unet_only = true

[network.network_args]
algo = "locon"
conv_dim = 2
conv_alpha = 1

[optimizer]
optimizer_type = "AdamW"
learning_rate = 0.0001

[training]
max_train_steps = {steps}
train_batch_size = 1
gradient_checkpointing = true
sdpa = true
seed = 42

[saving]
output_dir = {json.dumps(str(root / "out"))}
output_name = "journey"
save_model_as = "safetensors"
save_precision = "bf16"
save_every_n_steps = 2
save_state = true

[sampling]
sample_prompts = {json.dumps(str(root / "prompts.txt"))}
sample_every_n_steps = 2

[logging]
logging_dir = {json.dumps(str(root / "logs"))}

[precision]
mixed_precision = "bf16"
full_bf16 = true
no_half_vae = true

[accelerate]
num_processes = 1
num_cpu_threads_per_process = 2
"""
    config = root / "journey.toml"
    config.write_text(text, encoding="utf-8")
    return config


def test_train_resume_without_force_and_report_every_launch(tmp_path):
    _data(tmp_path / "data")
    config = _config(tmp_path, 4)
    first = run_cli("run", str(config), "--plain", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "out" / "journey.safetensors").is_file()

    config = _config(tmp_path, 6)  # train on: resuming replaces this run's own final model, no --force
    again = run_cli("run", str(config), "--resume", "--plain", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "this launch replaces" in again.stderr and "--force" not in again.stderr

    done = run_cli("report", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert len(data["run"]["launches"]) == 2
    assert data["run"]["launches"][-1]["cumulative_steps"] == 6
    steps = data["curves"]["series"]["loss/current"]["steps"]
    assert steps[0] == 1 and steps[-1] == 6
    assert {c["number"] for c in data["samples"]["columns"] if c["kind"] == "step"} >= {2, 4, 6}
    names = {Path(s["file"]).name for s in data["saves"]}
    assert {"journey-step00000002.safetensors", "journey.safetensors"} <= names
