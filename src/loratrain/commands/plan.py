"""`loratrain plan CONFIG`: dataset, buckets, steps/epochs, saves, samples and prompt checks before training."""

from __future__ import annotations

import time
from typing import Any, Optional

import typer

from loratrain.commands._config import SetOption
from loratrain.errors import EXIT_CONFIG, EXIT_OK

# The progress bar appears only when the scan has already taken this long.
PROGRESS_AFTER_S = 0.4


def register(app: typer.Typer) -> None:
    @app.command("plan", help="Scan the dataset and show how sd-scripts will bucket it, how many steps and epochs "
                              "the run takes, when it saves and samples, and whether every sample prompt fits. "
                              "Exit 0, or 2 when sd-scripts would fail or cut something.")
    def plan(
        config: str = typer.Argument(..., help="The run's TOML file."),
        set_: Optional[list[str]] = SetOption,
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    ) -> int:
        from loratrain.commands._config import load
        from loratrain.commands._output import print_json, print_problems
        from loratrain.plan.planner import build_plan

        loaded = load(config, set_)
        cfg = loaded.config
        processes, note = _processes(cfg)
        with _ProgressBar() as bar:
            report = build_plan(cfg.script_args(), num_processes=processes, progress=bar.update, config_file=config)
        if note:
            report.problems.insert(0, note)
            report.data["problems"].insert(0, {"severity": "warning", "message": note.message, "key": note.key,
                                               "file": note.file, "line": None, "fix": note.fix})
        if as_json:
            print_json(report.data)
        else:
            from loratrain.commands._plan_view import show_plan

            show_plan(report.data)
        print_problems(report.problems)
        return EXIT_CONFIG if report.errors else EXIT_OK


def _processes(cfg: Any):
    """Training processes for the arithmetic, counted as `run` counts them (CUDA_VISIBLE_DEVICES, gpu_ids and
    num_machines included); 1 with a warning when "auto" meets no countable GPU."""
    from loratrain.launch import gpus
    from loratrain.errors import Problem
    from loratrain.launch.gpus import total_processes

    accelerate = cfg.accelerate.model_dump()
    if accelerate.get("num_processes") != "auto":  # unset or a number: no need to wait for nvidia-smi
        return total_processes(accelerate, gpus.GpuScan(None, "none", "not scanned")), None
    scan = gpus.scan_light()
    # total_processes() cannot resolve "auto" without a GPU list (run.py guards the same way).
    total = total_processes(accelerate, scan) if scan.gpus is not None else None
    if total:
        return total, None
    return 1, Problem('num_processes = "auto" but no GPU could be counted here; the plan assumes 1 process',
                      key="accelerate.num_processes", severity="warning", fix="set a number to plan for it")


class _ProgressBar:
    """A rich progress bar on stderr that shows up only when the scan takes more than a moment."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.progress: Any = None
        self.task = None

    def __enter__(self) -> "_ProgressBar":
        return self

    def update(self, done: int, total: int) -> None:
        if self.progress is None:
            if time.monotonic() - self.start < PROGRESS_AFTER_S:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            if not console.is_terminal:
                self.start = float("inf")  # never: keep logs and pipes clean
                return
            self.progress = Progress(TextColumn("scanning images"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), console=console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("scan", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
