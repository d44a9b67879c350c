"""launch/queue.py: check every config first, then launch in order; stop at a failure or an interruption."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from loratrain.errors import ConfigError, Problem
from loratrain.launch.queue import run_queue
from loratrain.launch.runner import RunResult


def _steps(codes: dict[str, int], broken: tuple[str, ...] = (), interrupted: tuple[str, ...] = ()):
    launched: list[str] = []

    def prepare(config: str, quiet: bool):
        if config in broken:
            raise ConfigError([Problem(f"{config} is broken")])
        return config

    def launch(config: str):
        launched.append(config)
        code = codes.get(config, 0)
        signal = 2 if config in interrupted else None
        result = RunResult(exit_code=code, child_code=code, received_signal=signal, duration_s=1.0)
        status = "interrupted" if signal else ("succeeded" if code == 0 else "failed")
        return result, SimpleNamespace(folder=Path(f"/runs/{config}"), data={"status": status})

    return prepare, launch, launched


def test_a_broken_config_stops_the_queue_before_anything_runs_unless_keep_going():
    prepare, launch, launched = _steps({}, broken=("b",))
    said: list[str] = []
    result = run_queue(["a", "b", "c"], prepare, launch, say=said.append)
    assert not result.launched and launched == [] and result.exit_code == 2
    assert [o.status for o in result.outcomes] == ["not started", "invalid", "not started"]
    assert said[-1].startswith("nothing was launched")
    result = run_queue(["a", "b", "c"], prepare, launch, keep_going=True)
    assert launched == ["a", "c"] and result.exit_code == 2
    assert [o.status for o in result.outcomes] == ["succeeded", "invalid", "succeeded"]


def test_a_failure_ends_the_queue_and_an_interruption_ends_it_even_with_keep_going():
    prepare, launch, launched = _steps({"a": 1})
    result = run_queue(["a", "b"], prepare, launch)
    assert launched == ["a"] and result.exit_code == 1 and result.outcomes[1].status == "not started"
    prepare, launch, launched = _steps({"a": 130}, interrupted=("a",))
    result = run_queue(["a", "b"], prepare, launch, keep_going=True)
    assert launched == ["a"] and result.exit_code == 130 and result.outcomes[0].interrupted
    assert result.outcomes[0].record == Path("/runs/a")
