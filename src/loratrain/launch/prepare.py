"""One training run from a loaded config: resolve the install, check, record, launch.

The `run` and `check` verbs call these; everything here returns values or raises, nothing prints.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from loratrain.config.placement import place_problems
from loratrain.errors import EXIT_RUNTIME, ConfigError, Problem
from loratrain.launch import gpus as gpu_mod
from loratrain.launch import preflight
from loratrain.render import SCRIPT_PLACEHOLDER
from loratrain.sdscripts import flags
from loratrain.sdscripts import install as sdscripts


@dataclass
class LaunchOptions:
    sd_scripts: str | None = None  # --sd-scripts
    force: bool = False  # overwrite an existing output file
    preflight: bool = True
    machine_rank: int | None = None
    grace_s: float = 30.0
    on_nan: str = "stop"  # the watchdog: "stop" or "warn" on a NaN/inf loss
    stall_s: float | None = 900.0  # warn after this long without a progress line; None/0: never
    resume: Any = None  # launch.resume.ResumePlan when resuming
    detached: bool = False  # run by the detached supervisor of `run --detach` (recorded with its pid)
    notify: str | None = None  # --notify URL: POST start, saves and end
    on_exit: str | None = None  # --on-exit CMD: run after the record is closed, facts in LORATRAIN_* variables


@dataclass
class Prepared:
    """A launch ready to go: the command, where it runs, and what preflight found (warnings only)."""

    loaded: Any  # LoadedConfig
    python: str
    sd_scripts: Path
    commit: str | None
    command: Any  # render.Command
    cwd: Path
    gpu_scan: gpu_mod.GpuScan
    warnings: list[Problem] = field(default_factory=list)
    probe: dict[str, Any] | None = (
        None  # the doctor probe's answer when preflight ran it (the record reads its versions)
    )

    @property
    def args(self) -> dict[str, Any]:
        return self.loaded.config.script_args()

    def output_file(self) -> Path | None:
        """The LoRA file sd-scripts writes at the end: <output_dir>/<output_name or "last">.<save_model_as>."""
        return preflight.output_file(preflight.PreflightInput(args=self.args, cwd=self.cwd))

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        env.update(self.command.env)
        # Python buffers a pipe's output; without this the log and the progress bar would lag by kilobytes.
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env


def with_terminal_width(env: Mapping[str, str]) -> dict[str, str]:
    """The child's output goes through a pipe, so its loggers see no terminal and wrap at 80 columns: tell them
    the real width (an explicit COLUMNS is kept). Not part of the record: it is this terminal's, not the run's."""
    out = dict(env)
    if "COLUMNS" not in out:
        import shutil

        out["COLUMNS"] = str(shutil.get_terminal_size().columns)
    return out


def training_python(cfg: Any) -> str:
    """The interpreter of the training environment: the config's `python`, else the one running loratrain."""
    return cfg.python or sys.executable


def launcher(python: str) -> list[str]:
    from loratrain.render import launcher_for

    return launcher_for(python)


def accelerate_settings(cfg: Any) -> dict[str, Any]:
    return cfg.accelerate.model_dump()


