"""`loratrain runs [OUTPUT_DIR]`: the run records in an output folder as a table, or JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}  # a record written by hand or damaged: the part is missing


def _row(folder: Path, data: dict[str, Any]) -> dict[str, Any]:
    failure = _table(data.get("failure"))
    resume = _table(data.get("resume"))
    cause = failure.get("cause") or data.get("stopped_by") or ""
    events = _table(data.get("watchdog")).get("events")
    return {
        "config": data.get("config_file", ""),
        "status": data.get("status", "?"),
        "started": data.get("started"),
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
        "record": str(folder),
    }


def collect(output_dir: Path) -> list[dict[str, Any]]:
    """Every record under OUTPUT_DIR/loratrain-runs (or OUTPUT_DIR itself when it is that folder), oldest first."""
    from loratrain import untrusted
    from loratrain.launch.record import RECORD_NAME, RUNS_FOLDER

    base = output_dir if output_dir.name == RUNS_FOLDER else output_dir / RUNS_FOLDER
    rows = []
    for path in sorted(base.glob(f"*/{RECORD_NAME}")):
        try:
            data = untrusted.json_loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            rows.append(
                {
                    "config": "",
                    "status": "unreadable",
                    "cause": f"record.json unreadable: {exc}",
                    "record": str(path.parent),
                }
            )
            continue
        rows.append(_row(path.parent, data))
    return sorted(rows, key=lambda r: str(r.get("started") or ""))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(value: Any) -> bool:
    return _number(value) and math.isfinite(value) and value >= 0


def _steps(r: dict[str, Any]) -> str:
    if r.get("steps_done") is None:
        return "-"
    if r.get("resumed_from_step") is not None:
        return f"{r['resumed_from_step']}→{r['cumulative_steps']}"
    return str(r["steps_done"])


def register(app: typer.Typer) -> None:
    @app.command(
        "runs",
        help="List the runs recorded in an output folder: config, status, steps done, duration, "
        "last loss, the cause of a failure and the record folder.",
    )
    def runs(
        output_dir: Optional[str] = typer.Argument(None, help="The runs' output_dir (default: the current folder)."),
        as_json: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout."),
    ) -> int:
        from loratrain.commands._output import duration as _duration
        from loratrain.commands._output import print_json
        from loratrain.commands._output import short_path as _short
        from loratrain.errors import EXIT_OK, ConfigError, Problem

        folder = Path(output_dir or ".")
        if not folder.is_dir():
            raise ConfigError(
                [Problem(f"{folder} is not a folder", value=str(folder), fix="give the output_dir of your runs")]
            )
        rows = collect(folder)
        if as_json:
            print_json(rows)
            return EXIT_OK
        if not rows:
            typer.echo(
                f"no runs recorded in {folder} (loratrain run writes them to <output_dir>/loratrain-runs/)", err=True
            )
            return EXIT_OK
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"runs in {folder}", title_justify="left")
        for column in ("config", "status", "steps", "time", "last loss", "cause", "record"):
            table.add_column(column, overflow="fold")
        for r in rows:
            loss, duration = r.get("last_loss"), r.get("duration_s")
            table.add_row(
                str(r.get("config") or ""),
                str(r.get("status") or ""),
                _steps(r),
                _duration(duration) if _seconds(duration) else "-",
                f"{loss:.4g}" if _number(loss) else "-",
                str(r.get("cause") or ""),
                _short(r["record"]),
            )
        Console(highlight=False).print(table)
        return EXIT_OK
