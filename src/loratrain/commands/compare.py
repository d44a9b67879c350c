"""`loratrain compare DIR|RUN...`: rank runs by their last validation loss (else training loss), put their
samples side by side (run x step by prompt) and their losses on one plot, in one self-contained page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from loratrain.errors import EXIT_CONFIG

DEFAULT_FOLDER = "compare"  # inside a sweep folder
LOOSE_FOLDER = "loratrain-compare"  # in the current folder when runs are given one by one


def register(app: typer.Typer) -> None:
    @app.command(
        "compare",
        help="Compare training runs: a sweep folder (all its runs) or runs given one by one (record folder, "
        "output_dir or config). Ranks them by the last validation loss (else training loss, said so), shows "
        "a sample grid (run x step by prompt; prompts or seeds that differ between runs are flagged) and all "
        "losses on one plot, in one self-contained compare.html.",
    )
    def compare(
        targets: list[Path] = typer.Argument(..., help="A sweep folder, or runs (record folder, output_dir, config)."),
        as_json: bool = typer.Option(
            False, "--json", help="Print {ranking, grid, notes} as JSON (writes the page only with --html)."
        ),
        html_dir: Optional[Path] = typer.Option(
            None,
            "--html",
            help=f"Folder for compare.html. Default: <sweep>/{DEFAULT_FOLDER}, or ./{LOOSE_FOLDER} for loose runs.",
        ),
    ) -> int:
        from loratrain.errors import ConfigError

        try:
            return _compare(targets, as_json, html_dir)
        except ConfigError as exc:
            if not as_json:
                raise
            from loratrain.commands._output import print_json
            from loratrain.commands.sweep import failure_json

            print_json(failure_json(exc.problems))
            return EXIT_CONFIG


def _compare(targets: list[Path], as_json: bool, html_dir: Optional[Path]) -> int:
    import datetime as dt

    from loratrain.commands._output import print_json
    from loratrain.commands.report import _needs
    from loratrain.errors import ConfigError, Problem
    from loratrain.report import compare as compare_mod
    from loratrain.report.figures import THUMB
    from loratrain.sweep.record import is_sweep

    page = not as_json or html_dir is not None
    _needs(not page, "compare")
    found = compare_mod.locate(targets)
    if len(found) < 2:
        raise ConfigError(
            [
                Problem(
                    f"found {len(found)} run to compare",
                    key="RUN",
                    file=str(targets[0]),
                    fix="give a sweep folder or two runs or more (`loratrain report` shows one run)",
                )
            ]
        )
    folder = html_dir
    if folder is None:
        folder = targets[0] / DEFAULT_FOLDER if len(targets) == 1 and is_sweep(targets[0]) else Path(LOOSE_FOLDER)
    if page and folder.exists() and not folder.is_dir():
        raise ConfigError([Problem("exists and is not a folder", key="--html", file=str(folder), fix="give a folder")])
    cmp = compare_mod.compare(found, thumbnails=THUMB if page else None)
    if as_json:
        print_json(cmp.to_json())
    if not page:
        return 0
    from loratrain.report import compare_html

    written = compare_html.write(cmp, folder, dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    if not as_json:
        for note in cmp.notes:
            typer.echo(f"note: {note}")
        for place, c in enumerate(cmp.ranking, start=1):
            value = c.last(cmp.metric) if cmp.metric else None
            values = ", ".join(f"{k}={v}" for k, v in c.values.items())
            shown = f"{value:.5g}" if value is not None else "-"
            typer.echo(f"{place}. {c.name}  {cmp.metric or 'no loss'} {shown}  ({values})")
        typer.echo(f"compare: {written['html']}")
    return 0