def prepare(
    loaded: Any,
    opts: LaunchOptions,
    env: Mapping[str, str] | None = None,
    gpu_scanner: Callable[[], gpu_mod.GpuScan] | None = None,
) -> Prepared:
    """Locate sd-scripts, count GPUs, render the command and (unless skipped) run preflight.

    Raises ConfigError with every preflight error (and the warnings) when something is wrong.
    """
    from loratrain.render import build_command

    env = dict(os.environ if env is None else env)
    cfg = loaded.config
    python = training_python(cfg)
    # With preflight, an unknown sd-scripts folder is one problem among all the others, not the only one shown.
    missing: list[Problem] = []
    folder: Path | None = None
    try:
        folder = sdscripts.locate(opts.sd_scripts, cfg.sd_scripts, env)
    except ConfigError as exc:
        if not opts.preflight:
            raise
        missing = place_problems(exc.problems, loaded.path, loaded.lines)
    commit = sdscripts.read_commit(folder) if folder is not None else None
    warnings: list[Problem] = list(loaded.warnings)
    commit_warning = sdscripts.commit_problem(commit, folder) if folder is not None else None
    if commit_warning is not None:
        warnings += place_problems([commit_warning], loaded.path, loaded.lines)
    scan = (gpu_scanner or (lambda: gpu_mod.scan(python, env)))()
    acc = accelerate_settings(cfg)
    if opts.machine_rank is not None:
        acc = {**acc, "machine_rank": opts.machine_rank}
    if acc.get("num_processes") == "auto" and not scan.count:
        raise ConfigError(
            [
                Problem(
                    'num_processes = "auto" needs GPUs to count, but none were found'
                    + (f" ({scan.note})" if scan.note else ""),
                    key="accelerate.num_processes",
                    file=str(loaded.path),
                    fix="set num_processes to a number, or check nvidia-smi / CUDA_VISIBLE_DEVICES",
                )
            ]
        )
    # The renderer writes this number as --num_processes when the config says "auto".
    command = build_command(
        cfg,
        str(folder) if folder is not None else None,
        launcher=launcher(python),
        visible_gpus=gpu_mod.total_processes(acc, scan),
        machine_rank=opts.machine_rank,
    )
    prepared = Prepared(
        loaded=loaded,
        python=python,
        sd_scripts=folder if folder is not None else Path(SCRIPT_PLACEHOLDER),
        commit=commit,
        command=command,
        cwd=Path.cwd(),
        gpu_scan=scan,
        warnings=warnings,
    )
    if opts.preflight:
        inp = preflight.PreflightInput(
            args=prepared.args,
            accelerate=acc,
            python=python,
            sd_scripts=folder,
            force=opts.force,
            replaces=replaced_by_resume(opts),
            env=env,
            cwd=prepared.cwd,
            config_file=str(loaded.path),
            gpu_scanner=lambda: scan,
        )
        found = place_problems(preflight.run_preflight(inp), loaded.path, loaded.lines)
        prepared.probe = inp.doctor_answer()
        errors = missing + preflight.errors(found)
        warnings += [p for p in found if p.severity == "warning"]
        if errors:
            # The config's own warnings were printed when it was loaded; add only the new ones.
            raise ConfigError(errors + [w for w in warnings if w not in loaded.warnings])
    else:
        # The overwrite guard protects data; it is no preflight check and holds with --no-preflight too.
        target = prepared.output_file()
        if preflight.would_overwrite(target, opts.force, replaced_by_resume(opts)):
            raise ConfigError(
                [
                    Problem(
                        f"{target} already exists and the run would overwrite it",
                        key="saving.output_name",
                        file=str(loaded.path),
                        fix="change output_name, move the file away, or pass --force to overwrite it",
                    )
                ]
            )
    return prepared


def replaced_by_resume(opts: LaunchOptions) -> frozenset[Path]:
    """The files a resumed run's earlier launches wrote: this launch replaces them (its final model) as expected."""
    return getattr(opts.resume, "own_files", frozenset()) if opts.resume is not None else frozenset()


def record_base(prepared: Prepared) -> tuple[Path, str]:
    """Where the run record goes (beside the outputs) and the run's name."""
    args = prepared.args
    out = args.get("output_dir")
    base = prepared.cwd / out if out and not Path(out).is_absolute() else Path(out) if out else prepared.cwd
    return base, str(args.get("output_name") or flags.LAST_OUTPUT_NAME)


def training_versions(prepared: Prepared, env: Mapping[str, str]) -> dict[str, str | None]:
    """The training interpreter and its package versions for the record: preflight's doctor probe read them
    already; without preflight, one metadata-only probe reads them."""
    answer = prepared.probe
    if answer is not None and answer.get("executable"):
        versions = answer.get("versions") or {}
        return {"training_python": answer["executable"], **{d: versions.get(d) for d in sdscripts.TRAINING_DISTS}}
    installed = sdscripts.probe(prepared.python, prepared.sd_scripts, (), env)
    return {"training_python": installed.executable, **installed.versions}


