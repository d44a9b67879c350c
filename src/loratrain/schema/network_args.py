"""[network.network_args]: typed per network_module.

sd-scripts splits every `key=value` item on the first `=` and hands the strings to the module's
`create_network`. Each module parses them its own way, so each gets its own model here:
- `lycoris.kohya` (LyCORIS 4.1.3): booleans go through `str(v).lower() != "false"`, so only the text
  "False" is false (`use_tucker=0` turns Tucker on); `decompose_both` is true for any non-empty text and must
  be left out to stay off. The renderer writes exactly what LyCORIS reads as intended.
- `networks.lora` (sd-scripts' own): per-block lists are comma-separated numbers; SDXL has 23 blocks.
- any other module: a free table, rendered as given.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, confloat, conint, conlist, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from loratrain.schema.choices import LYCORIS_PRESETS, LycorisAlgo
from loratrain.schema.common import Group, field_extra, flag, format_value

# Key of the internal tag telling the network_args union which module's keys to expect. It holds a NUL byte,
# which no user key can (loratrain.untrusted refuses them), so a real `kind=` argument is never taken for it.
ARGS_TAG = "\x00kind"

SDXL_BLOCKS = 23  # time embedding, 9 input blocks, 3 middle, 9 output blocks, out (networks.lora's count)

Fraction = confloat(ge=0.0, le=1.0)
PositiveRatio = confloat(gt=0.0)


def _split_numbers(value: Any) -> Any:
    """Let "8,8,8" stand for [8, 8, 8] (the form sd-scripts and imported commands use)."""
    if isinstance(value, str) and value.strip():
        parts = [p.strip() for p in value.split(",")]
        out: list[Any] = []
        for p in parts:
            try:
                out.append(int(p))
            except ValueError:
                try:
                    out.append(float(p))
                except ValueError:
                    return value  # leave it for the type check to report
        return out
    return value


def _ints_as_floats(value: Any) -> Any:
    if isinstance(value, list):
        return [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


class LycorisArgs(Group):
    """Every key `lycoris.kohya.create_network` (LyCORIS 4.1.3) reads, plus the guide's keys it ignores."""

    kind: SkipJsonSchema[Literal["lycoris"]] = Field(
        "lycoris", validation_alias=ARGS_TAG, exclude=True, description="internal tag"
    )
    algo: LycorisAlgo | None = flag(
        "LyCORIS algorithm: lora/locon (low-rank, also on 3x3 convs), loha (Hadamard product), lokr (Kronecker "
        "product), dylora, glora, full (full-rank difference), diag-oft, boft, ia3, tlora. LyCORIS' default is "
        "lora.",
        advice="The guide trains LoCon: algo=locon with preset=full.",
        interacts=("network.network_dim", "network.network_args.conv_dim"),
        example="locon",
    )
    preset: str | None = flag(
        "Which layers to train: full (default: every UNet and text-encoder layer), full-lin (no 3x3 convs), "
        "attn-mlp (transformer blocks only), attn-only, unet-only, unet-transformer-only, unet-convblock-only, ia3; "
        "or a path to a LyCORIS preset .toml file.",
        advice="full trains everything; attn-mlp matches sd-scripts' own LoRA targets.",
        example="full",
    )
    conv_dim: conint(ge=0) | None = flag(
        "Rank of the 3x3 convolution layers (linear and 1x1 layers use network_dim). When left out, LyCORIS "
        "trains 3x3 convs at network_dim; 0 removes them.",
        advice="Kohaku recommends conv_alpha=1 for LoCon and LoHa; the guide's example trains conv_dim=256 with "
        "conv_alpha=4.",
        interacts=("network.network_dim", "network.network_args.conv_alpha"),
        example=8,
    )
    conv_alpha: confloat(ge=0.0) | None = flag(
        "Alpha of the 3x3 convolution layers (their scale is conv_alpha / conv_dim). Defaults to network_alpha.",
        advice=(
            "The guide's example uses 4 (a conv scale of 1/64 at conv_dim 256); LyCORIS' author suggests 1 for LoCon and "
            "LoHa."
        ),
        interacts=("network.network_alpha", "network.network_args.conv_dim"),
        example=4,
    )
    dropout: Fraction | None = flag(
        "Neuron dropout inside each LyCORIS module. sd-scripts fills it from network_dropout when left out.",
        interacts=("network.network_dropout",),
    )
    rank_dropout: Fraction | None = flag(
        "Probability of dropping each rank (or element of the update) in a training step.",
    )
    module_dropout: Fraction | None = flag(
        "Probability of skipping a whole module in a training step.",
    )
    use_tucker: bool | None = flag(
        "Tucker-decompose 3x3 convolutions (an extra small core tensor). Only lora/locon, loha and lokr use it.",
        interacts=("network.network_args.algo",),
        example=False,
    )
    use_scalar: bool | None = flag(
        "Train an extra scalar per module that scales the update, starting from zero.",
        example=False,
    )
    block_size: conint(ge=1) | None = flag(
        "dylora only: ranks trained per step; network_dim and conv_dim must be multiples of it (default 4).",
        interacts=("network.network_args.algo", "network.network_dim"),
    )
    train_norm: bool | None = flag(
        "Also train the normalisation layers inside the targeted blocks.",
        example=False,
    )
    constraint: confloat(ge=0.0) | None = flag("diag-oft and boft only: the COFT constraint strength.")
    rescaled: bool | None = flag("diag-oft and boft only: add a trainable rescale vector.")
    dora_wd: bool | None = flag(
        "DoRA: decompose the weight into magnitude and direction (lora/locon, loha, lokr). This is LyCORIS' key; "
        "weight_decompose is not read.",
    )
    wd_on_output: bool | None = flag("With dora_wd: normalise per output row (LyCORIS' default) or per input column.")
    bypass_mode: bool | None = flag(
        "Compute y = Wx + dWx instead of merging the update into W. Not supported by algo=full.",
    )
    rs_lora: bool | None = flag("Rank-stabilised scaling alpha / sqrt(rank) instead of alpha / rank.")
    full_matrix: bool | None = flag("lokr only: never decompose the Kronecker factors.")
    unbalanced_factorization: bool | None = flag("lokr only: swap the two output factors.")
    decompose_both: bool | None = flag(
        "lokr only: low-rank both Kronecker factors. LyCORIS treats any text as on, so loratrain renders it only "
        "when true.",
        render="only_true",
    )
    factor: int | None = flag(
        "lokr only: the Kronecker factor; -1 (default) picks the most balanced split.",
    )
    loraplus_lr_ratio: PositiveRatio | None = flag(
        "LoRA+: learning-rate multiplier for the up matrices. Only lora/locon modules have them; other algos "
        "ignore it.",
    )
    loraplus_unet_lr_ratio: PositiveRatio | None = flag("LoRA+ ratio for the UNet only (lora/locon).")
    loraplus_text_encoder_lr_ratio: PositiveRatio | None = flag("LoRA+ ratio for the text encoders only (lora/locon).")
    # The guide passes these, but LyCORIS 4.1.3's create_network never reads them (a warning says so).
    block_dims: list[int] | None = flag(
        "Per-block ranks, read by networks.lora only. LyCORIS ignores this key.",
        ignored=True,
        advice=(
            "The guide passes 25 values, but lycoris.kohya ignores block_dims and networks.lora needs 23 for SDXL; leave "
            "it out with LyCORIS."
        ),
    )
    block_alphas: list[float] | None = flag(
        "Per-block alphas, read by networks.lora only. LyCORIS ignores this key.",
        ignored=True,
        advice="The guide passes 25 values of 0.0625; lycoris.kohya ignores them, so leave them out.",
    )
    rank_dropout_scale: bool | None = flag(
        "Not forwarded by LyCORIS' create_network (only reachable through a preset file); ignored.", ignored=True
    )
    use_reentrant: bool | None = flag("Not read by LyCORIS; ignored.", ignored=True)

    @field_validator("block_dims", "block_alphas", mode="before")
    @classmethod
    def _lists(cls, value: Any, info) -> Any:
        value = _split_numbers(value)
        return _ints_as_floats(value) if info.field_name == "block_alphas" else value

    @field_validator("algo", mode="before")
    @classmethod
    def _algo_case(cls, value: Any) -> Any:
        # LyCORIS lower-cases algo itself, so "LoKr" is as valid as "lokr".
        return value.lower() if isinstance(value, str) else value

    @field_validator("preset")
    @classmethod
    def _preset(cls, value: str | None) -> str | None:
        if value is not None and value not in LYCORIS_PRESETS and not value.endswith(".toml"):
            raise ValueError(
                f"unknown preset {value!r}; LyCORIS 4.1.3 knows {', '.join(LYCORIS_PRESETS)} "
                "(exact spelling), or give a path to a preset .toml file"
            )
        return value

    @field_validator("factor")
    @classmethod
    def _factor(cls, value: int | None) -> int | None:
        if value is not None and value != -1 and value < 1:
            raise ValueError("factor is -1 (balanced) or a positive integer")
        return value


