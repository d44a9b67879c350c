"""`loratrain run`: print the launch command (--dry-run) or check, record and launch one or more runs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional

import typer

from loratrain.commands._config import SD_SCRIPTS_HELP, STRICT_HELP, SetOption, fail_if_strict, launcher, load


@dataclass
class Outcome:
    config: str
    status: str  # succeeded / failed / interrupted / not started / skipped
    exit_code: int | None = None
    duration_s: float | None = None
    record: str = ""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _short(path) -> str:
    """A path relative to the current folder when it lies below it."""
    import os

    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


def _say(text: str) -> None:
    typer.echo(f"loratrain: {text}", err=True)


def _summary(outcomes: list[Outcome]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="loratrain run: summary", title_justify="left")
    for column in ("config", "status", "exit", "time", "record"):
        table.add_column(column)
    for o in outcomes:
        table.add_row(
            o.config, o.status, "-" if o.exit_code is None else str(o.exit_code), _duration(o.duration_s), o.record
        )
    Console(stderr=True, highlight=False).print(table)


def _dry_run(configs: list[str], as_json: bool, set_, sd_scripts, strict, machine_rank) -> int:
    # Light path: no preflight, no GPU scan through torch, no heavy import.
    from loratrain.commands._output import print_json
    from loratrain.launch import gpus as gpu_mod
    from loratrain.launch.gpus import total_processes
    from loratrain.render import build_command, display
    from loratrain.sdscripts import install as sdscripts

    documents = []
    for config in configs:
        loaded = load(config, set_, strict)
        cfg = loaded.config
        # The same folder, written the same way, as the launch; unlike it, no check that the folder exists.
        found = sdscripts.chosen(sd_scripts, cfg.sd_scripts)
        folder = str(found[1]) if found else None
        gpus = None
        if cfg.accelerate.num_processes == "auto":
            # As the real launch counts them: visible GPUs (CUDA_VISIBLE_DEVICES), gpu_ids, machines.
            scan = gpu_mod.scan_light()
            gpus = total_processes(cfg.accelerate.model_dump(), scan) if scan.gpus is not None else None
        cmd = build_command(cfg, folder, launcher(cfg), visible_gpus=gpus, machine_rank=machine_rank)
        if as_json:
            documents.append({"argv": cmd.argv, "warnings": [w.render() for w in loaded.warnings]})
            continue
        if len(configs) > 1:
            typer.echo(f"# {config}")
        typer.echo(display(cmd))
        if cmd.env:
            typer.echo("# secrets passed through the environment: " + ", ".join(sorted(cmd.env)), err=True)
    if as_json:
        print_json(documents[0] if len(documents) == 1 else documents)
    return 0


def register(app: typer.Typer) -> None:
    @app.command(
        "run", help="Check and launch training for one or more configs (in order), or print the command with --dry-run."
    )
    def run(
        configs: list[str] = typer.Argument(..., help="The runs' TOML files; several run one after another."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the command, shell-quoted, and launch nothing."),
        as_json: bool = typer.Option(False, "--json", help="With --dry-run: print {argv, warnings} as JSON."),
        set_: Optional[list[str]] = SetOption,
        sd_scripts: Optional[str] = typer.Option(None, "--sd-scripts", help=SD_SCRIPTS_HELP),
        strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
        machine_rank: Optional[int] = typer.Option(
            None, "--machine-rank", min=0, help="This machine's rank in a multi-machine run (0 = main)."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing <output_name> file in output_dir."),
        plain: bool = typer.Option(False, "--plain", help="Pass the training output through as is (no progress bar)."),
        no_preflight: bool = typer.Option(
            False, "--no-preflight", help="Skip the checks of files, GPUs and the training environment."
        ),
        keep_going: bool = typer.Option(False, "--keep-going", help="With several configs: go on after a failed run."),
        grace: float = typer.Option(
            30.0,
            "--grace",
            min=0.0,
            help="Seconds to wait after Ctrl-C/SIGTERM before escalating (SIGTERM, then SIGKILL).",
        ),
        on_nan: str = typer.Option(
            "stop",
            "--on-nan",
            help="When the loss becomes NaN or inf: stop the run (stop, the default) or warn and go on (warn).",
        ),
        stall_after: float = typer.Option(
            900.0,
            "--stall-after",
            min=0.0,
            help="Warn once when no progress line came for this many seconds (0: never).",
        ),
        resume: bool = typer.Option(
            False,
            "--resume",
            help="Resume from a state folder sd-scripts saved (save_state): "
            "`run CONFIG --resume [STATE_DIR]`, no folder = the newest one in output_dir. "
            "Passes --resume/--initial_step so all launches add up to the planned steps.",
        ),
    ) -> int:
        if on_nan not in ("stop", "warn"):
            from loratrain.errors import ConfigError, Problem

            raise ConfigError([Problem(f"--on-nan must be stop or warn, not {on_nan!r}", key="--on-nan", value=on_nan)])
        state_dir = None
        if resume:
            configs, state_dir = _split_state_dir(configs)
        if dry_run:
            if resume:
                set_ = list(set_ or []) + _resume_plan(configs[0], set_, strict, state_dir, quiet=True).set_overrides()
            return _dry_run(configs, as_json, set_, sd_scripts, strict, machine_rank)
        from loratrain.commands._output import print_problems
        from loratrain.errors import LoratrainError
        from loratrain.launch import prepare as launch

        opts = launch.LaunchOptions(
            sd_scripts=sd_scripts,
            force=force,
            preflight=not no_preflight,
            machine_rank=machine_rank,
            grace_s=grace,
            on_nan=on_nan,
            stall_s=stall_after or None,
        )
        if resume:
            opts.resume = _resume_plan(configs[0], set_, strict, state_dir)
            set_ = list(set_ or []) + opts.resume.set_overrides()

        def prepare(config: str, quiet: bool = False):
            if quiet:  # checked once already: do not repeat its warnings
                from loratrain.config.loader import load_config

                loaded = load_config(config, set_ or [])
            else:
                loaded = load(config, set_, strict)
            prepared = launch.prepare(loaded, opts)
            extra = [w for w in prepared.warnings if w not in loaded.warnings]
            fail_if_strict(extra, strict)
            if not quiet:
                print_problems(extra)
            return prepared

        single = len(configs) == 1
        if single:
            prepared = prepare(configs[0])
            result, rec = _launch(prepared, opts, plain)
            return _exit_code(result, rec)

        # A queue: check every config before the first launch, so a broken one is found now, not hours later.
        outcomes = [Outcome(config, "not started") for config in configs]
        ready: dict[int, bool] = {}
        for i, config in enumerate(configs):
            _say(f"checking {config}")
            try:
                prepare(config)
                ready[i] = True
            except LoratrainError as exc:
                from loratrain.commands._output import print_error

                print_error(exc)
                outcomes[i].status, outcomes[i].exit_code = "invalid", exc.exit_code
                ready[i] = False
        if not all(ready.values()) and not keep_going:
            _say("nothing was launched because a config has errors (--keep-going runs the others)")
            _summary(outcomes)
            return next(o.exit_code for o in outcomes if o.exit_code)
        first_failure = 0
        for i, config in enumerate(configs):
            if not ready[i]:
                first_failure = first_failure or outcomes[i].exit_code or 1
                continue
            _say(f"run {i + 1}/{len(configs)}: {config}")
            try:
                prepared = prepare(config, quiet=True)  # again: the runs before may have changed the outputs
                result, rec = _launch(prepared, opts, plain)
            except LoratrainError as exc:
                from loratrain.commands._output import print_error

                print_error(exc)
                outcomes[i].status, outcomes[i].exit_code = "invalid", exc.exit_code
                first_failure = first_failure or exc.exit_code
                if not keep_going:
                    break
                continue
            o = outcomes[i]
            o.exit_code, o.duration_s, o.record = result.exit_code, result.duration_s, _short(rec.folder)
            o.status = rec.data.get("status") or (
                "interrupted" if result.interrupted else ("succeeded" if result.exit_code == 0 else "failed")
            )
            if result.interrupted:
                first_failure = result.exit_code
                break  # the user or the scheduler wants everything to stop
            if _exit_code(result, rec) != 0:
                first_failure = first_failure or _exit_code(result, rec)
                if not keep_going:
                    break
        _summary(outcomes)
        return first_failure


def _split_state_dir(configs: list[str]) -> tuple[list[str], str | None]:
    """`run CONFIG --resume STATE_DIR`: a folder among the arguments is the state to resume from."""
    import os

    from loratrain.errors import ConfigError, Problem

    folders = [c for c in configs if os.path.isdir(c)]
    rest = [c for c in configs if c not in folders]
    if len(folders) > 1 or len(rest) != 1:
        raise ConfigError(
            [
                Problem(
                    "--resume takes one config and at most one state folder",
                    key="--resume",
                    value=" ".join(configs),
                    fix="loratrain run CONFIG --resume [STATE_DIR]",
                )
            ]
        )
    return rest, (folders[0] if folders else None)


def _resume_plan(config: str, set_, strict: bool, state_dir: str | None, quiet: bool = False):
    """Find the state, check it fits, and work out sd-scripts' resume arguments (see launch/resume.py)."""
    from pathlib import Path

    from loratrain.commands._config import load
    from loratrain.commands._output import print_problems
    from loratrain.launch import resume as resume_mod

    loaded = load(config, set_, strict)
    cfg = loaded.config
    args = cfg.script_args()
    output_dir = Path(args.get("output_dir") or ".")
    from loratrain.commands.plan import schedule_for

    sched = schedule_for(cfg, config)
    folder = Path(state_dir) if state_dir else resume_mod.newest_state(output_dir, args.get("output_name"))
    plan = resume_mod.plan_resume(folder, cfg.model_dump(mode="json", exclude_none=True), sched, output_dir, config)
    if not quiet:
        _say(
            f"resuming from {_short(plan.state_dir)} at step {plan.cumulative_step} of {plan.total_steps} "
            f"({plan.source}); this launch trains steps {plan.start_step + 1}-{plan.predicted_total}"
        )
    print_problems(plan.warnings)
    return plan


