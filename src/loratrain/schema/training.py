"""[training]: length of the run, batching, memory savers and attention kernels."""

from __future__ import annotations

from pydantic import conint

from loratrain.schema.common import Group, flag


class TrainingArgs(Group):
    max_train_steps: conint(ge=1) | None = flag(
        "Stop after this many optimizer steps. sd-scripts' default is 1600. max_train_epochs wins when both are set.",
        advice="Set either steps or epochs, not both: epochs take precedence.",
        interacts=("training.max_train_epochs", "training.gradient_accumulation_steps"),
        example=400,
    )
    max_train_epochs: conint(ge=1) | None = flag(
        "Stop after this many passes over the dataset; overrides max_train_steps.",
        interacts=("training.max_train_steps",),
        example=10,
    )
    train_batch_size: conint(ge=1) | None = flag(
        "Images per batch (per GPU). sd-scripts' default is 1.",
        advice="The guide's example uses 8 (with gradient_accumulation_steps 6).",
        example=8,
    )
    gradient_accumulation_steps: conint(ge=1) | None = flag(
        "Add up the gradients of this many batches before each optimizer step: a larger effective batch without "
        "the memory. One step then consumes that many batches.",
        advice="The guide uses 6 to stretch a batch of 8 without more VRAM.",
        interacts=("training.train_batch_size", "training.max_train_steps"),
        example=6,
    )
    gradient_checkpointing: bool | None = flag(
        "Recompute activations in the backward pass instead of storing them: much less VRAM, somewhat slower steps.",
        advice="Turned on in the guide's example command.",
        example=True,
    )
    seed: conint(ge=0) | None = flag("Random seed for reproducible runs.", example=42)
    sdpa: bool | None = flag(
        "Use PyTorch's scaled-dot-product attention kernel.",
        advice="Try sdpa, xformers and mem_eff_attn on your GPU and keep the fastest; the guide uses sdpa.",
        interacts=("training.xformers", "training.mem_eff_attn"),
        example=True,
    )
    xformers: bool | None = flag(
        "Use xformers' memory-efficient attention (needs the xformers package).",
        advice="Worth benchmarking against sdpa on your GPU; the guide picks whichever trains faster.",
        interacts=("training.sdpa", "training.mem_eff_attn"),
    )
    mem_eff_attn: bool | None = flag(
        "Use sd-scripts' own memory-efficient attention (slow; wins over xformers and sdpa when set).",
        advice="Worth benchmarking against sdpa and xformers; the guide's example uses sdpa.",
        interacts=("training.sdpa", "training.xformers"),
    )
