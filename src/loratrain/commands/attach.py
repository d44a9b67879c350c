"""`loratrain attach RUN`: the progress bar of a run started elsewhere (`run --detach`, another terminal).

The same display as a foreground run reads the run's train.log from its recent part on; Ctrl-C detaches
from it again and leaves the run running (`loratrain stop RUN` stops it).
"""

from __future__ import annotations

import typer

from loratrain.commands.logs import RUN_HELP

TAIL_BYTES = 64 * 1024  # where the display starts: the recent output, not hours of it


def register(app: typer.Typer) -> None:
    @app.command(
        "attach", help="Show a running run's progress bar and output; Ctrl-C detaches again without stopping it."
    )
    def attach(run: str = typer.Argument(..., help=RUN_HELP)) -> int:
        from loratrain.launch import live, runid
        from loratrain.launch.progress import ProgressDisplay

        stored = runid.find_run(run)
        log = stored.folder / str(stored.data.get("log") or "train.log")
        state = live.view(stored)
        if state["status"] != "running":
            typer.echo(f"loratrain: {stored.run_id} is not running ({state['status']}); its log:", err=True)
        try:
            size = log.stat().st_size
        except OSError:
            size = 0
        display = ProgressDisplay()
        typer.echo(f"loratrain: attached to {stored.run_id} (Ctrl-C detaches; the run goes on)", err=True)
        try:
            for chunk in live.follow(log, lambda: live.still_running(stored.folder), start=max(0, size - TAIL_BYTES)):
                display.feed(chunk)
        except KeyboardInterrupt:
            display.close()
            typer.echo(
                f"loratrain: detached from {stored.run_id}; it goes on (loratrain stop {stored.run_id})", err=True
            )
            return 0
        display.close()
        final = live.view(runid.find_run(str(stored.folder)))
        typer.echo(f"loratrain: {stored.run_id} {final['status']}", err=True)
        return 0
