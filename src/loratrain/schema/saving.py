"""[saving]: where the adapter is written, how often, in which format and precision."""

from __future__ import annotations

from pydantic import conint, field_validator

from loratrain.schema.choices import SaveFormat, SavePrecision
from loratrain.schema.common import Group, flag


class SavingArgs(Group):
    output_dir: str | None = flag(
        "Folder for every saved file: epoch and step snapshots and the final adapter. Required.",
        example="/output_dir",
    )
    output_name: str | None = flag(
        "File name of the adapter, without extension (snapshots add -000001 or -step00000100). Defaults to 'last'.",
        advice="Never leave it empty: an empty name loses the final save.",
        example="my-lora",
    )
    save_model_as: SaveFormat | None = flag(
        "File format: safetensors (default, with metadata), ckpt or pt.",
        advice="Use safetensors.",
        example="safetensors",
    )
    save_precision: SavePrecision | None = flag(
        "Precision of the saved weights: float (32-bit), fp16 or bf16. Unset keeps the training dtype.",
        advice="fp16 is a solid default: small files, negligible loss. (sd-scripts spells 32-bit 'float', not 'fp32'.)",
        example="fp16",
    )
    save_every_n_epochs: conint(ge=1) | None = flag(
        "Save a snapshot every N epochs (the final model is always saved).",
        advice="The guide's example saves every 50 epochs; pair with save_last_n_epochs to prune old files.",
        interacts=("saving.save_last_n_epochs",),
        example=50,
    )
    save_last_n_epochs: conint(ge=1) | None = flag(
        "Keep only the newest N epoch snapshots, deleting older ones.",
        advice="Use it to keep only the latest few epoch saves.",
        interacts=("saving.save_every_n_epochs",),
    )
    save_every_n_steps: conint(ge=1) | None = flag(
        "Save a snapshot every N steps.",
        advice="Alternative to epoch saving; pair with save_last_n_steps to prune old files.",
        interacts=("saving.save_last_n_steps",),
    )
    save_last_n_steps: conint(ge=1) | None = flag(
        "Keep only the snapshots of the last N steps, deleting older ones.",
        interacts=("saving.save_every_n_steps",),
    )
    save_state: bool | None = flag("Also save optimizer state with each snapshot so training can resume.")

    @field_validator("output_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "output_name is empty: the final model would not be saved under a usable name; remove "
                "the key (sd-scripts then uses 'last') or give a name"
            )
        if value is not None and ("/" in value or "\\" in value):
            raise ValueError("output_name is a file name, not a path; put folders in output_dir")
        return value