Blocks = conlist(conint(ge=0), min_length=SDXL_BLOCKS, max_length=SDXL_BLOCKS)
BlockAlphas = conlist(confloat(ge=0.0), min_length=SDXL_BLOCKS, max_length=SDXL_BLOCKS)


class LoraArgs(Group):
    """Keys sd-scripts' own `networks.lora` reads."""

    kind: SkipJsonSchema[Literal["lora"]] = Field(
        "lora", validation_alias=ARGS_TAG, exclude=True, description="internal tag"
    )
    conv_dim: conint(ge=1) | None = flag(
        "Rank for the 3x3 convolutions of ResNet, down- and up-sample blocks (LoCon-style). Without it "
        "networks.lora trains no 3x3 convs.",
        interacts=("network.network_args.conv_alpha",),
        example=4,
    )
    conv_alpha: confloat(ge=0.0) | None = flag(
        "Alpha for those convolutions; networks.lora defaults it to 1 when conv_dim is set.",
        example=1,
    )
    block_dims: Blocks | None = flag(
        "Rank of each of SDXL's 23 UNet blocks (embedding, 9 input, 3 middle, 9 output, out); 0 skips a block. "
        "SD 1.x uses 25, which sd-scripts rejects for SDXL.",
        interacts=("network.network_args.block_alphas",),
        example=[0] + [8] * 21 + [0],
    )
    block_alphas: BlockAlphas | None = flag("Alpha of each of the 23 blocks (network_alpha when left out).")
    conv_block_dims: Blocks | None = flag("3x3-conv rank of each of the 23 blocks.")
    conv_block_alphas: BlockAlphas | None = flag("3x3-conv alpha of each of the 23 blocks.")
    down_lr_weight: list[float] | str | None = flag(
        "Learning-rate weights of the 9 input blocks, or a curve name (cosine, sine, linear, reverse_linear, zeros, "
        "optionally +base).",
    )
    mid_lr_weight: list[float] | str | None = flag("Learning-rate weights of the 3 middle blocks.")
    up_lr_weight: list[float] | str | None = flag("Learning-rate weights of the 9 output blocks, or a curve name.")
    block_lr_zero_threshold: confloat(ge=0.0) | None = flag(
        "Blocks whose learning-rate weight is at or below this are not trained."
    )
    rank_dropout: Fraction | None = flag("Probability of dropping each rank in a training step.")
    module_dropout: Fraction | None = flag("Probability of skipping a whole module in a training step.")
    loraplus_lr_ratio: PositiveRatio | None = flag("LoRA+: learning-rate multiplier for the up matrices.")
    loraplus_unet_lr_ratio: PositiveRatio | None = flag("LoRA+ ratio for the UNet only.")
    loraplus_text_encoder_lr_ratio: PositiveRatio | None = flag("LoRA+ ratio for the text encoders only.")

    @field_validator(
        "block_dims",
        "block_alphas",
        "conv_block_dims",
        "conv_block_alphas",
        "down_lr_weight",
        "mid_lr_weight",
        "up_lr_weight",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any, info) -> Any:
        value = _split_numbers(value)
        if info.field_name in ("block_alphas", "conv_block_alphas", "down_lr_weight", "mid_lr_weight", "up_lr_weight"):
            value = _ints_as_floats(value)
        return value


