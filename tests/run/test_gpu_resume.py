"""Opt-in (`pytest -m gpu`): a real sd-scripts run interrupted twice and resumed with `run --resume`.

Confirms on real sd-scripts what tests/run/test_resume.py shows with the fixture trainer: the steps
of all launches add up to the plan, and each resumed launch trains exactly the steps loratrain
predicted from sd-scripts' arithmetic (record["resume"]["steps_this_launch"] == record["steps_done"]).
Same environment variables as test_gpu_end_to_end.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import GPU_RUN_NEEDS, cli_env, gpu_run_ready, write_image

pytestmark = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(not gpu_run_ready(), reason=GPU_RUN_NEEDS)


def _config(tmp_path, accumulation: int, saving: str):
    python = os.environ.get("LORATRAIN_TEST_PYTHON", sys.executable)
    data = tmp_path / "train"
    if not data.exists():
        (data / "4_testchar").mkdir(parents=True)
        for i in range(2):
            write_image(data / "4_testchar" / f"img{i}.png", (1024, 1024))
            (data / "4_testchar" / f"img{i}.txt").write_text("testchar, a plain orange square\n")
    tokenizers = os.environ.get("LORATRAIN_TEST_TOKENIZERS")
    config = tmp_path / "resume.toml"
    config.write_text(f"""# interrupted and resumed for real
python = "{python}"
[model]
pretrained_model_name_or_path = "{os.environ["LORATRAIN_TEST_MODEL"]}"
{f'tokenizer_cache_dir = "{tokenizers}"' if tokenizers else ""}
[dataset]
train_data_dir = "{data}"
resolution = "1024,1024"
caption_extension = ".txt"
cache_latents = true
[network]
network_module = "networks.lora"
network_dim = 4
network_alpha = 2
network_train_unet_only = true
[optimizer]
optimizer_type = "AdamW"
learning_rate = 0.0001
[training]
max_train_epochs = 3
train_batch_size = 1
gradient_accumulation_steps = {accumulation}
gradient_checkpointing = true
sdpa = true
[saving]
output_dir = "{tmp_path / "out"}"
output_name = "resume-test"
save_precision = "fp16"
save_state = true
{saving}
[precision]
mixed_precision = "fp16"
""")
    return config


def _launch(tmp_path, config, *extra, interrupt_after_states: int | None = None):
    env = cli_env(LORATRAIN_SD_SCRIPTS=os.environ["LORATRAIN_SD_SCRIPTS"])
    out = tmp_path / "out"
    before = {p.name: (p / "train_state.json").stat().st_mtime_ns for p in out.glob("*-state")} if out.exists() else {}
    proc = subprocess.Popen(
        [sys.executable, "-m", "loratrain", "run", str(config), "--plain", *extra],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    if interrupt_after_states is not None:
        deadline = time.monotonic() + 1800
        while proc.poll() is None and time.monotonic() < deadline:
            new = [
                p
                for p in out.glob("*-state")
                if (p / "train_state.json").is_file()
                and before.get(p.name) != (p / "train_state.json").stat().st_mtime_ns
            ]
            if len(new) >= interrupt_after_states:
                time.sleep(2)  # let accelerate finish writing the folder
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.5)
    _, err = proc.communicate(timeout=3600)
    return proc.returncode, err


def _records(tmp_path):
    return sorted(
        (json.loads(p.read_text()) for p in (tmp_path / "out" / "loratrain-runs").glob("*/record.json")),
        key=lambda r: r["started"],
    )


@needs_gpu
@pytest.mark.parametrize(
    "accumulation, saving, planned",
    [
        (1, "save_every_n_steps = 3", 24),
        (2, "save_every_n_epochs = 1", 12),
    ],
)
def test_a_real_run_interrupted_twice_resumes_to_the_planned_steps(tmp_path, accumulation, saving, planned):
    config = _config(tmp_path, accumulation, saving)
    code, err = _launch(tmp_path, config, interrupt_after_states=2 if accumulation == 1 else 1)
    assert code == 130, err[-3000:]
    code, err = _launch(tmp_path, config, "--resume", interrupt_after_states=1)
    assert code == 130, err[-3000:]
    code, err = _launch(tmp_path, config, "--resume")
    assert code == 0, err[-3000:]
    runs = _records(tmp_path)
    assert [r["status"] for r in runs] == ["interrupted", "interrupted", "succeeded"]
    last = runs[-1]
    assert last["cumulative_steps"] == planned == last["resume"]["planned_total"], last["resume"]
    # loratrain's model of sd-scripts' resume arithmetic matches what sd-scripts really trained.
    assert last["resume"]["steps_this_launch"] == last["steps_done"], last["resume"]
    print(
        json.dumps(
            [{k: r.get(k) for k in ("status", "steps_done", "cumulative_steps", "resume")} for r in runs], indent=1
        )
    )
