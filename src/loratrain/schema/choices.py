"""Allowed values, as sd-scripts (commit 48d368f) and LyCORIS 4.1.3 accept them.

Where sd-scripts' parser has a choice list, the Literal is read from the flag table (sdscripts.flags), never
restated. accelerate launch's choices live in schema/accelerate.py's LAUNCH_OPTIONS.
"""

from __future__ import annotations

from typing import Literal

from loratrain.sdscripts import flags

Sampler = Literal[flags.choices("sample_sampler")]

# transformers' SchedulerType names that work in sd-scripts, plus diffusers' piecewise_constant and the
# internal adafactor scheduler. reduce_lr_on_plateau and cosine_warmup_with_min_lr are in transformers' enum
# but fail inside sd-scripts, so they are not offered.
LrScheduler = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "warmup_stable_decay",
    "piecewise_constant",
    "adafactor",
]
BROKEN_SCHEDULERS = {
    "reduce_lr_on_plateau": "it needs a metric sd-scripts never passes and fails with a TypeError",
    "cosine_warmup_with_min_lr": "sd-scripts fails with a TypeError when building it",
}

# Optimizer names (sd-scripts' own, torch.optim's, dotted paths) live in the constructor table:
# loratrain.sdscripts.optimizers, read from data/optimizer_args.json.

MixedPrecision = Literal[flags.choices("mixed_precision")]
SavePrecision = Literal[flags.choices("save_precision")]
SaveFormat = Literal[flags.choices("save_model_as")]
LogWith = Literal[flags.choices("log_with")]
MaxTokenLength = Literal[flags.choices("max_token_length")]

LYCORIS_ALGOS = ("lora", "locon", "loha", "lokr", "dylora", "glora", "full", "diag-oft", "boft", "ia3", "tlora")
LycorisAlgo = Literal["lora", "locon", "loha", "lokr", "dylora", "glora", "full", "diag-oft", "boft", "ia3", "tlora"]
LYCORIS_PRESETS = (
    "full",
    "full-lin",
    "attn-mlp",
    "attn-only",
    "unet-only",
    "unet-transformer-only",
    "unet-convblock-only",
    "ia3",
)

# Modules whose network_args loratrain types; any other module gets a free key=value table (with a warning).
LYCORIS_MODULE = "lycoris.kohya"
LORA_MODULE = "networks.lora"

# Secrets that must never reach argv: sd-scripts itself warns that wandb publishes the command line.
SECRET_ENV = {"wandb_api_key": "WANDB_API_KEY", "huggingface_token": "HF_TOKEN"}
