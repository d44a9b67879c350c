"""`loratrain runs [OUTPUT_DIR]`: the run records in an output folder as a table, or JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}  # a record written by hand or damaged: the part is missing


def _row(stored) -> dict[str, Any]:
    from loratrain.launch.live import view

    data = stored.data
    failure = _table(data.get("failure"))
    resume = _table(data.get("resume"))
    live = view(stored)
    asked = _table(data.get("stop_request"))
    cause = (
        failure.get("cause")
        or data.get("stopped_by")
        or _table(data.get("died")).get("cause")
        or live.get("cause")
        or (
            f"stopped with `loratrain stop` at {asked.get('time')}" if asked and live["status"] == "interrupted" else ""
        )
    )
    events = _table(data.get("watchdog")).get("events")
    return {
        "run_id": stored.run_id,
        "config": data.get("config_file", ""),
        "status": live["status"],
        "started": data.get("started"),
        "step": live["step"],
        "total_steps": live["total_steps"],
        "loss": live["loss"],
        "speed": live["speed"],
        "eta": live["eta"],
        "elapsed_s": live["elapsed_s"],
        "pid": live["pid"],
        "host": live["host"],
        "detached": live["detached"],
        "last_seen": live["last_seen"],
        "died_at": live["died_at"],
        "steps_done": data.get("steps_done"),
        "cumulative_steps": data.get("cumulative_steps"),
        "resumed_from_step": resume.get("cumulative_step"),
        "planned_steps": resume.get("planned_total") or data.get("steps_total"),
        "duration_s": data.get("duration_s"),
        "last_loss": data.get("last_loss"),
        "cause": cause,
        "fix": failure.get("fix", ""),
        "warnings": [_table(e).get("kind") for e in (events if isinstance(events, list) else [])],
        "exit_code": data.get("exit_code"),
        "record": str(stored.folder),
    }


def collect(output_dir: Path) -> list[dict[str, Any]]:
    """Every record under OUTPUT_DIR/loratrain-runs (or OUTPUT_DIR itself when it is that folder), oldest first,
    each with its live status (launch/live.py). A damaged record is listed as "unreadable" with the reason."""
    from loratrain.launch.record import records_in

    rows = []
    for stored in records_in(output_dir):
        if stored.problem is not None:
            rows.append(
                {
                    "run_id": stored.run_id,
                    "config": "",
                    "status": "unreadable",
                    "cause": f"record.json unreadable: {stored.problem}",
                    "record": str(stored.folder),
                }
            )
            continue
        rows.append(_row(stored))
    return sorted(rows, key=lambda r: str(r.get("started") or ""))


def collect_indexed() -> list[dict[str, Any]]:
    """The runs indexed on this machine (every output_dir), for `runs` in a folder that has none of its own."""
    from loratrain.launch.record import read_record
    from loratrain.launch.runid import indexed_runs

    rows = []
    for folder in indexed_runs().values():
        stored = read_record(folder)
        if stored.problem is None:
            rows.append(_row(stored))
    return sorted(rows, key=lambda r: str(r.get("started") or ""))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(value: Any) -> bool:
    return _number(value) and math.isfinite(value) and value >= 0


def _steps(r: dict[str, Any]) -> str:
    if r.get("status") in ("running", "died", "unknown") and isinstance(r.get("step"), int):
        total = r.get("total_steps")
        return f"{r['step']}/{total}" if isinstance(total, int) else str(r["step"])
    if r.get("steps_done") is None:
        return "-"
    if r.get("resumed_from_step") is not None:
        return f"{r['resumed_from_step']}→{r['cumulative_steps']}"
    return str(r["steps_done"])


def _when(value: Any) -> str:
    return value.replace("T", " ")[:19] if isinstance(value, str) else "-"


def _status(r: dict[str, Any]) -> str:
    status = str(r.get("status") or "")
    if status == "died" and r.get("died_at"):
        return f"died (last seen {_when(r['died_at'])})"
    if status == "running" and r.get("detached"):
        return "running (detached)"
    return status


def _render(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from loratrain.commands._output import duration as _duration
    from loratrain.commands._output import short_path as _short

    table = Table(title=title, title_justify="left")
    for column in ("run", "config", "status", "steps", "loss", "speed", "left", "time", "cause", "record"):
        table.add_column(column, overflow="fold")
    for r in rows:
        loss = r.get("loss") if r.get("loss") is not None else r.get("last_loss")
        duration = r.get("elapsed_s") if r.get("elapsed_s") is not None else r.get("duration_s")
        table.add_row(
            str(r.get("run_id") or ""),
            str(r.get("config") or ""),
            _status(r),
            _steps(r),
            f"{loss:.4g}" if _number(loss) else "-",
            str(r.get("speed") or "-"),
            str(r.get("eta") or "-") if r.get("status") == "running" else "-",
            _duration(duration) if _seconds(duration) else "-",
            str(r.get("cause") or ""),
            _short(r["record"]),
        )
    Console(highlight=False).print(table)


def register(app: typer.Typer) -> None:
    @app.command(
        "runs",
        help="List the runs recorded in an output folder: run id, config, status (live for a running one: step of "
        "total, loss, speed, time left; a run whose supervisor is gone shows as died), duration, the cause of a "
        "failure and the record folder. Without OUTPUT_DIR: the current folder's runs, else every run started on "
        "this machine.",
    )
    def runs(
        output_dir: Optional[str] = typer.Argument(None, help="The runs' output_dir (default: the current folder)."),
        as_json: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout."),
        watch: bool = typer.Option(False, "--watch", help="Redraw the table every few seconds until Ctrl-C."),
        interval: float = typer.Option(2.0, "--interval", min=0.2, help="Seconds between redraws with --watch."),
    ) -> int:
        from loratrain.commands._output import print_json
        from loratrain.errors import EXIT_OK, ConfigError, Problem
        from loratrain.launch.record import records_folder

        folder = Path(output_dir or ".")
        if not folder.is_dir():
            raise ConfigError(
                [Problem(f"{folder} is not a folder", value=str(folder), fix="give the output_dir of your runs")]
            )
        everywhere = output_dir is None and not records_folder(folder).is_dir()

        def rows() -> list[dict[str, Any]]:
            return collect_indexed() if everywhere else collect(folder)

        title = "runs on this machine" if everywhere else f"runs in {folder}"
        if as_json:
            print_json(rows())
            return EXIT_OK
        if watch:
            return _watch(rows, title, interval)
        found = rows()
        if not found:
            typer.echo(
                f"no runs recorded in {folder} (loratrain run writes them to <output_dir>/loratrain-runs/)", err=True
            )
            return EXIT_OK
        _render(found, title)
        return EXIT_OK


def _watch(rows, title: str, interval: float) -> int:
    import time

    from rich.console import Console

    console = Console(highlight=False)
    try:
        while True:
            console.clear()
            _render(rows(), f"{title} (every {interval:g}s; Ctrl-C to quit)")
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
