"""`loratrain report RUN`: loss and learning-rate curves, a sample grid and the health of each save, in one
self-contained HTML page (plus the figures as PNG files), or the numbers behind them with --json."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

REPORT_FOLDER = "report"  # inside the run record folder
NO_RECORD_FOLDER = "loratrain-report"  # inside output_dir when the run has no record
CACHE_FOLDER = ".cache"  # thumbnails and adapter health of earlier builds, inside the report folder


def register(app: typer.Typer) -> None:
    @app.command(
        "report",
        help=(
            "Report on a training run: loss and learning-rate curves from its TensorBoard events, a grid of its "
            "sample images, and a health check of every saved adapter (NaN/inf, never-trained modules, update "
            "norm per U-Net block). RUN is a run record folder, an output_dir (its newest run) or a config. "
            "Writes report.html (self-contained) and PNG figures; a run in progress reports what exists so far."
        ),
    )
    def report(
        run: Path = typer.Argument(
            ..., help="Run record folder (<output_dir>/loratrain-runs/...), output_dir or config."
        ),
        output: Optional[Path] = typer.Option(
            None,
            "--output",
            "-o",
            help=f"Folder for report.html and the PNGs. Default: <record>/{REPORT_FOLDER}, "
            f"or <output_dir>/{NO_RECORD_FOLDER} without a record.",
        ),
        json_out: bool = typer.Option(
            False,
            "--json",
            help="Print the numbers behind the figures as JSON (writes the page too only when -o is given).",
        ),
        open_: bool = typer.Option(False, "--open", help="Open report.html in the default browser."),
    ) -> int:
        return run_report(run, output, json_out, open_)


def default_folder(info) -> Path:
    if info.record_folder is not None:
        return info.record_folder / REPORT_FOLDER
    return info.output_dir / NO_RECORD_FOLDER


def run_report(run: Path, output: Optional[Path], json_out: bool, open_: bool) -> int:
    from loratrain.commands._output import print_json
    from loratrain.errors import ConfigError, Problem
    from loratrain.report.build import build
    from loratrain.report.figures import THUMB
    from loratrain.report.run import locate

    _needs(json_out and output is None)
    info = locate(run)
    page = not json_out or output is not None
    folder = output if output is not None else default_folder(info)
    if page and folder.exists() and not folder.is_dir():
        raise ConfigError(
            [
                Problem(
                    "exists and is not a folder", key="--output", file=str(folder), fix="give a folder for the report"
                )
            ]
        )
    report = build(info, thumbnails=THUMB if page else None, cache_dir=folder / CACHE_FOLDER if page else None)
    if json_out:
        print_json(report.to_json())
        if output is None:
            return 0
    from loratrain.report import html

    try:
        written = html.write(report, folder)
    except OSError as exc:
        raise ConfigError(
            [
                Problem(
                    f"cannot write the report: {exc.strerror or exc}",
                    key="--output",
                    file=str(folder),
                    fix="give a folder you can write to with -o",
                )
            ]
        ) from None
    if not json_out:
        _summary(report, written)
    if open_:
        import webbrowser

        webbrowser.open(written["html"].resolve().as_uri())
    return 0


def _needs(json_only: bool, verb: str = "report") -> None:
    """The report extra's packages (matplotlib only for the figures); a missing one is one line naming the extra."""
    from loratrain.errors import require_extra

    require_extra(verb, "report", without=("matplotlib",) if json_only else ())


def _summary(report, written) -> None:
    echo = typer.echo
    c = report.curves
    if c.reason:
        echo(f"curves: none ({c.reason})")
    else:
        echo(
            f"curves: {len(c.series)} series up to step {c.last_step}"
            + (f", resumed at step {', '.join(map(str, c.resumes))}" if c.resumes else "")
        )
    g = report.grid
    echo(
        f"samples: {len(g.cells)} in {len(g.rows)} prompts x {len(g.columns)} columns"
        if g.cells
        else f"samples: none ({g.reason})"
    )
    bad = [h for h in report.saves if not h.ok]
    echo(f"saves: {len(report.saves)}, {len(bad)} flagged")
    launches = report.run.launches if report.run.record else []
    if len(launches) > 1:
        echo(f"launches: {len(launches)} (a resumed run: its curves, samples and saves are all above)")
    for h in bad:
        echo(f"  {h.path.name}: {'; '.join(h.flags)}")
    if report.cause:
        echo(f"cause: {report.cause}")
    for note in report.notes:
        echo(f"note: {note}")
    echo(f"report: {written['html']}")
