"""[accelerate]: options of `accelerate launch` itself. All are passed explicitly, so no `accelerate config`
file is ever consulted.

LAUNCH_OPTIONS is the one table of the launcher options loratrain carries: their kind, type, choices and the
value loratrain renders when a key is unset. The [accelerate] model takes its choices from it, `import` reads
commands with it (importers/accelerate_argv.py), render and preflight take the defaults from it, and
tests/importing/test_import_shell_command.py compares it with accelerate's real `launch` parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import conint, field_validator

from loratrain.schema.common import Group, flag


@dataclass(frozen=True)
class AccelOption:
    dest: str
    kind: str  # "store_true" or "value"
    type: str = "str"  # "int" or "str"
    choices: tuple[str, ...] | None = None
    default: Any = None  # what loratrain renders when the key is unset (None: the option is left out)


LAUNCH_OPTIONS: dict[str, AccelOption] = {
    o.dest: o
    for o in (
        AccelOption("num_processes", "value", "int", default=1),
        AccelOption("num_machines", "value", "int", default=1),
        AccelOption("machine_rank", "value", "int"),
        AccelOption("gpu_ids", "value"),
        AccelOption("num_cpu_threads_per_process", "value", "int"),
        AccelOption("main_process_ip", "value"),
        AccelOption("main_process_port", "value", "int"),
        # Unset: precision.mixed_precision, else "no" (render.accelerate_flags).
        AccelOption("mixed_precision", "value", choices=("no", "fp16", "bf16", "fp8"), default="no"),
        AccelOption(
            "dynamo_backend",
            "value",
            choices=(
                "no",
                "eager",
                "aot_eager",
                "inductor",
                "aot_ts_nvfuser",
                "nvprims_nvfuser",
                "cudagraphs",
                "ofi",
                "fx2trt",
                "onnxrt",
                "tensorrt",
                "aot_torchxla_trace_once",
                "torhchxla_trace_once",
                "tvm",
            ),
            default="no",
        ),
        AccelOption("multi_gpu", "store_true"),
    )
}


def launch_default(dest: str) -> Any:
    """The value loratrain renders for an unset [accelerate] key."""
    return LAUNCH_OPTIONS[dest].default


AcceleratePrecision = Literal[LAUNCH_OPTIONS["mixed_precision"].choices]
DynamoBackend = Literal[LAUNCH_OPTIONS["dynamo_backend"].choices]


class AccelerateArgs(Group):
    num_processes: conint(ge=1) | Literal["auto"] | None = flag(
        'Training processes in total (one per GPU, across all machines). "auto" uses every visible GPU. Default 1.',
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
        'Which GPUs of this machine to use: "0,1" or "all" (a TOML list [0, 1] works too).',
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
    mixed_precision: AcceleratePrecision | None = flag(
        "accelerate's precision setting. sd-scripts passes its own precision.mixed_precision to accelerate, so "
        "loratrain fills this from that when unset.",
        interacts=("precision.mixed_precision",),
    )
    dynamo_backend: DynamoBackend | None = flag(
        'torch.compile backend for accelerate; loratrain passes "no" when unset.',
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
                raise ValueError(f'{value!r}: write GPU ids as "0,1" or "all"')
            if len(set(parts)) != len(parts):
                raise ValueError(f"{value!r} names a GPU twice")
            return ",".join(parts)
        return value
