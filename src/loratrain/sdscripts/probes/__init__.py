"""Scripts loratrain runs in the training interpreter, and the one way it runs them and reads their answer.

Each script (`<name>.py` beside this file) is run by path, `python <script> ARGS...`, so it imports nothing
from loratrain (the training environment need not have it) beyond `probe_common.py` from its own folder. It
prints `LORATRAIN-STEP <what>` before each risky import and one `LORATRAIN-RESULT <json>` line at the end;
loratrain reads the last result line, and the last step line names what was loading when a script died.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from loratrain.errors import Problem
from loratrain.sdscripts.probes.probe_common import RESULT_MARK, STEP_MARK

FOLDER = Path(__file__).resolve().parent


def script(name: str) -> Path:
    """The path of probe script `name` (without .py)."""
    return FOLDER / f"{name}.py"


@dataclass
class Ended:
    """What a probe script left behind: its answer (None when it printed none) and how it ended."""

    result: Any
    returncode: int
    stdout: str
    stderr: str
    steps: list[str] = field(default_factory=list)

    def how(self) -> str:
        code = self.returncode
        return f"died with exit status {code}" if code >= 0 else f"was killed by signal {-code}"

    def tail(self, lines: int = 2, chars: int = 300) -> str:
        return " ".join(self.stderr.strip().splitlines()[-lines:])[-chars:]


class TimedOut(Exception):
    pass


def _read(stdout: str, stderr: str, returncode: int) -> Ended:
    lines = stdout.splitlines()
    results = [line for line in lines if line.startswith(RESULT_MARK)]
    result = json.loads(results[-1][len(RESULT_MARK) :]) if results else None
    steps = [line[len(STEP_MARK) :] for line in lines if line.startswith(STEP_MARK)]
    return Ended(result, returncode, stdout, stderr, steps)


class Started:
    """A probe script started in `python`; `wait()` collects it. OSError from the start is kept for `wait`."""

    def __init__(self, python: str, name: str, args: Sequence[str], env: Mapping[str, str] | None = None):
        self.python = python
        self.error: OSError | None = None
        self.proc: subprocess.Popen | None = None
        try:
            self.proc = subprocess.Popen(
                [python, str(script(name)), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                env=dict(env) if env is not None else None,
            )
        except OSError as exc:
            self.error = exc

    def wait(self, timeout: float) -> Ended:
        """The script's output. Raises the start's OSError, or TimedOut (the script is killed)."""
        if self.proc is None:
            raise self.error or OSError("not started")
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise TimedOut(timeout) from None
        return _read(stdout, stderr, self.proc.returncode)


def run(
    python: str, name: str, args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> Ended:
    """Run probe script `name` in `python` and wait for it (see `Started.wait`)."""
    return Started(python, name, args, env).wait(timeout)


def request_arg(request: Mapping[str, Any]) -> str:
    return json.dumps(dict(request))


def cannot_run(python: str, exc: OSError) -> Problem:
    """The one message for a training interpreter that does not start at all."""
    return Problem(
        f"the training interpreter {python} cannot be run: {exc.strerror or exc}",
        key="python",
        value=python,
        fix="set `python` in the config to the interpreter of your sd-scripts environment",
    )


def failed_to_start(python: str, ended: Ended) -> Problem:
    """The one message for an interpreter that ran but gave no answer."""
    return Problem(
        f"the training interpreter {python} failed to start: {ended.tail(chars=300) or ended.how()}",
        key="python",
        value=python,
        fix="set `python` in the config to a working Python 3 interpreter",
    )