def start_record(prepared: Prepared, opts: LaunchOptions, env: Mapping[str, str]):
    from loratrain.launch.live import supervisor_facts
    from loratrain.launch.record import RunRecord
    from loratrain.launch.runid import index_run

    base, name = record_base(prepared)
    if opts.machine_rank:
        name += f"-rank{opts.machine_rank}"
    rec = RunRecord(base, name)
    index_run(rec.folder)
    scan = prepared.gpu_scan
    rec.start(
        argv=prepared.command.argv,
        env={k: v for k, v in prepared.child_env({}).items()},
        cwd=str(prepared.cwd),
        config=prepared.loaded.config.model_dump(mode="json", exclude_none=True),
        config_file=str(prepared.loaded.path),
        versions=training_versions(prepared, env),
        sd_scripts={
            "path": str(prepared.sd_scripts),
            "commit": prepared.commit,
            "flag_table_commit": flags.source_commit(),
        },
        gpus=None
        if scan.gpus is None
        else [{"index": g.index, "name": g.name, "compute_cap": g.compute_cap, "bf16": g.bf16} for g in scan.gpus],
        more={
            "supervisor": supervisor_facts(detached=opts.detached, grace_s=opts.grace_s),
            **({"resume": opts.resume.as_record()} if opts.resume is not None else {}),
        },
    )
    return rec


def run_prepared(
    prepared: Prepared,
    opts: LaunchOptions,
    sink=None,
    on_signal=None,
    runner=None,
    env: Mapping[str, str] | None = None,
    on_launch: Callable[[], None] | None = None,
    on_event: Callable[[dict], None] | None = None,
    on_record: Callable[[Any], None] | None = None,
    say: Callable[[str], None] | None = None,
):
    """Write the record, launch (watched, tethered, with a heartbeat), complete the record.
    Returns (RunResult, RunRecord).

    `on_record(rec)` is called once the record exists (the detached supervisor reports it there);
    `on_launch` once the record is written, right before the training process starts, so the caller
    announces a launch only when one really happens. `on_event` gets each watchdog event (NaN loss, slow
    steps, stall) as it happens; all of them also go into the record. `say` gets the hooks' failures.
    """
    from loratrain.launch import runner as runner_mod

    env = dict(os.environ if env is None else env)
    rec = start_record(prepared, opts, env)
    if on_record is not None:
        on_record(rec)
    watched = _Watched(rec, sink, opts, on_event, say)
    run: runner_mod.Runner = runner or runner_mod.run
    if on_launch is not None:
        on_launch()
    try:
        result = run(
            prepared.command.argv,
            with_terminal_width(prepared.child_env(env)),
            log_path=rec.log_path,
            sink=watched.sink,
            cwd=prepared.cwd,
            grace_s=opts.grace_s,
            on_signal=on_signal,
            watch=watched.poll,
            started=watched.started,
        )
    except BaseException:
        watched.release()
        rec.finish(exit_code=EXIT_RUNTIME, duration_s=0.0, interrupted_by=None)
        watched.ended(rec, prepared)
        raise
    watched.release()
    watched.poll()  # deliver what came with the last lines
    interrupted = signal.Signals(result.received_signal).name if result.received_signal else None
    rec.finish(
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        interrupted_by=interrupted,
        extra={
            **outcome_details(prepared, opts, result, rec, watched.dog),
            **watched.stop_details(result),
        },
    )
    watched.ended(rec, prepared)
    return result, rec


