"""An sbatch script for a multi-machine run: one `accelerate launch` per node, started by srun.

No launcher of our own: SLURM gives each node's task its rank ($SLURM_NODEID, one task per node) and
the job's first host is the main process address; accelerate's own multi-node launch does the rest.
The per-node command is a fixed `bash -c` body that reads those variables at run time, followed by
the launch options and training arguments as separate, shell-quoted words, so no value is ever
re-parsed by a shell.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from loratrain.effective import Effective
from loratrain.errors import ConfigError, Problem
from loratrain.launch.record import is_secret_env

# accelerate launch options that differ per node or per job; the script supplies them itself.
PER_NODE_OPTIONS = ("machine_rank", "main_process_ip", "main_process_port")
LAUNCH_MODULE = "accelerate.commands.launch"
DEFAULT_PORT = 29500

_NODE_BODY = (
    'exec "$LORATRAIN_PYTHON" -m accelerate.commands.launch '
    '--machine_rank "$SLURM_NODEID" --main_process_ip "$MAIN_PROCESS_IP" --main_process_port "$MAIN_PROCESS_PORT" "$@"'
)


def _option_name(item: str) -> str:
    return item[2:].split("=", 1)[0].replace("-", "_")


def split_launch(argv: Sequence[str], script_name: str) -> tuple[list[str], list[str]]:
    """(accelerate launch options, [script, script args...]) of a rendered launch command."""
    argv = list(argv)
    try:
        start = argv.index(LAUNCH_MODULE) + 1
    except ValueError:
        start = argv.index("launch") + 1 if "launch" in argv else 0
    for i in range(start, len(argv)):
        if argv[i].endswith(script_name):
            return argv[start:i], argv[i:]
    raise ValueError(f"{script_name} is not in the command")


def drop_options(options: Sequence[str], names: Sequence[str]) -> list[str]:
    """Remove `--name value` and `--name=value` for each name (hyphen or underscore spelling)."""
    out: list[str] = []
    skip = False
    for item in options:
        if skip:
            skip = False
            continue
        if item.startswith("--") and _option_name(item) in names:
            skip = "=" not in item
            continue
        out.append(item)
    return out


@dataclass
class SlurmJob:
    python: str  # the training interpreter on the nodes
    options: list[str]  # accelerate launch options common to all nodes
    script_argv: list[str]  # training script and its arguments
    nodes: int
    cwd: str
    job_name: str = "loratrain"
    gpus_per_node: int | None = None
    port: int = DEFAULT_PORT
    partition: str | None = None
    time: str | None = None
    sbatch_extra: list[str] = field(default_factory=list)  # further #SBATCH lines, e.g. "--account=abc"
    env: Mapping[str, str] = field(default_factory=dict)
    source: str = ""  # the config file, for the header


def node_argv(job: SlurmJob, rank: int, main_ip: str) -> list[str]:
    """The exact argv the script runs on the node with `rank` (what the bash body expands to)."""
    return [
        job.python,
        "-m",
        LAUNCH_MODULE,
        "--machine_rank",
        str(rank),
        "--main_process_ip",
        main_ip,
        "--main_process_port",
        str(job.port),
        *job.options,
        *job.script_argv,
    ]


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def unsafe_fields(job: SlurmJob, options: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(where, value) of each text holding a control character (newline, CR, ESC, NUL, ...). Everything in a
    job ends up in the script, where bash would run a newline's second half as a command, so none may have one.
    `options` names the command-line option each SlurmJob field came from, for the message."""
    options = options or {}
    found = []
    for name in ("python", "cwd", "job_name", "partition", "time", "source"):
        value = getattr(job, name)
        if isinstance(value, str) and CONTROL.search(value):
            found.append((options.get(name, name), value))
    for name in ("options", "script_argv", "sbatch_extra"):
        for value in getattr(job, name):
            if CONTROL.search(value):
                found.append((options.get(name, name), value))
    for key, value in job.env.items():
        if CONTROL.search(key) or CONTROL.search(value):
            found.append((f"environment {key}", value))
    return found