def _say_failure(failure) -> None:
    if failure:
        from loratrain.launch.failures import Diagnosis

        d = Diagnosis(failure["cause_id"], failure["cause"], failure["fix"], failure["evidence"], failure["last_lines"])
        for line in d.render():
            _say(line)


def _exit_code(result, rec) -> int:
    """The run's exit status, except that a run recorded as failed (exit 0 without training) is a runtime failure."""
    from loratrain.errors import EXIT_RUNTIME

    if result.exit_code == 0 and rec.data.get("status") == "failed":
        return EXIT_RUNTIME
    return result.exit_code


def _launch(prepared, opts, plain: bool):
    from loratrain.launch import prepare as launch
    from loratrain.launch import runner

    sink: runner.OutputSink
    if plain or not sys.stdout.isatty():
        sink = runner.PassThrough()
    else:
        from loratrain.launch.progress import ProgressDisplay

        sink = ProgressDisplay()

    def on_signal(sig, action):
        _say(action)

    from loratrain.render import display

    def on_event(event):
        _say(f"warning: {event['message']}")
        _say(f"  {event['advice']}")

    result, rec = launch.run_prepared(
        prepared,
        opts,
        sink=sink,
        on_signal=on_signal,
        on_event=on_event,
        on_launch=lambda: _say("launching:\n" + display(prepared.command)),
    )
    if result.stopped_by:
        _say(
            f"stopped by loratrain ({result.stopped_by}) after {_duration(result.duration_s)}; "
            "the files saved before that step are the last good ones"
        )
    elif result.interrupted:
        _say(f"interrupted; stopped after {_duration(result.duration_s)} (exit {result.exit_code})")
    elif result.exit_code == 0 and rec.data.get("status") == "failed":
        _say(f"training ended with exit status 0 after {_duration(result.duration_s)} but did not train")
        _say_failure(rec.data.get("failure"))
    elif result.exit_code == 0:
        target = prepared.output_file()
        saved = f"; saved {_short(target)}" if target is not None and target.exists() else ""
        _say(f"finished in {_duration(result.duration_s)}{saved}")
    else:
        _say(f"training failed with exit code {result.exit_code} after {_duration(result.duration_s)}")
        _say_failure(rec.data.get("failure"))
    _say(f"log: {_short(rec.log_path)}")
    _say(f"record: {_short(rec.folder / 'record.json')}")
    return result, rec
