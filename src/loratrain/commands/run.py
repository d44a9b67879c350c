"""`loratrain run`: print the launch command (--dry-run) or check, record and launch one or more runs."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from loratrain.commands._config import SD_SCRIPTS_HELP, STRICT_HELP, SetOption, fail_if_strict, launcher, load
from loratrain.commands._output import duration as _duration
from loratrain.commands._output import short_path as _short
from loratrain.launch.detach import SUPERVISED


def _say(text: str) -> None:
    typer.echo(f"loratrain: {text}", err=True)


def _summary(outcomes) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="loratrain run: summary", title_justify="left")
    for column in ("config", "status", "exit", "time", "record"):
        table.add_column(column)
    for o in outcomes:
        record = _short(o.record) if o.record is not None else ""
        table.add_row(
            o.config, o.status, "-" if o.exit_code is None else str(o.exit_code), _duration(o.duration_s), record
        )
    Console(stderr=True, highlight=False).print(table)


def _dry_run(configs: list[str], as_json: bool, set_, sd_scripts, strict, machine_rank) -> int:
    # Light path: no preflight, no GPU scan through torch, no heavy import.
    from loratrain.commands._config import effective
    from loratrain.commands._output import print_json
    from loratrain.render import build_command, display
    from loratrain.sdscripts import install as sdscripts

    documents = []
    for config in configs:
        loaded = load(config, set_, strict)
        cfg = loaded.config
        # The same folder, written the same way, as the launch; unlike it, no check that the folder exists.
        found = sdscripts.chosen(sd_scripts, cfg.sd_scripts)
        folder = str(found[1]) if found else None
        # As the real launch counts them: visible GPUs (CUDA_VISIBLE_DEVICES), gpu_ids, machines; where no GPU
        # could be counted here the command keeps the visible placeholder, as the launch would refuse "auto".
        view = effective(cfg)
        gpus = view.processes.total if view.processes.auto and view.visible_gpus is not None else None
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
        as_json: bool = typer.Option(
            False,
            "--json",
            help="With --dry-run: print {argv, warnings} as JSON; with --detach: {run_id, record, pid, log}.",
        ),
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
        detach: bool = typer.Option(
            False,
            "--detach",
            help="Start the run (or the queue) in the background, immune to the terminal hanging up; print its run id "
            "and the commands to follow (logs, attach), list (runs) and stop it.",
        ),
        notify: Optional[str] = typer.Option(
            None,
            "--notify",
            metavar="URL",
            help="POST a small JSON (run id, event, status, step, loss, cause of a failure) to this http(s) URL on "
            "start, on each save and at the end; best effort.",
        ),
        on_exit: Optional[str] = typer.Option(
            None,
            "--on-exit",
            metavar="CMD",
            help="Run this shell command when a run ends, with its facts in LORATRAIN_* environment variables "
            "(RUN_ID, STATUS, EXIT_CODE, STEP, TOTAL_STEPS, LOSS, CAUSE, RECORD, LOG, OUTPUT); best effort.",
        ),
        supervised: bool = typer.Option(False, SUPERVISED, hidden=True),
    ) -> int:
        from loratrain.launch.hooks import check_notify_url

        check_notify_url(notify)
        if on_nan not in ("stop", "warn"):
            from loratrain.errors import ConfigError, Problem

            raise ConfigError([Problem(f"--on-nan must be stop or warn, not {on_nan!r}", key="--on-nan", value=on_nan)])
        if as_json and not (dry_run or detach):
            from loratrain.errors import ConfigError, Problem

            raise ConfigError(
                [
                    Problem(
                        "--json goes with --dry-run (the command) or --detach (the run id); a launch in the "
                        "foreground streams the training output",
                        key="--json",
                        fix="add --dry-run or --detach, or drop --json (`loratrain runs --json` lists the runs)",
                    )
                ]
            )
        state_dir = None
        if resume:
            configs, state_dir = _split_state_dir(configs)
        if detach and not dry_run:
            given = {k: v for k, v in locals().items() if k in SUPERVISOR_OPTIONS}
            given["configs"] = configs + ([state_dir] if state_dir else [])
            return _detach(_supervisor_args(**given), as_json, queued=len(configs))
        if dry_run:
            if resume:
                set_ = list(set_ or []) + _resume_plan(configs[0], set_, strict, state_dir, quiet=True).set_overrides()
            return _dry_run(configs, as_json, set_, sd_scripts, strict, machine_rank)
        return _launch_all(
            configs,
            set_,
            strict,
            state_dir,
            resume=resume,
            plain=plain,
            keep_going=keep_going,
            supervised=supervised,
            options=dict(
                sd_scripts=sd_scripts,
                force=force,
                preflight=not no_preflight,
                machine_rank=machine_rank,
                grace_s=grace,
                on_nan=on_nan,
                stall_s=stall_after or None,
                detached=supervised,
                notify=notify,
                on_exit=on_exit,
            ),
        )


def _launch_all(configs, set_, strict, state_dir, *, resume, plain, keep_going, supervised, options) -> int:
    """Check and launch one config, or a queue of them (launch/queue.py); the exit code is the runs'."""
    from loratrain.commands._output import print_error, print_problems
    from loratrain.launch import prepare as launch
    from loratrain.launch.queue import run_queue

    opts = launch.LaunchOptions(**options)
    ready = _become_supervisor() if supervised else None
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

    if len(configs) == 1:
        result, rec = _launch(prepare(configs[0]), opts, plain or supervised, ready)
        return _exit_code(result, rec)
    queue = run_queue(
        configs,
        prepare,
        lambda prepared: _launch(prepared, opts, plain or supervised, ready),
        keep_going=keep_going,
        say=_say,
        on_error=print_error,
    )
    _summary(queue.outcomes)
    return queue.exit_code


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
        from loratrain.launch import preflight

        final = preflight.output_file(preflight.PreflightInput(args=args, cwd=Path.cwd()))
        if final is not None and final.exists() and final.resolve() in plan.own_files:
            _say(f"this launch replaces {_short(final)}: the run's final model from its earlier launch")
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
    from loratrain.launch.queue import exit_code_of

    return exit_code_of(result, rec)


