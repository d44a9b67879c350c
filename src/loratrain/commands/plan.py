"""`loratrain plan CONFIG`: dataset, buckets, steps/epochs, saves, samples and prompt checks before training."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from loratrain.commands._config import STRICT_HELP, SetOption
from loratrain.errors import EXIT_CONFIG, EXIT_OK

# The progress bar appears only when the scan has already taken this long.
PROGRESS_AFTER_S = 0.4


def register(app: typer.Typer) -> None:
    @app.command(
        "plan",
        help="Scan the dataset and show how sd-scripts will bucket it, how many steps and epochs "
        "the run takes, when it saves and samples, and whether every sample prompt fits. "
        "Exit 0, or 2 when sd-scripts would fail or cut something.",
    )
    def plan(
        config: str = typer.Argument(..., help="The run's TOML file, or a sweep folder (all its runs)."),
        set_: Optional[list[str]] = SetOption,
        strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
        resume: bool = typer.Option(
            False,
            "--resume",
            help="Show what `run CONFIG --resume [STATE_DIR]` would train: the "
            "state it starts from and the steps, epochs, saves and samples still to come.",
        ),
        state_dir: Optional[str] = typer.Argument(
            None, help="With --resume: the state folder (default: the newest).", show_default=False
        ),
    ) -> int:
        from loratrain.commands._config import effective, load
        from loratrain.commands._output import print_json, print_problems
        from loratrain.config.placement import place_problems
        from loratrain.plan.planner import build_plan

        if _sweep_folder(config):
            from loratrain.commands.sweep import plan_sweep

            return plan_sweep(Path(config), set_, as_json)
        loaded = load(config, set_, strict)
        cfg = loaded.config
        view = effective(cfg)
        note = _uncounted(view)
        with _ProgressBar() as bar:
            report = build_plan(view, progress=bar.update, config_file=config)
        if note:
            report.problems.insert(0, note)
        # The same placement as check: file:line: table.key.
        report.problems = place_problems(report.problems, loaded.path, loaded.lines)
        report.data["problems"] = [p.as_dict() for p in report.problems]
        if resume:
            report.data["resume"] = _resume_section(cfg, config, report.data, state_dir)
        elif state_dir:
            from loratrain.errors import ConfigError, Problem

            raise ConfigError([Problem(f"unexpected argument {state_dir!r}", fix="a state folder goes with --resume")])
        if as_json:
            print_json(report.data)
        else:
            from loratrain.commands._plan_view import show_plan

            show_plan(report.data)
            if resume:
                _show_resume(report.data["resume"])

            from loratrain.commands._output import verdict_line

            line = verdict_line(view)
            if line:
                typer.echo(line)
        print_problems(report.problems)
        return EXIT_CONFIG if report.errors else EXIT_OK


def _sweep_folder(config: str) -> bool:
    from loratrain.sweep.record import is_sweep

    return is_sweep(Path(config))


def _resume_section(cfg: Any, config: str, data: dict, state_dir: str | None) -> dict:
    """What a resumed launch would do, from the same plan (see launch/resume.py)."""
    from pathlib import Path

    from loratrain.commands._output import print_problems
    from loratrain.errors import ConfigError, Problem
    from loratrain.launch import resume as resume_mod

    if not data.get("steps_per_epoch"):
        raise ConfigError([Problem("cannot plan a resume: the dataset has no batches", key="--resume")])
    args = cfg.script_args()
    output_dir = Path(args.get("output_dir") or ".")
    sched = resume_mod.schedule_from_plan(data)
    folder = Path(state_dir) if state_dir else resume_mod.newest_state(output_dir, args.get("output_name"))
    rplan = resume_mod.plan_resume(folder, cfg.model_dump(mode="json", exclude_none=True), sched, output_dir, config)
    print_problems(rplan.warnings)
    start = rplan.start_step
    spe = sched.steps_per_epoch
    return {
        **rplan.as_record(),
        "remaining_steps": max(0, rplan.predicted_total - start),
        "remaining_epochs": max(0, sched.epochs - rplan.launch.epoch_to_start),
        "epoch_of_start": start // spe + 1,
        "remaining_saves": resume_mod.remaining_events(data.get("saves") or [], start),
        "remaining_samples": resume_mod.remaining_events(data.get("samples") or [], start),
        "arguments": rplan.set_overrides(),
        "warnings": [w.render() for w in rplan.warnings],
    }


def _show_resume(r: dict) -> None:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False)
    console.print(f"[bold]Resume[/bold] from {r['state_dir']} ({r['cumulative_source']})")
    console.print(f"  state at step       {r['cumulative_step']} of {r['planned_total']}")
    console.print(
        f"  this launch         steps {r['start_step'] + 1}-{r['predicted_total']}: {r['remaining_steps']} steps, "
        f"epochs {r['epoch_to_start']}-{r['epoch_to_start'] + r['remaining_epochs'] - 1} ({r['remaining_epochs']} left)"
    )
    if r["repeated_steps"]:
        console.print(
            f"  trained again       {r['repeated_steps']} steps (the start of epoch {r['epoch_to_start']} is repeated)"
        )
    saves = [s["step"] for s in r["remaining_saves"]]
    samples = [s["step"] for s in r["remaining_samples"]]
    console.print(f"  saves still to come {', '.join(map(str, saves)) if saves else 'none'}")
    console.print(f"  samples to come     {', '.join(map(str, samples)) if samples else 'none'}")
    console.print(
        f"  sd-scripts gets     --resume {r['state_dir']} --initial_step {r['initial_step']}"
        + (" --skip_until_initial_step" if r["skip_until_initial_step"] else "")
    )


def schedule_for(cfg: Any, config_file: str = ""):
    """The plan's step schedule for resuming (launch.resume.Schedule); ConfigError when there is none."""
    from loratrain.commands._config import effective
    from loratrain.errors import ConfigError, Problem
    from loratrain.launch.resume import schedule_from_plan
    from loratrain.plan.planner import build_plan

    report = build_plan(effective(cfg), config_file=config_file)
    if not report.data.get("steps_per_epoch"):
        raise ConfigError(
            [
                Problem(
                    "cannot work out the steps to resume: the dataset has no batches",
                    key="--resume",
                    fix="run `loratrain plan CONFIG` to see why",
                )
            ]
        )
    return schedule_from_plan(report.data)


def _uncounted(view: Any):
    """The warning for "auto" processes on a machine whose GPUs could not be counted (the plan assumes 1)."""
    from loratrain.errors import Problem

    if view.processes.total is not None:
        return None
    return Problem(
        'num_processes = "auto" but no GPU could be counted here; the plan assumes 1 process',
        key="accelerate.num_processes",
        severity="warning",
        fix="set a number to plan for it",
    )


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
            self.progress = Progress(
                TextColumn("scanning images"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("scan", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
