"""TrainConfig: the whole config file, composed of one model per table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from loratrain.schema.accelerate import AccelerateArgs
from loratrain.schema.buckets import BucketArgs
from loratrain.schema.common import Group
from loratrain.schema.dataset import DatasetArgs
from loratrain.schema.extra import extra_model
from loratrain.schema.logging import LoggingArgs
from loratrain.schema.model import ModelArgs
from loratrain.schema.network import NetworkGroup
from loratrain.schema.network_args import network_arg_items
from loratrain.schema.noise import NoiseArgs
from loratrain.schema.optimizer import OptimizerArgs
from loratrain.schema.precision import PrecisionArgs
from loratrain.schema.sampling import SamplingArgs
from loratrain.schema.saving import SavingArgs
from loratrain.schema.training import TrainingArgs

# Tables holding sd-scripts flags, in the order their flags are rendered.
SCRIPT_GROUPS: dict[str, type[Group]] = {
    "model": ModelArgs,
    "dataset": DatasetArgs,
    "buckets": BucketArgs,
    "network": NetworkGroup,
    "optimizer": OptimizerArgs,
    "training": TrainingArgs,
    "noise": NoiseArgs,
    "sampling": SamplingArgs,
    "saving": SavingArgs,
    "precision": PrecisionArgs,
    "logging": LoggingArgs,
}
MODELLED: dict[str, str] = {name: group for group, cls in SCRIPT_GROUPS.items() for name in cls.model_fields}
if TYPE_CHECKING:  # built from the flag table at run time; statically any table of flags
    ExtraArgs = Any
else:
    ExtraArgs = extra_model(frozenset(MODELLED))


def group_of(dest: str) -> str:
    """The table a sd-scripts dest lives in: its typed group, or "extra"."""
    return MODELLED.get(dest, "extra")


class TrainConfig(BaseModel):
    """One training run of sdxl_train_network.py."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    sd_scripts: str | None = Field(
        None,
        description="Folder of the sd-scripts checkout (holding sdxl_train_network.py). LORATRAIN_SD_SCRIPTS or "
        "--sd-scripts can give it instead.",
    )
    python: str | None = Field(
        None,
        description="Python interpreter of the training environment (e.g. sd-scripts' venv/bin/python). The "
        "launch runs `<python> -m accelerate.commands.launch`; unset uses the `accelerate` on PATH.",
    )
    model: ModelArgs = Field(default_factory=ModelArgs, description="The base model.")
    dataset: DatasetArgs = Field(default_factory=DatasetArgs, description="Images, captions and caching.")
    buckets: BucketArgs = Field(default_factory=BucketArgs, description="Aspect-ratio bucketing.")
    network: NetworkGroup = Field(default_factory=NetworkGroup, description="The adapter and its network_args.")
    optimizer: OptimizerArgs = Field(default_factory=OptimizerArgs, description="Optimizer and learning rates.")
    training: TrainingArgs = Field(default_factory=TrainingArgs, description="Run length, batching, memory.")
    noise: NoiseArgs = Field(default_factory=NoiseArgs, description="Noise sampling.")
    sampling: SamplingArgs = Field(default_factory=SamplingArgs, description="Preview images during training.")
    saving: SavingArgs = Field(default_factory=SavingArgs, description="Output files.")
    precision: PrecisionArgs = Field(default_factory=PrecisionArgs, description="Numeric precision.")
    logging: LoggingArgs = Field(default_factory=LoggingArgs, description="Training logs.")
    accelerate: AccelerateArgs = Field(default_factory=AccelerateArgs, description="accelerate launch options.")
    extra: ExtraArgs = Field(
        default_factory=ExtraArgs, description="Any other sdxl_train_network.py argument, by its dest name."
    )

    def groups(self) -> Iterator[tuple[str, Group]]:
        """The tables holding script flags, in render order, ending with [extra]."""
        for name in SCRIPT_GROUPS:
            yield name, getattr(self, name)
        yield "extra", self.extra

    def set_values(self) -> Iterator[tuple[str, str, Any]]:
        """(table, dest, value) for every script flag that is set; False store_true flags count as unset."""
        for table, group in self.groups():
            for name in type(group).model_fields:
                value = getattr(group, name)
                if value is None or value is False:
                    continue
                yield table, name, value

    def script_args(self) -> dict[str, Any]:
        """sd-scripts dest -> value for every flag that is set, as sd-scripts would hold it after parsing."""
        out: dict[str, Any] = {}
        for _table, dest, value in self.set_values():
            if dest == "network_args":
                out[dest] = network_arg_items(value)
            elif isinstance(value, dict):  # optimizer_args / lr_scheduler_args as a typed table
                from loratrain.sdscripts.optimizers import render_items

                out[dest] = render_items(value)
            elif dest == "text_encoder_lr" and not isinstance(value, list):
                out[dest] = [value]
            else:
                out[dest] = value
        return out