def render(job: SlurmJob) -> str:
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={q(job.job_name)}",
        f"#SBATCH --nodes={job.nodes}",
        "#SBATCH --ntasks-per-node=1",
    ]
    if job.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={job.gpus_per_node}")
    if job.partition:
        lines.append(f"#SBATCH --partition={q(job.partition)}")
    if job.time:
        lines.append(f"#SBATCH --time={q(job.time)}")
    lines.append(f"#SBATCH --output={q(job.job_name)}-%j.out")
    lines += [f"#SBATCH {extra}" for extra in job.sbatch_extra]
    lines += [
        f"# Made by `loratrain slurm`{' from ' + job.source if job.source else ''}. Submit with: sbatch THIS_FILE",
        "# One task per node; each starts accelerate with its own machine rank, and accelerate starts one",
        "# training process per GPU. The first host of the job is the main process.",
        "# The nodes run accelerate directly: run `loratrain check CONFIG` before submitting.",
        "set -euo pipefail",
        f"cd {q(job.cwd)}",
        f"export LORATRAIN_PYTHON={q(job.python)}",
        'export MAIN_PROCESS_IP="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"',
        f"export MAIN_PROCESS_PORT={job.port}",
    ]
    for name in sorted(job.env):
        if is_secret_env(name):
            lines.append(f': "${{{name}:?export {name} before sbatch; secrets are never written into the script}}"')
            lines.append(f"export {name}")
        else:
            lines.append(f"export {name}={q(job.env[name])}")
    words = [q(w) for w in [*job.options, *job.script_argv]]
    lines.append(f"srun --nodes={job.nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 \\")
    lines.append(f"  bash -c {q(_NODE_BODY)} loratrain-node \\")
    lines.append("  " + " \\\n  ".join(words))
    return "\n".join(lines) + "\n"


def _config_problem(message: str, config: str, fix: str) -> ConfigError:
    return ConfigError([Problem(message, key="accelerate.num_processes", file=config, fix=fix)])


def job_processes(view: Effective, gpus_per_node: int | None, config: str) -> tuple[int, int]:
    """(processes over all nodes, processes per node) of a SLURM job for this run's effective view.

    `view` must be built with `visible_gpus=gpus_per_node` (each node's GPUs, as "auto" counts them there).
    "auto" needs --gpus-per-node (the login node cannot count the compute nodes' GPUs); unset num_processes
    takes --gpus-per-node x nodes; a number must agree with --gpus-per-node and divide by the nodes.
    ConfigError otherwise."""
    p = view.processes
    if p.auto and gpus_per_node is None:
        raise _config_problem(
            'num_processes = "auto" cannot be counted from the login node',
            config,
            "pass --gpus-per-node N (or set num_processes to the total over all nodes)",
        )
    if p.requested is None:
        total = (gpus_per_node or 1) * p.machines
        return total, gpus_per_node or total // p.machines
    total = p.total_or_one()
    if gpus_per_node is not None and total != gpus_per_node * p.machines:
        raise _config_problem(
            f"num_processes {total} is not --gpus-per-node {gpus_per_node} x {p.machines} node(s)",
            config,
            f"set num_processes = {gpus_per_node * p.machines} or drop --gpus-per-node",
        )
    if total % p.machines:
        raise _config_problem(
            f"num_processes {total} (the total over all nodes) does not divide by {p.machines} node(s)",
            config,
            "use the same number of GPUs on every node",
        )
    return total, gpus_per_node or total // p.machines


def _control_problem(what: str, value: str, file: str) -> Problem:
    return Problem(
        f"{what} {value!r} holds a control character (newline, tab, ESC, ...), which bash would read as a line "
        "break or command in the script",
        file=file,
        fix="remove it",
    )


def refuse_control_characters(given: Sequence[tuple[str, str | None]]) -> None:
    """ConfigError naming each command-line option whose value holds a control character."""
    bad = [(name, value) for name, value in given if value is not None and CONTROL.search(value)]
    if bad:
        raise ConfigError([_control_problem(name, value, name) for name, value in bad])


# Where each field of a SlurmJob comes from, for the messages of refuse_unsafe_job.
JOB_FIELD_SOURCES = {
    "partition": "--partition",
    "time": "--time",
    "job_name": "--job-name",
    "sbatch_extra": "--sbatch",
    "script_argv": "the config's arguments",
    "options": "the config's [accelerate] options",
    "python": "python",
    "cwd": "the current folder",
    "source": "the config's path",
}


def refuse_unsafe_job(job: SlurmJob, config: str) -> None:
    """ConfigError for each field of the job that would break the script (see unsafe_fields)."""
    bad = unsafe_fields(job, JOB_FIELD_SOURCES)
    if bad:
        raise ConfigError([_control_problem(f"{where}:", value, config) for where, value in bad])


def job_overrides(raw: Mapping[str, object], port: int | None) -> list[str]:
    """`--set` overrides a SLURM job adds: placeholders for the main address and port the script fills in from
    the job (so the config need not name them), unless the config writes them (or --port is given)."""
    accelerate = raw.get("accelerate")
    written = accelerate if isinstance(accelerate, dict) else {}
    out = []
    if "main_process_ip" not in written:
        out.append('accelerate.main_process_ip="first-host-of-the-job"')
    if "main_process_port" not in written or port is not None:
        out.append(f"accelerate.main_process_port={port or DEFAULT_PORT}")
    return out
