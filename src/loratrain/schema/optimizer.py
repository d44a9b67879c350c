"""[optimizer]: optimizer, learning rates and the learning-rate schedule."""

from __future__ import annotations

from typing import Any

from pydantic import confloat, conint, field_validator

from loratrain.schema.choices import BROKEN_SCHEDULERS, LrScheduler
from loratrain.schema.common import Group, flag
from loratrain.sdscripts.flags import parse_int_or_float

Rate = confloat(ge=0.0)


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
    optimizer_args: dict[str, Any] | list[str] | None = flag(
        "Keyword arguments of the optimizer's constructor: a table of typed keys ([optimizer.optimizer_args] "
        "weight_decay = 0.01, betas = [0.9, 0.99], decouple = true), or the command line's key=value items "
        'whose values are Python literals ("decouple=True"). The keys depend on optimizer_type; see `loratrain '
        "explain optimizer_args.KEY`.",
        interacts=("optimizer.optimizer_type",),
    )
    lr_scheduler: LrScheduler | None = flag(
        "How the learning rate changes over the run. sd-scripts' default is constant.",
        advice="The guide uses cosine. The adafactor scheduler only works with the Adafactor optimizer.",
        interacts=("optimizer.lr_warmup_steps", "optimizer.lr_scheduler_num_cycles", "optimizer.optimizer_type"),
        example="cosine",
    )
    lr_scheduler_num_cycles: conint(ge=1) | None = flag(
        "Number of cosine cycles: restarts of cosine_with_restarts, half-waves of cosine_with_min_lr and "
        "warmup_stable_decay (sd-scripts passes cycles / 2 to those); other schedulers ignore it.",
        advice=(
            "Matters for cosine_with_restarts, cosine_with_min_lr and warmup_stable_decay; other schedulers ignore it."
        ),
        interacts=("optimizer.lr_scheduler",),
        example=1,
    )
    lr_warmup_steps: int | float | None = flag(
        "Warm-up length: whole steps (an integer), or a fraction of the run below 1 (0.05), or a percentage "
        'text ("5%"). Not allowed with the constant scheduler.',
        interacts=("optimizer.lr_scheduler",),
        example=100,
    )
    lr_scheduler_power: confloat(gt=0.0) | None = flag("Power of the polynomial scheduler.")
    lr_scheduler_args: dict[str, Any] | list[str] | None = flag(
        "Keyword arguments of the scheduler (lr_scheduler, or the torch class named by extra.lr_scheduler_type): "
        "a table of typed keys, or key=value items with Python-literal values.",
        interacts=("optimizer.lr_scheduler",),
    )

    @field_validator("optimizer_type")
    @classmethod
    def _optimizer(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        from loratrain.sdscripts import optimizers

        try:
            optimizers.resolve_optimizer(value)  # the constructor table: sd-scripts' names, torch.optim, dotted
        except KeyError as exc:
            raise ValueError(
                f"{exc.args[0]} (use one of {', '.join(optimizers.sd_optimizer_names())} (any case), a torch.optim "
                "class name (exact case) or a dotted module.Class path)"
            ) from None
        return value

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

    # optimizer_args / lr_scheduler_args are checked item by item against the constructor table in
    # config/optimizer_rules.py (it needs optimizer_type and the [extra] switches, so it is a cross-table rule).
