"""TrainConfig -> the argv of `accelerate launch ... sdxl_train_network.py ...`. Pure: no I/O.

Rules: full option names; `--flag=value` for single values; store_true `True` is a bare flag, `False` and
unset are omitted; `0` and `0.0` are kept; list values are separate tokens after the option;
network_args are `key=value` tokens; secrets go to the environment, never argv.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from loratrain.schema.accelerate import launch_default
from loratrain.schema.choices import SECRET_ENV
from loratrain.schema.common import format_value
from loratrain.schema.network_args import network_arg_items
from loratrain.sdscripts import flags

SCRIPT_PLACEHOLDER = "<sd-scripts>"
GPUS_PLACEHOLDER = "<number of GPUs>"


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def script_flags(cfg: Any) -> tuple[list[str], dict[str, str]]:
    """The script's own arguments and the secret environment, from a validated TrainConfig."""
    argv: list[str] = []
    env: dict[str, str] = {}
    for _table, dest, value in cfg.set_values():
        if dest in SECRET_ENV:
            env[SECRET_ENV[dest]] = str(value)
            continue
        spec = flags.get(dest)
        option = spec.option if spec else f"--{dest}"
        if dest == "network_args":
            argv.append(option)
            argv.extend(network_arg_items(value))
        elif isinstance(value, dict):  # optimizer_args / lr_scheduler_args as a typed table
            from loratrain.sdscripts.optimizers import render_items

            argv.append(option)
            argv.extend(render_items(value))
        elif spec is not None and spec.kind == "store_true":
            argv.append(option)
        elif spec is not None and spec.kind == "list":
            argv.append(option)
            argv.extend(format_value(v) for v in (value if isinstance(value, list) else [value]))
        else:
            argv.append(f"{option}={format_value(value)}")
    return argv, env


def accelerate_flags(cfg: Any, visible_gpus: int | None = None, machine_rank: int | None = None) -> list[str]:
    """accelerate launch's options, all explicit so that no `accelerate config` file is consulted."""
    acc = cfg.accelerate
    processes: int | str
    if acc.num_processes == "auto":
        processes = visible_gpus if visible_gpus is not None else GPUS_PLACEHOLDER
    else:
        processes = acc.num_processes or launch_default("num_processes")
    machines = acc.num_machines or launch_default("num_machines")
    precision = acc.mixed_precision or cfg.precision.mixed_precision or launch_default("mixed_precision")
    out: list[str] = []
    multi = acc.multi_gpu if acc.multi_gpu is not None else (processes != 1 or machines > 1)
    if multi:
        out.append("--multi_gpu")
    out.append(f"--num_processes={processes}")
    out.append(f"--num_machines={machines}")
    rank = machine_rank if machine_rank is not None else acc.machine_rank
    if machines > 1 or rank is not None:
        out.append(f"--machine_rank={rank or 0}")
    if acc.main_process_ip is not None:
        out.append(f"--main_process_ip={acc.main_process_ip}")
    if acc.main_process_port is not None:
        out.append(f"--main_process_port={acc.main_process_port}")
    if acc.gpu_ids is not None:
        out.append(f"--gpu_ids={acc.gpu_ids}")
    if acc.num_cpu_threads_per_process is not None:
        out.append(f"--num_cpu_threads_per_process={acc.num_cpu_threads_per_process}")
    out.append(f"--mixed_precision={precision}")
    out.append(f"--dynamo_backend={acc.dynamo_backend or launch_default('dynamo_backend')}")
    return out


def launcher_for(python: str) -> list[str]:
    """Start accelerate through a given interpreter, so the training environment's packages are the ones used."""
    return [python, "-m", "accelerate.commands.launch"]


def script_path(sd_scripts_dir: str | None) -> str:
    base = sd_scripts_dir if sd_scripts_dir else SCRIPT_PLACEHOLDER
    return base.rstrip("/") + "/" + flags.SCRIPT_NAME


def build_command(
    cfg: Any,
    sd_scripts_dir: str | None = None,
    launcher: list[str] | None = None,
    visible_gpus: int | None = None,
    machine_rank: int | None = None,
) -> Command:
    """The full launch command. `sd_scripts_dir` None leaves a visible placeholder (dry-run only)."""
    script_argv, env = script_flags(cfg)
    head = list(launcher) if launcher else ["accelerate", "launch"]
    argv = head + accelerate_flags(cfg, visible_gpus, machine_rank) + [script_path(sd_scripts_dir)] + script_argv
    return Command(argv=argv, env=env)


def display(cmd: Command) -> str:
    """Shell text for the argv: one option per line with `\\` continuations; pastes back exactly.

    List values stay on their option's line. Secrets (cmd.env) are not shown: the caller says which
    environment variables carry them.
    """
    lines: list[list[str]] = [[]]
    for token in cmd.argv:
        if lines[-1] and (token.startswith("--") or token.endswith(".py")):
            lines.append([])
        lines[-1].append(token)
    return " \\\n    ".join(" ".join(shell_quote(t) for t in line) for line in lines)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_C_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e", "\\": "\\\\", "'": "\\'"}


def shell_quote(token: str) -> str:
    """shlex.quote, except that a token holding control characters (ESC, newline, ...) is written in bash's
    $'...' form with each one escaped: the printed text stays plain (a terminal or click would eat a raw ESC)
    and still pastes back to exactly this token."""
    if not _CONTROL.search(token):
        return shlex.quote(token)
    out = []
    for ch in token:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif _CONTROL.match(ch):
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"