def _launch(prepared, opts, plain: bool, ready=None):
    from loratrain.launch import prepare as launch
    from loratrain.launch import runner

    sink: runner.OutputSink | None
    if opts.detached:
        sink = None  # the training output goes to the record's train.log only
    elif plain or not sys.stdout.isatty():
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
        on_record=ready,
        say=_say,
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


SUPERVISOR_OPTIONS = (
    "configs",
    "set_",
    "sd_scripts",
    "strict",
    "machine_rank",
    "force",
    "no_preflight",
    "keep_going",
    "grace",
    "on_nan",
    "stall_after",
    "resume",
    "notify",
    "on_exit",
)


def _supervisor_args(
    *,
    configs,
    set_,
    sd_scripts,
    strict,
    machine_rank,
    force,
    no_preflight,
    keep_going,
    grace,
    on_nan,
    stall_after,
    resume,
    notify,
    on_exit,
) -> list[str]:
    """The same `run` for the detached supervisor (no --detach, no --plain: it writes no screen)."""
    args = [*configs]
    for item in set_ or []:
        args += ["--set", item]
    options = {
        "--sd-scripts": sd_scripts,
        "--machine-rank": machine_rank,
        "--grace": grace,
        "--on-nan": on_nan,
        "--stall-after": stall_after,
        "--notify": notify,
        "--on-exit": on_exit,
    }
    for name, value in options.items():
        if value is not None:
            args += [name, str(value)]
    flags = {
        "--strict": strict,
        "--force": force,
        "--no-preflight": no_preflight,
        "--keep-going": keep_going,
        "--resume": resume,
    }
    return args + [name for name, on in flags.items() if on]


def _become_supervisor():
    """In the detached supervisor: ignore the terminal's hang-up (the runner then leaves SIGHUP alone) and
    return the reporter that tells the waiting `run --detach` about the first record."""
    import signal

    from loratrain.launch.detach import ReadyReporter

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return ReadyReporter()


def _detach(run_args: list[str], as_json: bool, queued: int = 1) -> int:
    from loratrain.commands._output import print_json
    from loratrain.launch.detach import DetachFailed, start_detached

    try:
        started = start_detached(run_args)
    except DetachFailed as exc:
        sys.stderr.write(exc.output if exc.output.endswith("\n") or not exc.output else exc.output + "\n")
        if not exc.output.strip():
            _say(str(exc))
        return exc.exit_code
    if as_json:
        print_json(
            {"run_id": started.run_id, "record": str(started.record), "pid": started.pid, "log": str(started.log)}
        )
        return 0
    run_id = started.run_id
    typer.echo(run_id)
    _say(f"started {run_id} in the background (supervisor pid {started.pid}); closing this terminal does not stop it")
    if queued > 1:
        _say(f"it is the first of a queue of {queued} runs; the others appear in `loratrain runs` as they start")
    _say(f"record:  {_short(started.record)}")
    _say(f"follow:  loratrain attach {run_id}    (the progress bar; Ctrl-C leaves the run running)")
    _say(f"         loratrain logs {run_id} -f")
    _say(f"status:  loratrain runs {_short(started.record.parent.parent)}")
    _say(f"stop:    loratrain stop {run_id}")
    return 0