class _Watched:
    """What rides along one launch: the watchdog, sd-scripts' save lines, the heartbeat, the tether, the hooks."""

    def __init__(self, rec, sink, opts: LaunchOptions, on_event, say):
        from loratrain.launch.hooks import Hooks, SaveSpotter
        from loratrain.launch.live import Heartbeat
        from loratrain.launch.watchdog import Watchdog, WatchSettings

        self.rec = rec
        self.opts = opts
        self.dog = Watchdog(sink, WatchSettings(on_nan=opts.on_nan, stall_s=opts.stall_s or None), on_event=on_event)
        self.saves = SaveSpotter(self.dog)
        self.sink = self.saves
        self.heartbeat = Heartbeat(rec.folder, self.dog)
        self.hooks = Hooks(opts.notify, opts.on_exit, say)
        self.tether: Any = None

    def facts(self, **more: Any) -> dict[str, Any]:
        last = self.dog.last
        data = self.rec.data
        facts = {
            "run_id": self.rec.folder.name,
            "record": str(self.rec.folder),
            "config": data.get("config_file"),
            "status": data.get("status"),
            "step": last.step if last else None,
            "total_steps": last.total if last else None,
            "loss": last.avr_loss if last and last.avr_loss is not None and last.avr_loss == last.avr_loss else None,
        }
        facts.update(more)
        return facts

    def started(self, pgid: int) -> None:
        from loratrain.launch.tether import Tether

        self.tether = Tether.start(pgid, self.rec.folder)
        self.heartbeat.pgid = pgid
        self.heartbeat.tick(force=True)
        self.hooks.event("start", self.facts())

    def poll(self) -> str | None:
        reason = self.dog.poll()
        self.heartbeat.tick()
        for saved in self.saves.take():
            self.hooks.event("save", self.facts(file=saved))
        return reason

    def stop_details(self, result) -> dict[str, Any]:
        """`loratrain stop` asked for this interruption: the record says so."""
        from loratrain.launch.live import stop_request

        request = stop_request(self.rec.folder) if result.interrupted else None
        return {"stop_request": request} if request else {}

    def release(self) -> None:
        if self.tether is not None:
            self.tether.release()
            self.tether = None

    def ended(self, rec, prepared: Prepared) -> None:
        data = rec.data
        failure = data.get("failure") if isinstance(data.get("failure"), dict) else {}
        cause = failure.get("cause") or data.get("stopped_by") or data.get("interrupted_by")
        facts = self.facts(
            status=data.get("status"),
            step=data.get("cumulative_steps", data.get("steps_done")),
            total_steps=data.get("steps_total"),
            loss=data.get("last_loss"),
            exit_code=data.get("exit_code"),
            cause=cause,
            log=str(rec.log_path),
        )
        target = prepared.output_file()
        facts["output"] = str(target) if target is not None and target.exists() else None
        self.hooks.event("end", facts)
        self.hooks.on_exit(facts)
        self.hooks.close()
        if self.hooks.failures:
            rec.data["hooks"] = self.hooks.failures
            rec._write()


def outcome_details(prepared: Prepared, opts: LaunchOptions, result, rec, dog) -> dict[str, Any]:
    """What the record keeps beyond the exit code: steps done, last loss, watchdog events, the failure's cause."""
    from loratrain.launch import failures
    from loratrain.launch.watchdog import last_progress_in_log

    text = failures.read_tail(rec.log_path)
    last = last_progress_in_log(text)
    details: dict[str, Any] = {
        "steps_done": last.step if last else 0,  # optimizer steps this launch ran (sd-scripts' bar)
        "steps_total": last.total if last else None,
        "last_loss": last.avr_loss if last and last.avr_loss is not None and last.avr_loss == last.avr_loss else None,
        "watchdog": {"events": list(dog.events), "on_nan": opts.on_nan, "stall_s": opts.stall_s},
        "stopped_by": getattr(result, "stopped_by", None),
    }
    if dog.nan_step is not None:
        details["nan_step"] = dog.nan_step
    if opts.resume is not None:
        details["cumulative_steps"] = opts.resume.start_step + details["steps_done"]
    else:
        details["cumulative_steps"] = details["steps_done"]
    if result.exit_code != 0 and not result.interrupted and not details["stopped_by"]:
        found = failures.classify(text, result.exit_code, getattr(result, "child_code", None), python=prepared.python)
        if found is not None:
            details["failure"] = found.as_dict()
    elif result.exit_code == 0 and not result.interrupted and not details["stopped_by"]:
        # sd-scripts can return 0 having trained nothing ("No data found"): that run failed, with its reason.
        target = prepared.output_file()
        found = failures.judge_clean_exit(
            text,
            details["steps_done"],
            details["steps_total"],
            target is not None,
            target is not None and rec.wrote(target),  # an earlier launch's file proves nothing
        )
        if found is not None:
            details["failure"] = found.as_dict()
    return details
