"""Watch a training run through its progress lines: stop on a NaN/inf loss, warn on slow steps and stalls.

The watchdog is a runner sink that sits in front of the display: it reads the same tqdm lines the
progress bar reads (launch.progress.parse_progress), passes every byte on unchanged, and keeps
what it saw. The runner calls `poll()` from its main loop (about 20 times a second); poll returns a
reason when the run should be stopped, which the runner turns into the usual Ctrl-C and escalation.

- NaN or inf loss: sd-scripts prints a moving average (`avr_loss`), so one NaN step makes every
  later average NaN. The first logged step whose loss is not finite is recorded and, with
  on_nan="stop", the stop is requested at once; the training script gets the SIGINT within the
  next poll, well within 3 logged steps.
- Slow steps: seconds per step measured between progress lines by the clock (tqdm's own rate is an
  average over the whole run, smoothing=0 in sd-scripts). When the median of the last 3 intervals
  is above 3x the median of the earlier ones (at least 5 of them), one warning. A single slow step
  (a sample image, a checkpoint save) does not trigger it.
- Stall: no progress line (of any bar) for `stall_s` seconds while the process lives: one warning.

Every event goes to `events` (for the run record) and to `on_event` (for the screen), from poll,
so the main thread prints them.
"""

from __future__ import annotations

import codecs
import datetime as dt
import math
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from loratrain.launch.progress import StepProgress, _segments, parse_progress

ON_NAN_CHOICES = ("stop", "warn")
DEFAULT_STALL_S = 900.0
SLOW_FACTOR = 3.0
SLOW_MIN_HISTORY = 5
SLOW_WINDOW = 3

NAN_ADVICE = (
    "usually a learning rate that is too high (lower learning_rate/unet_lr, or use warmup), fp16 "
    "overflowing in the SDXL VAE (set no_half_vae, or use bf16), or a broken image or caption in "
    "the dataset"
)
SLOW_ADVICE = (
    "usually GPU memory spilling into host memory (the driver's system-memory fallback) or a GPU that "
    "throttles (heat, power); check nvidia-smi for memory use and clocks"
)
STALL_ADVICE = (
    "the process is alive but silent: it may be stuck on a network filesystem, a download, a "
    "deadlocked data loader (try max_data_loader_n_workers = 0) or a multi-GPU collective"
)


@dataclass
class WatchSettings:
    on_nan: str = "stop"  # "stop" or "warn"
    stall_s: float | None = DEFAULT_STALL_S  # None or 0: no stall warning
    slow_factor: float = SLOW_FACTOR


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass
class Watchdog:
    """A runner sink (feed/close) with a `poll()` for the runner's loop."""

    inner: Any = None  # the display sink the bytes go on to
    settings: WatchSettings = field(default_factory=WatchSettings)
    on_event: Callable[[dict], None] | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._rest = ""
        self._lock = threading.Lock()
        self.events: list[dict] = []
        self._undelivered: list[dict] = []
        self._stop: str | None = None
        self._stop_given = False
        self.last: StepProgress | None = None
        self.nan_step: int | None = None
        self._started = self.clock()
        self._last_progress = self._started
        self._last_step_time: float | None = None
        self._intervals: list[float] = []
        self._slow_warned = False
        self._stall_warned = False

    # --- the sink side (reader thread) ---
    def feed(self, data: bytes) -> None:
        try:
            segments, self._rest = _segments(self._rest + self._decoder.decode(data))
            for text, _end in segments:
                self._line(text)
            if self._rest:
                p = parse_progress(self._rest)
                if p is not None:
                    self._progress(p)
        finally:
            if self.inner is not None:
                self.inner.feed(data)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    def _line(self, text: str) -> None:
        p = parse_progress(text)
        if p is not None:
            self._progress(p)

    def _progress(self, p: StepProgress) -> None:
        now = self.clock()
        with self._lock:
            self._last_progress = now
            if p.desc != "steps":
                return
            previous = self.last
            if previous is not None and p.step == previous.step and p.avr_loss == previous.avr_loss:
                return  # the same line again (a redraw)
            self.last = p
            if p.avr_loss is not None and not math.isfinite(p.avr_loss) and self.nan_step is None:
                self.nan_step = p.step
                what = "NaN" if math.isnan(p.avr_loss) else "infinite"
                stop = self.settings.on_nan == "stop"
                self._event(
                    "nan",
                    p.step,
                    f"the loss became {what} at step {p.step}"
                    + ("; stopping the run" if stop else " (--on-nan warn: training goes on)"),
                    NAN_ADVICE,
                )
                if stop:
                    self._stop = f"loss became {what} at step {p.step}"
            if previous is not None and p.step > previous.step and self._last_step_time is not None:
                per_step = (now - self._last_step_time) / (p.step - previous.step)
                self._intervals.append(per_step)
                self._check_slow(p.step)
            if previous is None or p.step != previous.step:
                self._last_step_time = now

    def _check_slow(self, step: int) -> None:
        if self._slow_warned or len(self._intervals) < SLOW_MIN_HISTORY + SLOW_WINDOW:
            return
        earlier = statistics.median(self._intervals[:-SLOW_WINDOW])
        recent = statistics.median(self._intervals[-SLOW_WINDOW:])
        if earlier > 0 and recent > self.settings.slow_factor * earlier:
            self._slow_warned = True
            self._event(
                "slow",
                step,
                f"steps got slower: {recent:.2f}s per step now, {earlier:.2f}s before "
                f"(over {self.settings.slow_factor:g}x) at step {step}",
                SLOW_ADVICE,
                seconds_per_step=round(recent, 3),
                earlier_seconds_per_step=round(earlier, 3),
            )

    def _event(self, kind: str, step: int | None, message: str, advice: str, **extra) -> None:
        event = {"kind": kind, "step": step, "time": _now_iso(), "message": message, "advice": advice, **extra}
        self.events.append(event)
        self._undelivered.append(event)

    # --- the runner side (main thread) ---
    def poll(self) -> str | None:
        """Deliver new events; return the stop reason once when the run should stop."""
        with self._lock:
            stall = self.settings.stall_s
            if stall and not self._stall_warned and self.clock() - self._last_progress >= stall:
                self._stall_warned = True
                step = self.last.step if self.last else None
                self._event(
                    "stall",
                    step,
                    f"no progress for {stall:g}s" + (f" after step {step}" if step is not None else " since the start"),
                    STALL_ADVICE,
                )
            new, self._undelivered = self._undelivered, []
            reason = None
            if self._stop and not self._stop_given:
                self._stop_given = True
                reason = self._stop
        for event in new:
            if self.on_event is not None:
                try:
                    self.on_event(event)
                except Exception:  # the screen is best effort
                    pass
        return reason


def last_progress_in_log(text: str) -> StepProgress | None:
    """The last "steps" progress in a log (what the record keeps as steps done and last loss)."""
    segments, rest = _segments(text)
    found = None
    for part in [s for s, _ in segments] + [rest]:
        p = parse_progress(part)
        if p is not None and p.desc == "steps":
            found = p
    return found
