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
        from loratrain.launch import prepare as launch
        from loratrain.launch import slurm
        from loratrain.render import build_command
        from loratrain.sdscripts import install as sdscripts

        given = {"--partition": partition, "--time": time, "--job-name": job_name, "--sd-scripts": sd_scripts}
        slurm.refuse_control_characters([*given.items(), ("--python", python), *(("--sbatch", i) for i in sbatch)])
        # Each node's rank and the main address come from the job; placeholders satisfy validation.
        raw, _ = read_toml(config)
        overrides = slurm.job_overrides(raw, port) + list(set_ or [])
        if nodes is not None:  # --nodes wins over a --set of the same key
            overrides.append(f"accelerate.num_machines={nodes}")
        loaded = load(str(config), overrides, strict)
        cfg = loaded.config
        view = Effective.from_config(cfg, visible_gpus=gpus_per_node)
        total, per_node = slurm.job_processes(view, gpus_per_node, str(config))
        python = python or launch.training_python(cfg)
        folder = sdscripts.locate(sd_scripts, cfg.sd_scripts)
        command = build_command(cfg, str(folder), launcher=launch.launcher(python), visible_gpus=total)
        options, script_argv = slurm.split_launch(command.argv, sdscripts.SCRIPT_NAME)
        job = slurm.SlurmJob(
            python=python,
            options=slurm.drop_options(options, slurm.PER_NODE_OPTIONS),
            script_argv=script_argv,
            nodes=view.processes.machines,
            cwd=str(Path.cwd()),
            job_name=str(job_name or cfg.script_args().get("output_name") or config.stem),
            gpus_per_node=per_node,
            port=port or cfg.accelerate.main_process_port or slurm.DEFAULT_PORT,
            partition=partition,
            time=time,
            sbatch_extra=list(sbatch),
            env=dict(command.env),
            source=str(config),
        )
        slurm.refuse_unsafe_job(job, str(config))
        typer.echo(slurm.render(job), nl=False)
        return 0
