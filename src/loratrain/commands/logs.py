"""`loratrain logs RUN [-f]`: a run's training output (its record's train.log), followed live with -f."""

from __future__ import annotations

import sys

import typer

RUN_HELP = "A run id as `loratrain runs` prints it, a record folder, or an output_dir (its newest run)."


def register(app: typer.Typer) -> None:
    @app.command(
        "logs", help="Print a run's training log; -f follows it while the run goes on (Ctrl-C stops following)."
    )
    def logs(
        run: str = typer.Argument(..., help=RUN_HELP),
        follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing what the run writes until it ends."),
    ) -> int:
        from loratrain.launch import live, runid

        stored = runid.find_run(run)
        log = stored.folder / str(stored.data.get("log") or "train.log")
        out = sys.stdout.buffer
        if not follow:
            try:
                with open(log, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        out.write(block)
            except OSError as exc:
                typer.echo(f"loratrain: no log yet in {stored.folder} ({exc.strerror or exc})", err=True)
            out.flush()
            return 0
        try:
            for chunk in live.follow(log, lambda: live.still_running(stored.folder)):
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            typer.echo("\nloratrain: stopped following; the run goes on", err=True)
            return 0
        final = live.view(runid.find_run(str(stored.folder)))
        typer.echo(f"loratrain: {stored.run_id} {final['status']}", err=True)
        return 0
