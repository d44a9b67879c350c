"""`loratrain diagnose LOG`: the cause and fix of a failed training run, from any log a user has.

The log can come from `loratrain run`, the kohya_ss GUI's console, a Colab cell or a RunPod pod; `-` reads
it from stdin. The answer is launch.failures' (the one `run` records), so a pasted log and a recorded run
get the same words.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer


def _read(log: str) -> str:
    from loratrain.errors import ConfigError, Problem
    from loratrain.launch.failures import TAIL_BYTES

    if log == "-":
        data = sys.stdin.buffer.read()
        return data[-TAIL_BYTES * 2 :].decode("utf-8", errors="replace")
    from pathlib import Path

    path = Path(log)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(
            [Problem(f"{log} {what}", file=log, value=log, fix="give the log file to read, or - to read stdin")]
        )
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - TAIL_BYTES * 2))
            return f.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(
            [Problem(f"cannot read {log}: {exc.strerror or exc}", file=log, fix="check the file's permissions")]
        ) from None


def register(app: typer.Typer) -> None:
    @app.command(
        "diagnose",
        help="Name the cause of a failed training run and its fix, from its log: loratrain's train.log, the "
        "kohya_ss GUI's console, a Colab or RunPod log (LOG may be - for stdin).",
    )
    def diagnose(
        log: str = typer.Argument(..., help="The log file to read, or - for stdin."),
        exit_code: Optional[int] = typer.Option(
            None, "--exit-code", help="The training process's exit status, when known (e.g. 137 = killed)."
        ),
        as_json: bool = typer.Option(
            False,
            "--json",
            help="Print JSON: failed, cause_id, cause, fix, evidence, final_exception, last_lines.",
        ),
    ) -> int:
        from loratrain.commands._output import print_json
        from loratrain.errors import EXIT_CONFIG, EXIT_OK, ConfigError
        from loratrain.launch import failures

        try:
            text = _read(log)
        except ConfigError as exc:
            if not as_json:
                raise
            print_json({"ok": False, "problems": [p.render() for p in exc.problems]})
            return EXIT_CONFIG
        if exit_code == 0:
            found = failures.judge_clean_exit(text, _steps(text), None, False, False)
        else:
            found = failures.classify(text, exit_code)
        if as_json:
            data: dict[str, Any] = {"ok": True, "failed": found is not None}
            data.update(
                found.as_dict()
                if found
                else {"cause_id": None, "cause": "", "fix": "", "evidence": "", "final_exception": "", "last_lines": []}
            )
            print_json(data)
            return EXIT_OK
        if found is None:
            typer.echo("no failure found in this log: no final exception and no fatal line before its end")
            return EXIT_OK
        for line in found.render():
            typer.echo(line)
        if found.evidence and found.cause_id is not None:
            typer.echo(f"evidence: {found.evidence}")
        if found.final_exception and found.final_exception != found.evidence:
            typer.echo(f"final exception: {found.final_exception}")
        return EXIT_OK


def _steps(text: str) -> int:
    from loratrain.launch.watchdog import last_progress_in_log

    last = last_progress_in_log(text)
    return last.step if last else 0
