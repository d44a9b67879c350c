"""[accelerate]: options of `accelerate launch` itself. All are passed explicitly, so no `accelerate config`
file is ever consulted."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import conint, field_validator

from loratrain.schema.choices import DynamoBackend, MixedPrecision
from loratrain.schema.common import Group, flag


class AccelerateArgs(Group):
    num_processes: conint(ge=1) | Literal["auto"] | None = flag(
        "Training processes in total (one per GPU, across all machines). \"auto\" uses every visible GPU. "
        "Default 1.",
        advice="With several GPUs, make the number of sample prompts divisible by it.",
        interacts=("accelerate.gpu_ids", "accelerate.num_machines"),
        example=2,
    )
    num_machines: conint(ge=1) | None = flag(
        "Machines taking part (multi-node training). Default 1.",
        advice="The guide's two-GPU example runs on 1 machine.",
        interacts=("accelerate.machine_rank", "accelerate.main_process_ip", "accelerate.main_process_port"),
        example=1,
    )
    machine_rank: conint(ge=0) | None = flag(
        "This machine's index among num_machines (0 is the main node). Usually given on the command line with "
        "`loratrain run --machine-rank N`.",
        interacts=("accelerate.num_machines",),
    )
    gpu_ids: str | None = flag(
        "Which GPUs of this machine to use: \"0,1\" or \"all\" (a TOML list [0, 1] works too).",
        advice="The guide's two-GPU example uses 0,1.",
        interacts=("accelerate.num_processes",),
        example="0,1",
    )
    num_cpu_threads_per_process: conint(ge=1) | None = flag(
        "CPU threads per training process (OMP_NUM_THREADS).",
        advice="The guide uses 2.",
        example=2,
    )
    main_process_ip: str | None = flag(
        "Address of the main node (machine_rank 0) for multi-node training.",
        interacts=("accelerate.num_machines", "accelerate.main_process_port"),
    )
    main_process_port: conint(ge=1, le=65535) | None = flag(
        "Port on the main node for multi-node training.",
        interacts=("accelerate.main_process_ip",),
        example=29500,
    )
    mixed_precision: MixedPrecision | None = flag(
        "accelerate's precision setting. sd-scripts passes its own precision.mixed_precision to accelerate, so "
        "loratrain fills this from that when unset.",
        interacts=("precision.mixed_precision",),
    )
    dynamo_backend: DynamoBackend | None = flag(
        "torch.compile backend for accelerate; loratrain passes \"no\" when unset.",
    )
    multi_gpu: bool | None = flag(
        "Distributed data-parallel launch. loratrain turns it on by itself when more than one process is used.",
        advice="The guide's two-GPU launch sets it with num_processes 2, num_machines 1 and gpu_ids 0,1.",
    )

    @field_validator("gpu_ids", mode="before")
    @classmethod
    def _gpu_ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
                raise ValueError("a GPU id list holds non-negative integers, e.g. [0, 1]")
            return ",".join(str(v) for v in value)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value != "all":
            parts = [p.strip() for p in value.split(",")]
            if not all(p.isdigit() for p in parts):
                raise ValueError(f"{value!r}: write GPU ids as \"0,1\" or \"all\"")
            if len(set(parts)) != len(parts):
                raise ValueError(f"{value!r} names a GPU twice")
            return ",".join(parts)
        return value
