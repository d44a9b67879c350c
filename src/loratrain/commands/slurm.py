"""`loratrain slurm CONFIG`: print an sbatch script for a multi-machine run."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from loratrain.commands._config import STRICT_HELP, SetOption


def register(app: typer.Typer) -> None:
    @app.command("slurm")
    def slurm_command(
        config: Path = typer.Argument(..., help="The run's TOML config."),
        nodes: Optional[int] = typer.Option(
            None, "--nodes", min=1, help="Machines to use. Default: accelerate.num_machines of the config."
        ),
        gpus_per_node: Optional[int] = typer.Option(
            None, "--gpus-per-node", min=1, help="GPUs per machine. Default: num_processes / nodes."
        ),
        partition: Optional[str] = typer.Option(None, "--partition", help="SLURM partition (#SBATCH --partition)."),
        time: Optional[str] = typer.Option(None, "--time", help="Time limit, e.g. 12:00:00 (#SBATCH --time)."),
        job_name: Optional[str] = typer.Option(
            None, "--job-name", help="Job name. Default: the config's output_name or file name."
        ),
        port: Optional[int] = typer.Option(
            None,
            "--port",
            min=1,
            max=65535,
            help="Port of the main process. Default: accelerate.main_process_port or 29500.",
        ),
        sbatch: List[str] = typer.Option(
            [], "--sbatch", help="Another #SBATCH option, e.g. --sbatch=--account=abc (repeatable)."
        ),
        sd_scripts: Optional[str] = typer.Option(None, "--sd-scripts", help="sd-scripts folder as the nodes see it."),
        set_: Optional[List[str]] = SetOption,
        strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
        python: Optional[str] = typer.Option(
            None, "--python", help="The training interpreter as the nodes see it (else the config's `python`)."
        ),
    ) -> int:
        """Print an sbatch script that runs `accelerate launch` on every node (rank and main address from SLURM)."""
        from loratrain.commands._config import load
        from loratrain.config.loader import read_toml
        from loratrain.effective import Effective
        from loratrain.errors import ConfigError, Problem
        from loratrain.launch import prepare as launch
        from loratrain.launch import slurm
        from loratrain.render import build_command
        from loratrain.sdscripts import install as sdscripts

        given = [
            ("--partition", partition),
            ("--time", time),
            ("--job-name", job_name),
            ("--sd-scripts", sd_scripts),
            ("--python", python),
            *(("--sbatch", item) for item in sbatch),
        ]
        unsafe = [(name, value) for name, value in given if value is not None and slurm.CONTROL.search(value)]
        if unsafe:
            raise ConfigError(
                [
                    Problem(
                        f"{name} {value!r} holds a control character (newline, tab, ESC, ...), which "
                        "bash would read as a line break or command in the script",
                        file=name,
                        fix="remove it",
                    )
                    for name, value in unsafe
                ]
            )
        # Each node's rank and the main address come from the job, so the config need not name them;
        # placeholders satisfy validation and are dropped from the rendered command below.
        raw, _ = read_toml(config)
        written = raw.get("accelerate", {}) if isinstance(raw.get("accelerate"), dict) else {}
        overrides = []
        if "main_process_ip" not in written:
            overrides.append('accelerate.main_process_ip="first-host-of-the-job"')
        if "main_process_port" not in written or port is not None:
            overrides.append(f"accelerate.main_process_port={port or slurm.DEFAULT_PORT}")
        overrides += list(set_ or [])
        if nodes is not None:
            overrides.append(f"accelerate.num_machines={nodes}")
        loaded = load(str(config), overrides, strict)
        cfg = loaded.config
        acc = cfg.accelerate
        view = Effective.from_config(cfg, visible_gpus=gpus_per_node)
        total, per_node = slurm.job_processes(view, gpus_per_node, str(config))
        machines = view.processes.machines
        python = python or launch.training_python(cfg)
        folder = sdscripts.locate(sd_scripts, cfg.sd_scripts)
        command = build_command(cfg, str(folder), launcher=launch.launcher(python), visible_gpus=total)
        options, script_argv = slurm.split_launch(command.argv, sdscripts.SCRIPT_NAME)
        options = slurm.drop_options(options, slurm.PER_NODE_OPTIONS)
        name = job_name or cfg.script_args().get("output_name") or config.stem
        job = slurm.SlurmJob(
            python=python,
            options=options,
            script_argv=script_argv,
            nodes=machines,
            cwd=str(Path.cwd()),
            job_name=str(name),
            gpus_per_node=per_node,
            port=port or acc.main_process_port or slurm.DEFAULT_PORT,
            partition=partition,
            time=time,
            sbatch_extra=list(sbatch),
            env=dict(command.env),
            source=str(config),
        )
        unsafe = slurm.unsafe_fields(
            job,
            {
                "partition": "--partition",
                "time": "--time",
                "job_name": "--job-name",
                "sbatch_extra": "--sbatch",
                "script_argv": "the config's arguments",
                "options": "the config's [accelerate] options",
                "python": "python",
                "cwd": "the current folder",
                "source": "the config's path",
            },
        )
        if unsafe:
            raise ConfigError(
                [
                    Problem(
                        f"{where}: {value!r} holds a control character (newline, tab, ESC, ...), which "
                        "bash would read as a line break or command in the script",
                        file=str(config),
                        fix="remove it",
                    )
                    for where, value in unsafe
                ]
            )
        typer.echo(slurm.render(job), nl=False)
        return 0
