"""Opt-in: a few real training steps with sd-scripts on a CUDA GPU (`pytest -m gpu`).

Needs LORATRAIN_SD_SCRIPTS (an sd-scripts checkout whose environment runs this test, or set
LORATRAIN_TEST_PYTHON to that environment's interpreter) and LORATRAIN_TEST_MODEL (an SDXL
.safetensors). LORATRAIN_TEST_TOKENIZERS may name a filled tokenizer_cache_dir for offline machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import GPU_RUN_NEEDS, cli_env, gpu_run_ready, write_image

from loratrain import safetensors_header

pytestmark = pytest.mark.gpu


needs_gpu = pytest.mark.skipif(not gpu_run_ready(), reason=GPU_RUN_NEEDS)


@needs_gpu
def test_minimal_config_trains_a_few_steps_for_real(tmp_path):
    python = os.environ.get("LORATRAIN_TEST_PYTHON", sys.executable)
    data = tmp_path / "train"
    (data / "5_testchar").mkdir(parents=True)
    for i in range(2):
        write_image(data / "5_testchar" / f"img{i}.png", (1024, 1024))
        (data / "5_testchar" / f"img{i}.txt").write_text("testchar, a plain orange square\n")
    tokenizers = os.environ.get("LORATRAIN_TEST_TOKENIZERS")
    config = tmp_path / "gpu.toml"
    config.write_text(f"""# a few real steps of the minimal config
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
max_train_steps = 3
train_batch_size = 1
gradient_checkpointing = true
sdpa = true
[saving]
output_dir = "{tmp_path / "out"}"
output_name = "gpu-test"
save_precision = "fp16"
[precision]
mixed_precision = "fp16"
""")
    done = subprocess.run(
        [sys.executable, "-m", "loratrain", "run", str(config), "--plain"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=cli_env(LORATRAIN_SD_SCRIPTS=os.environ["LORATRAIN_SD_SCRIPTS"]),
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lora = tmp_path / "out" / "gpu-test.safetensors"
    assert (
        safetensors_header.model_family(safetensors_header.tensor_names(safetensors_header.read_header(lora))) == "lora"
    )
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "out" / "loratrain-runs").glob("*/record.json")]
    assert record["status"] == "succeeded" and record["gpus"] and record["versions"]["torch"]
