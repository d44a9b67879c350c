"""Several configs run one after another: check them all first, then launch each in order.

Every config is prepared (loaded, rendered, preflighted) before the first launch, so a broken one is
found now, not hours later; by default nothing is launched then (`keep_going` runs the others). Each is
prepared again right before its launch, since the runs before it may have changed the outputs. A run
that was interrupted (Ctrl-C, SIGTERM, `loratrain stop`) ends the queue; a failed one ends it unless
`keep_going`. The callers give the steps: `prepare(config, quiet)` and `launch(prepared)`, which returns
(RunResult, RunRecord); `say` and `on_error` are how the command tells the user. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from loratrain.errors import EXIT_RUNTIME, LoratrainError


@dataclass
class Outcome:
    config: str
    status: str  # succeeded / failed / interrupted / stopped / invalid / not started
    exit_code: int | None = None
    duration_s: float | None = None
    record: Any = None  # the record folder (Path) once launched
    interrupted: bool = False  # a signal reached the run (Ctrl-C, SIGTERM, `loratrain stop`)


@dataclass
class QueueResult:
    outcomes: list[Outcome] = field(default_factory=list)
    exit_code: int = 0
    launched: bool = False  # False: a config had errors and nothing was launched


def exit_code_of(result, rec) -> int:
    """A launch's exit status, except that a run recorded as failed (exit 0 without training) is a runtime failure."""
    if result.exit_code == 0 and rec.data.get("status") == "failed":
        return EXIT_RUNTIME
    return result.exit_code


def _check_all(configs, prepare, on_error, say) -> tuple[list[Outcome], list[bool]]:
    outcomes = [Outcome(config, "not started") for config in configs]
    ready = []
    for i, config in enumerate(configs):
        say(f"checking {config}")
        try:
            prepare(config, False)
            ready.append(True)
        except LoratrainError as exc:
            on_error(exc)
            outcomes[i].status, outcomes[i].exit_code = "invalid", exc.exit_code
            ready.append(False)
    return outcomes, ready


def _launch_one(config, prepare, launch, outcome: Outcome, on_error) -> bool:
    """Prepare again and launch; fill the outcome. False when the config failed to prepare."""
    try:
        prepared = prepare(config, True)  # again: the runs before may have changed the outputs
        result, rec = launch(prepared)
    except LoratrainError as exc:
        on_error(exc)
        outcome.status, outcome.exit_code = "invalid", exc.exit_code
        return False
    outcome.exit_code, outcome.duration_s, outcome.record = exit_code_of(result, rec), result.duration_s, rec.folder
    outcome.interrupted = bool(result.interrupted)
    outcome.status = rec.data.get("status") or (
        "interrupted" if result.interrupted else ("succeeded" if result.exit_code == 0 else "failed")
    )
    return True


def run_queue(
    configs: Sequence[str],
    prepare: Callable[[str, bool], Any],
    launch: Callable[[Any], tuple[Any, Any]],
    *,
    keep_going: bool = False,
    say: Callable[[str], None] = lambda _text: None,
    on_error: Callable[[LoratrainError], None] = lambda _exc: None,
) -> QueueResult:
    outcomes, ready = _check_all(configs, prepare, on_error, say)
    if not all(ready) and not keep_going:
        say("nothing was launched because a config has errors (--keep-going runs the others)")
        return QueueResult(outcomes, next(o.exit_code for o in outcomes if o.exit_code) or 2, launched=False)
    first_failure = 0
    for i, config in enumerate(configs):
        outcome = outcomes[i]
        if not ready[i]:
            first_failure = first_failure or outcome.exit_code or 1
            continue
        say(f"run {i + 1}/{len(configs)}: {config}")
        if not _launch_one(config, prepare, launch, outcome, on_error):
            first_failure = first_failure or outcome.exit_code or 1
            if not keep_going:
                break
            continue
        if outcome.interrupted:
            first_failure = outcome.exit_code or 130
            break  # the user or the scheduler wants everything to stop
        if outcome.exit_code:
            first_failure = first_failure or outcome.exit_code
            if not keep_going:
                break
    return QueueResult(outcomes, first_failure, launched=True)
