"""[logging]: TensorBoard / Weights & Biases logging."""

from __future__ import annotations

from loratrain.schema.choices import LogWith
from loratrain.schema.common import Group, flag


class LoggingArgs(Group):
    logging_dir: str | None = flag(
        "Folder for training logs. Setting it alone turns on TensorBoard logging.",
        advice="Point it inside the output folder, e.g. /output_dir/logs, then run tensorboard --logdir on it.",
        interacts=("logging.log_with", "logging.log_prefix"),
        example="/output_dir/logs",
    )
    log_with: LogWith | None = flag(
        "Logger: tensorboard, wandb or all. tensorboard and all need logging_dir.",
        advice="For TensorBoard the guide sets tensorboard together with logging_dir (e.g. /output_dir/logs).",
        interacts=("logging.logging_dir",),
        example="tensorboard",
    )
    log_prefix: str | None = flag(
        "Prefix of each run's log folder name (<logging_dir>/<prefix><timestamp>). Does nothing without logging_dir.",
        advice=(
            "The guide names runs with a prefix such as xl-locon; remember it needs logging_dir, which the guide's main "
            "example lacks."
        ),
        interacts=("logging.logging_dir",),
        example="xl-locon",
    )
    log_tracker_name: str | None = flag("Project name used by the tracker (wandb project).")
    wandb_run_name: str | None = flag("Name of the wandb run.")
    wandb_api_key: str | None = flag(
        "Weights & Biases API key. A secret: loratrain passes it as WANDB_API_KEY in the environment, never on "
        "the command line, and never writes it to a run record. Better kept out of the file altogether.",
    )
