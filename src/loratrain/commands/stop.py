"""`loratrain stop RUN`: stop a run as Ctrl-C would in its own terminal.

The run's supervisor gets SIGINT and does what a foreground run does on Ctrl-C: SIGINT to the training
processes, SIGTERM after the grace period, SIGKILL after another; the record is closed as interrupted. A queue
stops as a whole. A run that has already ended is said so (exit 0).
"""

from __future__ import annotations

from typing import Optional

import typer

from loratrain.commands.logs import RUN_HELP


def _say(text: str) -> None:
    typer.echo(f"loratrain: {text}", err=True)


def register(app: typer.Typer) -> None:
    @app.command(
        "stop", help="Stop a run gracefully, like Ctrl-C in its terminal (SIGINT, then SIGTERM, then SIGKILL)."
    )
    def stop(
        run: str = typer.Argument(..., help=RUN_HELP),
        timeout: Optional[float] = typer.Option(
            None, "--timeout", min=0.0, help="Seconds to wait for the run to end (default: twice its grace plus 30)."
        ),
    ) -> int:
        import signal
        import socket
        import time

        from loratrain.errors import EXIT_RUNTIME, ConfigError, Problem
        from loratrain.launch import live, runid

        stored = runid.find_run(run)
        state = live.view(stored)
        if state["status"] != "running":
            left = _stop_leftovers(state)
            when = stored.data.get("finished") or state.get("died_at") or "?"
            _say(f"{stored.run_id} has already ended: {state['status']} ({when}); nothing to stop{left}")
            return 0
        raw = stored.data.get("supervisor")
        sup: dict = raw if isinstance(raw, dict) else {}
        if sup.get("host") != socket.gethostname():
            raise ConfigError(
                [
                    Problem(
                        f"{stored.run_id} runs on {sup.get('host')}, not on this machine",
                        key="RUN",
                        value=run,
                        fix=f"run `loratrain stop {stored.run_id}` on {sup.get('host')}",
                    )
                ]
            )
        pid, grace = state["pid"], sup.get("grace_s")
        grace = float(grace) if isinstance(grace, (int, float)) and not isinstance(grace, bool) else 30.0
        wait = timeout if timeout is not None else 2 * grace + 30.0
        live.request_stop(stored.folder)
        try:
            import os

            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        except PermissionError:
            from loratrain.errors import RuntimeFailure

            raise RuntimeFailure(
                f"not allowed to signal {stored.run_id}'s supervisor (pid {pid}): another user started it"
            ) from None
        _say(
            f"sent SIGINT to {stored.run_id} (supervisor pid {pid}); it stops its training processes (grace {grace:g}s)"
        )
        deadline = time.monotonic() + wait
        start = sup.get("pid_start") if isinstance(sup.get("pid_start"), int) else None
        while live.process_alive(pid, start):
            if time.monotonic() >= deadline:
                _say(
                    f"{stored.run_id} is still stopping after {wait:g}s; `loratrain stop {stored.run_id}` again escalates"
                )
                return EXIT_RUNTIME
            time.sleep(0.1)
        final = live.view(runid.find_run(str(stored.folder)))
        steps = f" after step {final['step']}" if final.get("step") is not None else ""
        _say(f"stopped {stored.run_id}: {final['status']}{steps}; record: {stored.folder}")
        return 0


def _stop_leftovers(state: dict) -> str:
    """A run whose supervisor died but whose training group somehow lives on (no tether): stop that group."""
    import os
    import signal
    import time

    from loratrain.launch import live

    pgid = state.get("pgid")
    if state.get("status") != "died" or not isinstance(pgid, int) or not live.group_alive(pgid):
        return ""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            break
        deadline = time.monotonic() + wait
        while live.group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not live.group_alive(pgid):
            break
    return f"; its leftover training processes (group {pgid}) were stopped"
