"""Allowed values, as sd-scripts (commit 48d368f), accelerate and LyCORIS 4.1.3 accept them."""

from __future__ import annotations

from typing import Literal

Sampler = Literal[
    "ddim", "pndm", "lms", "euler", "euler_a", "heun", "dpm_2", "dpm_2_a", "dpmsolver", "dpmsolver++",
    "dpmsingle", "k_lms", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a",
]

# transformers' SchedulerType names that work in sd-scripts, plus diffusers' piecewise_constant and the
# internal adafactor scheduler. reduce_lr_on_plateau and cosine_warmup_with_min_lr are in transformers' enum
# but fail inside sd-scripts, so they are not offered.
LrScheduler = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
    "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay", "piecewise_constant", "adafactor",
]
BROKEN_SCHEDULERS = {
    "reduce_lr_on_plateau": "it needs a metric sd-scripts never passes and fails with a TypeError",
    "cosine_warmup_with_min_lr": "sd-scripts fails with a TypeError when building it",
}

# Optimizer names (sd-scripts' own, torch.optim's, dotted paths) live in the constructor table:
# loratrain.sdscripts.optimizers, read from data/optimizer_args.json.

MixedPrecision = Literal["no", "fp16", "bf16"]
SavePrecision = Literal["float", "fp16", "bf16"]
SaveFormat = Literal["safetensors", "ckpt", "pt"]
LogWith = Literal["tensorboard", "wandb", "all"]
MaxTokenLength = Literal[150, 225]

LYCORIS_ALGOS = ("lora", "locon", "loha", "lokr", "dylora", "glora", "full", "diag-oft", "boft", "ia3", "tlora")
LycorisAlgo = Literal["lora", "locon", "loha", "lokr", "dylora", "glora", "full", "diag-oft", "boft", "ia3", "tlora"]
LYCORIS_PRESETS = (
    "full", "full-lin", "attn-mlp", "attn-only", "unet-only", "unet-transformer-only", "unet-convblock-only", "ia3",
)

# accelerate launch --dynamo_backend (accelerate 1.x), lower-case as the CLI takes them.
DynamoBackend = Literal[
    "no", "eager", "aot_eager", "inductor", "aot_ts_nvfuser", "nvprims_nvfuser", "cudagraphs", "ofi", "fx2trt",
    "onnxrt", "tensorrt", "aot_torchxla_trace_once", "torhchxla_trace_once", "ipex", "tvm", "hpu_backend",
]

# Modules whose network_args loratrain types; any other module gets a free key=value table (with a warning).
LYCORIS_MODULE = "lycoris.kohya"
LORA_MODULE = "networks.lora"

# Secrets that must never reach argv: sd-scripts itself warns that wandb publishes the command line.
SECRET_ENV = {"wandb_api_key": "WANDB_API_KEY", "huggingface_token": "HF_TOKEN"}