class OtherArgs(Group):
    """network_args for a module loratrain does not model: rendered as given, not checked."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, defer_build=True)
    kind: SkipJsonSchema[Literal["other"]] = Field(
        "other", validation_alias=ARGS_TAG, exclude=True, description="internal tag"
    )

    @model_validator(mode="after")
    def _plain_values(self) -> "OtherArgs":
        # Each value becomes the text after "key=": numbers, strings, booleans or lists of them, nothing nested.
        for key, value in (self.model_extra or {}).items():
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, (str, int, float, bool)) for v in items):
                raise ValueError(f"{key}: network_args values are numbers, strings, booleans or lists of them")
        return self


# Keys people write that the module does not read, with what to write instead.
LYCORIS_KEY_HINTS = {
    "weight_decompose": "LyCORIS reads dora_wd, not weight_decompose (which it silently ignores)",
    "use_cp": "deprecated in LyCORIS; use use_tucker",
    "use_conv_cp": "deprecated in LyCORIS; use use_tucker",
    "disable_conv_cp": "deprecated in LyCORIS (and 'False' does not enable Tucker); use use_tucker",
    "constrain": "deprecated spelling; use constraint",
    "conv_block_dims": "per-block ranks are read by networks.lora only; LyCORIS ignores them",
    "conv_block_alphas": "per-block alphas are read by networks.lora only; LyCORIS ignores them",
    "down_lr_weight": "block learning-rate weights are read by networks.lora only; LyCORIS ignores them",
    "mid_lr_weight": "block learning-rate weights are read by networks.lora only; LyCORIS ignores them",
    "up_lr_weight": "block learning-rate weights are read by networks.lora only; LyCORIS ignores them",
    "block_lr_zero_threshold": "read by networks.lora only; LyCORIS ignores it",
    "neuron_dropout": "set network.network_dropout instead",
}
LORA_KEY_HINTS = {
    "algo": 'networks.lora has no algorithms; use network_module = "lycoris.kohya" for LoCon/LoHa/LoKr',
    "preset": "presets are a LyCORIS feature; networks.lora ignores them",
    "use_tucker": "a LyCORIS option; networks.lora ignores it",
    "dropout": "set network.network_dropout instead (networks.lora ignores this key)",
}


def network_arg_items(args: Group) -> list[str]:
    """The typed network_args table as sd-scripts' `key=value` strings, in field order."""
    items: list[str] = []
    model = type(args)
    extra = args.model_extra or {}
    names = list(dict.fromkeys([*model.model_fields, *extra]))
    for name in names:
        if name == "kind" and name not in extra:
            continue  # the internal tag; a module's own `kind=` argument (in extra) is rendered
        value = extra[name] if name in extra else getattr(args, name, None)
        if value is None:
            continue
        rule = field_extra(model, name).get("render") if name in model.model_fields else None
        if rule == "only_true" and value is not True:
            continue  # LyCORIS reads any text as "on" for this key: leaving it out is the only "off"
        if isinstance(value, list):
            text = ",".join(format_value(v) for v in value)
        else:
            text = format_value(value)
        items.append(f"{name}={text}")
    return items
