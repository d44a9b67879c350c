"""`loratrain sweep BASE --vary KEY=V1,V2 ... -o DIR [--run]`: one config per combination, then (optionally)
train them as a queue with `run`. Also the sweep views of `plan DIR` and `fit DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from loratrain.errors import EXIT_CONFIG


def register(app: typer.Typer) -> None:
    @app.command(
        "sweep",
        help="Write one config per combination of varied values (the full grid, or paired with --zip), each "
        "validated and given its own output_name and output_dir, all sharing the dataset and its caches; "
        "DIR/sweep.toml records the base, the axes and the runs. --run trains them as a queue.",
    )
    def sweep(
        ctx: typer.Context,
        base: Path = typer.Argument(..., help="The base config (TOML)."),
        vary: list[str] = typer.Option(
            ...,
            "--vary",
            metavar="TABLE.KEY=V1,V2,...",
            help="A key and its values, typed like --set (TOML literals; bare words are strings). Repeatable.",
        ),
        out: Path = typer.Option(..., "--output", "-o", help="Folder for the run configs and sweep.toml."),
        zip_: bool = typer.Option(False, "--zip", help="Pair the lists position by position instead of the grid."),
        skip_invalid: bool = typer.Option(
            False, "--skip-invalid", help="Leave out combinations that break a rule (listed) instead of failing."
        ),
        run_: bool = typer.Option(False, "--run", help="Then train the runs one after another (`loratrain run`)."),
        detach: bool = typer.Option(
            False, "--detach", help="With --run: start the queue in the background (`run --detach`, where run has it)."
        ),
        force: bool = typer.Option(False, "--force", help="Write over a sweep already in DIR."),
        as_json: bool = typer.Option(False, "--json", help="Print {ok, sweep, runs, skipped, notes} as JSON."),
    ) -> int:
        from loratrain.errors import ConfigError

        try:
            return _sweep(ctx, base, vary, out, zip_, skip_invalid, run_, detach, force, as_json)
        except ConfigError as exc:
            if not as_json:
                raise
            from loratrain.commands._output import print_json

            print_json(failure_json(exc.problems))
            return EXIT_CONFIG


def failure_json(problems) -> dict[str, Any]:
    """What --json prints on failure: exactly one object, `{"ok": false, "problems": [...]}`."""
    return {"ok": False, "problems": [_problem(p) for p in problems]}


def _problem(p) -> dict[str, Any]:
    return {"file": p.file, "line": p.line, "key": p.key, "severity": p.severity, "message": p.message, "fix": p.fix}


def _sweep(ctx, base, vary, out, zip_, skip_invalid, run_, detach, force, as_json) -> int:
    from loratrain.commands._output import print_json, print_problems
    from loratrain.errors import ConfigError, Problem
    from loratrain.sweep import build, record

    if detach and not run_:
        raise ConfigError([Problem("--detach goes with --run", key="--detach", fix="add --run")])
    command = _run_command(ctx, detach) if run_ else None
    sweep = build.build(base, list(vary), out, zip_)
    if sweep.invalid and not skip_invalid:
        problems = [
            Problem(
                f"the combination {r.values_text()} breaks a rule: {p.message}",
                key=p.key,
                file="--vary",
                fix=p.fix,
                value=r.values,
            )
            for r in sweep.invalid
            for p in r.problems
        ]
        problems[-1] = Problem(
            problems[-1].message,
            key=problems[-1].key,
            file=problems[-1].file,
            fix=(problems[-1].fix + "; " if problems[-1].fix else "") + "--skip-invalid leaves such combinations out",
            value=problems[-1].value,
        )
        raise ConfigError(problems)
    if not sweep.valid:
        raise ConfigError([Problem("no valid combination is left", file="--vary", fix="change the values")])
    target = record.write(sweep, out, force)
    configs = [str(out / f"{r.name}.toml") for r in sweep.valid]
    if as_json:
        print_json(
            {
                "ok": True,
                "sweep": str(target),
                "mode": sweep.mode,
                "axes": {a.key: a.values for a in sweep.axes},
                "runs": [
                    {"name": r.name, "config": c, "output_dir": r.output_dir, "values": r.values}
                    for r, c in zip(sweep.valid, configs)
                ],
                "skipped": [
                    {"name": r.name, "values": r.values, "problems": [_problem(p) for p in r.problems]}
                    for r in sweep.invalid
                ],
                "notes": sweep.notes,
            }
        )
    else:
        for r in sweep.invalid:
            typer.echo(f"skipped {r.values_text()}: " + "; ".join(p.message for p in r.problems), err=True)
        seen: set[str] = set()
        for r in sweep.valid:  # a warning of the base once, not once per run
            fresh = [w for w in r.warnings if w.render() not in seen]
            seen.update(w.render() for w in fresh)
            print_problems(fresh)
        for note in sweep.notes:
            typer.echo(f"note: {note}", err=True)
        typer.echo(f"{len(configs)} runs ({sweep.mode} of " + " x ".join(str(len(a.values)) for a in sweep.axes) + "):")
        for r, c in zip(sweep.valid, configs):
            typer.echo(f"  {c}  ({r.values_text()}) -> {r.output_dir}")
        typer.echo(f"sweep: {target}")
    if not run_:
        return 0
    return _queue(command, configs, detach)


def _run_command(ctx: typer.Context, detach: bool):
    """The `run` verb beside this one; with `detach`, only when run has --detach (checked before writing)."""
    from loratrain.errors import ConfigError, Problem, RuntimeFailure

    parent = ctx.parent.command if ctx.parent is not None else None
    command = parent.get_command(ctx, "run") if parent is not None and hasattr(parent, "get_command") else None
    if command is None:  # pragma: no cover - sweep is always registered beside run
        raise RuntimeFailure("the run verb is not available")
    if detach and not any(getattr(p, "name", None) == "detach" for p in command.params):
        raise ConfigError([Problem("this loratrain's run has no --detach", key="--detach", fix="drop --detach")])
    return command


def _queue(command, configs: list[str], detach: bool = False) -> int:
    """Train the configs through the `run` verb itself: its checks, records, queue (going on after a failed
    run, so one diverging value does not stop the rest) and exit code."""
    args = [*configs, "--keep-going"] + (["--detach"] if detach else [])
    try:  # exactly `loratrain run CONFIG... --keep-going [--detach]`, parsed by run's own options
        result = command.main(args=args, prog_name="loratrain run", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


# --- plan DIR and fit DIR ------------------------------------------------------------------------------------


def plan_sweep(folder: Path, set_: Optional[list[str]], as_json: bool) -> int:
    """Each run's steps and epochs from its plan, the sweep's total, and its time where runs have trained."""
    from loratrain.commands._config import effective, load
    from loratrain.commands._output import print_json, print_problems
    from loratrain.plan.planner import build_plan
    from loratrain.sweep import record

    recorded = record.read(folder)
    rows = []
    errors = False
    for run in recorded.runs:
        loaded = load(str(run.config), set_, quiet=True)
        report = build_plan(effective(loaded.config), config_file=str(run.config))
        errors = errors or bool(report.errors)
        if not as_json:
            print_problems([p for p in report.problems if p.severity == "error"])
        rows.append(
            {
                "run": run.name,
                "config": str(run.config),
                "values": run.values,
                "total_steps": report.data.get("total_steps") or 0,
                "epochs": report.data.get("epochs"),
                **record.last_run(loaded.config.script_args()),
            }
        )
    total = sum(r["total_steps"] for r in rows)
    estimate, basis = record.sweep_time(rows)
    if as_json:
        print_json({"sweep": str(folder), "runs": rows, "total_steps": total, "time_s": estimate, "time_basis": basis})
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"sweep {folder}: {len(rows)} runs", title_justify="left")
        for column in ("run", "varied", "steps", "epochs", "status", "time"):
            table.add_column(column)
        for r in rows:
            table.add_row(
                r["run"],
                ", ".join(f"{k}={v}" for k, v in r["values"].items()),
                str(r["total_steps"]),
                str(r["epochs"] if r["epochs"] is not None else "-"),
                r["status"],
                _hms(r["duration_s"]) if r["duration_s"] else "-",
            )
        Console(highlight=False, soft_wrap=False).print(table)
        typer.echo(f"total: {total} steps" + (f", about {_hms(estimate)}" if estimate is not None else ""))
        typer.echo(f"time: {basis}")
    return EXIT_CONFIG if errors else 0


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def fit_sweep(folder: Path, set_: Optional[list[str]], gpu: str, vram: Optional[float], as_json: bool) -> int:
    """`fit` for every run of the sweep: each run's predicted peak and verdict (dim and batch size change it)."""
    from loratrain.commands._config import effective, load
    from loratrain.commands._output import card_for, print_json
    from loratrain.fit import cards, model
    from loratrain.fit.advice import advise
    from loratrain.sweep import record

    recorded = record.read(folder)
    card, vram_gib = card_for(gpu, vram)
    rows: list[dict[str, Any]] = []
    for run in recorded.runs:
        loaded = load(str(run.config), set_, quiet=True)
        view = effective(loaded.config)
        est = model.estimate(view)
        fits = cards.fits(est.peak, vram_gib) if vram_gib else None
        # the first change that makes a run fit, for the runs that do not (the advice is per run)
        advice = advise(view, vram_gib, limit=1) if vram_gib and not fits else []
        rows.append(
            {
                "run": run.name,
                "config": str(run.config),
                "values": run.values,
                "peak_gib": round(est.peak / cards.GIB, 2),
                "verdict": cards.verdict(est.peak, vram_gib) if vram_gib else None,
                "fits": fits,
                "advice": [{"set": a.set_line(), "peak_gib": round(a.peak / cards.GIB, 2)} for a in advice],
            }
        )
    if as_json:
        print_json({"sweep": str(folder), "gpu": {"name": card, "gib": vram_gib}, "runs": rows})
    else:
        for r in rows:
            values = ", ".join(f"{k}={v}" for k, v in r["values"].items())
            verdict = r["verdict"] or f"predicted peak {r['peak_gib']:.1f} GiB per GPU (no GPU given or detected)"
            typer.echo(f"{r['run']} ({values}): {verdict}")
            for a in r["advice"]:
                typer.echo(f"  to fit: {a['set']} (predicted peak {a['peak_gib']:.1f} GiB)")
            if r["fits"] is False and not r["advice"]:
                typer.echo("  no change loratrain knows makes this run fit; see `loratrain fit` on its config")
        typer.echo("`loratrain fit RUN_CONFIG` gives one run's breakdown and the changes that make it fit.")
    return 0
