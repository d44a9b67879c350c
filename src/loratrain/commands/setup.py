"""`loratrain setup [DIR]`: clone sd-scripts at a known commit and install what training needs."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("setup")
    def setup(
        directory: Path = typer.Argument(
            Path("sd-scripts"), help="Where to put sd-scripts (a new folder, or an earlier checkout)."
        ),
        ref: str = typer.Option(
            None,
            "--ref",
            help="Commit, tag or branch to check out. Default: the commit loratrain's flag table was read from.",
        ),
        python: str = typer.Option(
            None,
            "--python",
            help="Interpreter of the training environment to install into. Default: the one running loratrain.",
        ),
        repo: str = typer.Option(
            None, "--repo", help="Repository to clone. Default: https://github.com/kohya-ss/sd-scripts.git"
        ),
        no_install: bool = typer.Option(False, "--no-install", help="Only clone and check out; install nothing."),
    ) -> int:
        """Install sd-scripts: clone it, check out the known commit, pip-install its requirements and LyCORIS."""
        from loratrain.sdscripts import flags
        from loratrain.sdscripts import install as sdscripts

        interpreter = python or sys.executable
        target = directory.expanduser().resolve()
        steps = sdscripts.setup_steps(
            target, ref or flags.source_commit(), interpreter, repo or sdscripts.DEFAULT_REPO, install=not no_install
        )
        total = len(steps)

        def show(number: int, step: sdscripts.Step) -> None:
            typer.echo(f"[{number}/{total}] {step.title}", err=True)
            typer.echo(f"      $ {' '.join(step.argv)}", err=True)

        sdscripts.run_steps(steps, show)
        commit = sdscripts.read_commit(target) or "unknown"
        typer.echo(f"sd-scripts {commit[:12]} is ready in {target}", err=True)
        if commit != flags.source_commit():
            typer.echo(
                f"note: loratrain's flag table is from {flags.source_commit()[:7]}; "
                "`loratrain check --verify-parser CONFIG` tests a config against this commit",
                err=True,
            )
        env = sdscripts.probe(interpreter, target, ())
        if not env.versions.get("torch"):
            typer.echo(
                f"note: torch is not installed in {interpreter}; install the build for your CUDA version "
                "(https://pytorch.org/get-started/locally/)",
                err=True,
            )
        typer.echo(
            f'Use it with: sd_scripts = "{target}" in the config, --sd-scripts {target}, or LORATRAIN_SD_SCRIPTS={target}'
        )
        if python:
            typer.echo(f'and python = "{interpreter}" in the config')
        return 0
