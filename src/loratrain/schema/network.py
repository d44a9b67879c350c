"""[network]: which adapter is trained, its size, and its network_args."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, confloat, conint, model_validator

from loratrain.schema.choices import LORA_MODULE, LYCORIS_MODULE
from loratrain.schema.common import Group, flag
from loratrain.schema.network_args import ARGS_TAG, LoraArgs, LycorisArgs, OtherArgs

ARGS_KIND = {LYCORIS_MODULE: "lycoris", LORA_MODULE: "lora"}


def _args_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get(ARGS_TAG, "other")
    return getattr(value, "kind", "other")


NetworkArgs = Annotated[
    Union[
        Annotated[LycorisArgs, Tag("lycoris")],
        Annotated[LoraArgs, Tag("lora")],
        Annotated[OtherArgs, Tag("other")],
    ],
    Discriminator(_args_kind),
]


class NetworkGroup(Group):
    network_module: str | None = flag(
        "Python module that builds the adapter: networks.lora (sd-scripts' LoRA/LoCon) or lycoris.kohya "
        "(LyCORIS: LoCon, LoHa, LoKr, ...). Required.",
        advice="The guide trains LyCORIS LoCon: lycoris.kohya (install lycoris_lora in the training environment).",
        interacts=("network.network_args",),
        example="lycoris.kohya",
    )
    network_dim: conint(ge=1) | None = flag(
        "Rank of the adapter: how many directions each layer's update can use. Larger means more capacity and "
        "bigger files.",
        advice="Experiment; it works together with network_alpha, the learning rates and the dataset. The guide "
        "uses 8.",
        interacts=("network.network_alpha", "network.network_args.conv_dim"),
        example=8,
    )
    network_alpha: confloat(gt=0.0) | None = flag(
        "Scales the update by network_alpha / network_dim, damping how strongly the trained ranks change the "
        "model. sd-scripts' default is 1.",
        advice="The guide uses 4 with network_dim 8 (scale 0.5).",
        interacts=("network.network_dim", "optimizer.learning_rate"),
        example=4,
    )
    network_dropout: confloat(ge=0.0, le=1.0) | None = flag(
        "Neuron dropout on the adapter's down-projection each step; 0 or unset means none, 1 would drop "
        "everything. DoRA (dora_wd) ignores it.",
        advice=(
            "The guide's example sets 0, which equals no dropout; with LyCORIS DoRA (dora_wd) neuron dropout is not "
            "applied anyway."
        ),
        example=0,
    )
    network_train_unet_only: bool | None = flag(
        "Train the adapter on the UNet only, leaving both text encoders untouched. Required by "
        "cache_text_encoder_outputs.",
        interacts=("dataset.cache_text_encoder_outputs", "optimizer.text_encoder_lr"),
    )
    network_train_text_encoder_only: bool | None = flag("Train the adapter on the text encoders only.")
    network_weights: str | None = flag("Start from the weights of an existing adapter file.")
    dim_from_weights: bool | None = flag("Take network_dim (and alpha) from network_weights instead of the config.")
    scale_weight_norms: confloat(gt=0.0) | None = flag(
        "Max-norm regularisation: after each step, scale down module updates whose norm exceeds this value. "
        "Complements max_grad_norm, which clips gradients instead.",
        advice="1.0 is the guide's value.",
        interacts=("optimizer.max_grad_norm",),
        example=1.0,
    )
    network_args: NetworkArgs | None = flag(
        "Extra options for the network module, as a table; loratrain renders them as the key=value items "
        "sd-scripts passes on. Which keys exist depends on network_module.",
        interacts=("network.network_module",),
    )

    @model_validator(mode="before")
    @classmethod
    def _tag_network_args(cls, data: Any) -> Any:
        """Tell the network_args union which module's keys to expect (the tag is internal, never rendered)."""
        if isinstance(data, dict) and isinstance(data.get("network_args"), dict):
            module = data.get("network_module")
            kind = ARGS_KIND.get(module, "other") if isinstance(module, str) else "other"
            data = {**data, "network_args": {**data["network_args"], ARGS_TAG: kind}}
        return data
