"""`loratrain run`: render the launch command; print it (--dry-run) or launch it."""

from __future__ import annotations

from typing import Optional

import typer

from loratrain.commands._config import SD_SCRIPTS_HELP, STRICT_HELP, SetOption, launcher, load, sd_scripts_dir


def register(app: typer.Typer) -> None:
    @app.command("run", help="Launch training for a config (or print the command with --dry-run).")
    def run(
        config: str = typer.Argument(..., help="The run's TOML file."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the command, shell-quoted, and launch nothing."),
        as_json: bool = typer.Option(False, "--json", help="With --dry-run: print {argv, warnings} as JSON."),
        set_: Optional[list[str]] = SetOption,
        sd_scripts: Optional[str] = typer.Option(None, "--sd-scripts", help=SD_SCRIPTS_HELP),
        strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
        machine_rank: Optional[int] = typer.Option(None, "--machine-rank", help="This node's rank (multi-node)."),
    ) -> int:
        from loratrain.commands._config import visible_gpus
        from loratrain.commands._output import print_json
        from loratrain.errors import ConfigError, Problem
        from loratrain.render import build_command, display

        loaded = load(config, set_, strict)
        cfg = loaded.config
        folder = sd_scripts_dir(sd_scripts, cfg)
        gpus = visible_gpus() if cfg.accelerate.num_processes == "auto" else None
        cmd = build_command(cfg, folder, launcher(cfg), visible_gpus=gpus, machine_rank=machine_rank)
        if dry_run:
            if as_json:
                print_json({"argv": cmd.argv, "warnings": [w.render() for w in loaded.warnings]})
            else:
                typer.echo(display(cmd))
                if cmd.env:
                    typer.echo("# secrets passed through the environment: " + ", ".join(sorted(cmd.env)), err=True)
            return 0
        if not folder:
            raise ConfigError([Problem("the sd-scripts folder is unknown", key="sd_scripts", file=config,
                                       fix="set sd_scripts in the config, LORATRAIN_SD_SCRIPTS, or --sd-scripts")])
        if cfg.accelerate.num_processes == "auto" and gpus is None:
            raise ConfigError([Problem("num_processes = \"auto\" but no GPU could be counted (nvidia-smi -L)",
                                       key="accelerate.num_processes", file=config)])
        import os
        import subprocess

        env = {**os.environ, **cmd.env}
        try:
            return subprocess.call(cmd.argv, env=env)
        except FileNotFoundError as exc:
            from loratrain.errors import RuntimeFailure

            raise RuntimeFailure(f"cannot start {cmd.argv[0]!r}: {exc.strerror}") from None
