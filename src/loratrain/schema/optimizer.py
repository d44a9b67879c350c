"""[optimizer]: optimizer, learning rates and the learning-rate schedule."""

from __future__ import annotations

from typing import Any

from pydantic import confloat, conint, field_validator

from loratrain.errors import close_matches
from loratrain.sdscripts.flags import parse_int_or_float
from loratrain.schema.choices import BROKEN_SCHEDULERS, OPTIMIZERS, TORCH_OPTIMIZERS, LrScheduler
from loratrain.schema.common import Group, flag

Rate = confloat(ge=0.0)


def _check_kv_items(value: list[str] | None) -> list[str] | None:
    for item in value or []:
        if item.count("=") != 1:
            raise ValueError(f"{item!r}: each item is key=value with exactly one '=' (sd-scripts splits on it)")
    return value


class OptimizerArgs(Group):
    optimizer_type: str | None = flag(
        "Optimizer: one of sd-scripts' names (AdamW, AdamW8bit, Lion, Prodigy, Adafactor, DAdaptAdam, ...; "
        "case does not matter), a torch.optim class name, or a dotted module.Class path. Empty means AdamW.",
        advice="AdamW is the guide's choice.",
        interacts=("optimizer.learning_rate", "optimizer.lr_scheduler"),
        example="AdamW",
    )
    learning_rate: Rate | None = flag(
        "Base learning rate, used wherever unet_lr or text_encoder_lr are not given. sd-scripts' default is 2e-6.",
        advice="About 1e-4 works for AdamW.",
        interacts=("optimizer.unet_lr", "optimizer.text_encoder_lr", "network.network_alpha"),
        example=0.0001,
    )
    unet_lr: Rate | None = flag(
        "Learning rate of the UNet part of the adapter (defaults to learning_rate).",
        advice="1e-4 for AdamW in the guide.",
        example=0.0001,
    )
    text_encoder_lr: Rate | list[Rate] | None = flag(
        "Learning rate of the text-encoder part of the adapter. Defaults to learning_rate; ignored with "
        "network_train_unet_only. A list is accepted, but networks.lora and lycoris.kohya use only its first value, "
        "for both SDXL encoders.",
        advice="1e-4 for AdamW in the guide.",
        interacts=("network.network_train_unet_only",),
        example=0.0001,
    )
    max_grad_norm: Rate | None = flag(
        "Gradient clipping: the largest allowed gradient norm per step; 0 turns clipping off. sd-scripts' "
        "default is 1.0.",
        advice="If the loss turns NaN or explodes, gradients are probably too large: keep clipping at 1.0.",
        interacts=("network.scale_weight_norms",),
        example=1.0,
    )
    optimizer_args: list[str] | None = flag(
        "Extra optimizer options as key=value items; values are Python literals (weight_decay=0.01, "
        "betas=0.9,0.99; quote strings).",
        example=["weight_decay=0.01"],
    )
    lr_scheduler: LrScheduler | None = flag(
        "How the learning rate changes over the run. sd-scripts' default is constant.",
        advice="The guide uses cosine. The adafactor scheduler only works with the Adafactor optimizer.",
        interacts=("optimizer.lr_warmup_steps", "optimizer.lr_scheduler_num_cycles", "optimizer.optimizer_type"),
        example="cosine",
    )
    lr_scheduler_num_cycles: conint(ge=1) | None = flag(
        "Number of restarts of cosine_with_restarts; no other scheduler reads it.",
        advice="Only matters for cosine_with_restarts; other schedulers ignore it.",
        interacts=("optimizer.lr_scheduler",),
        example=1,
    )
    lr_warmup_steps: int | float | None = flag(
        "Warm-up length: whole steps (an integer), or a fraction of the run below 1 (0.05), or a percentage "
        "text (\"5%\"). Not allowed with the constant scheduler.",
        interacts=("optimizer.lr_scheduler",),
        example=100,
    )
    lr_scheduler_power: confloat(gt=0.0) | None = flag("Power of the polynomial scheduler.")
    lr_scheduler_args: list[str] | None = flag(
        "Extra scheduler options as key=value items; values are Python literals.",
    )

    @field_validator("optimizer_type")
    @classmethod
    def _optimizer(cls, value: str | None) -> str | None:
        if value is None or value == "" or "." in value:
            return value
        if value.lower() in {o.lower() for o in OPTIMIZERS} or value in TORCH_OPTIMIZERS:
            return value
        close = close_matches(value.lower(), [o.lower() for o in OPTIMIZERS + TORCH_OPTIMIZERS])
        hint = ""
        if close:
            name = next(o for o in OPTIMIZERS + TORCH_OPTIMIZERS if o.lower() == close[0])
            hint = f"; did you mean {name!r}?"
        raise ValueError(
            f"unknown optimizer {value!r}{hint} Use one of {', '.join(OPTIMIZERS)}, a torch.optim class name "
            "(case-sensitive) or a dotted module.Class path"
        )

    @field_validator("lr_scheduler", mode="before")
    @classmethod
    def _broken_scheduler(cls, value: Any) -> Any:
        if isinstance(value, str) and value in BROKEN_SCHEDULERS:
            raise ValueError(f"{value!r} cannot be used with sd-scripts: {BROKEN_SCHEDULERS[value]}")
        return value

    @field_validator("lr_warmup_steps", mode="before")
    @classmethod
    def _warmup(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a step count or a fraction")
        if isinstance(value, str):
            try:
                value = parse_int_or_float(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a step count, fraction or percentage ({exc})") from None
        if isinstance(value, float) and not 0.0 <= value < 1.0:
            raise ValueError(
                f"{value} as a float is a fraction of the run and must be below 1; write whole steps as an integer"
            )
        if isinstance(value, int) and value < 0:
            raise ValueError("warm-up steps cannot be negative")
        return value

    @field_validator("optimizer_args", "lr_scheduler_args")
    @classmethod
    def _kv(cls, value: list[str] | None) -> list[str] | None:
        return _check_kv_items(value)
