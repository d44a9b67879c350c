"""Read sd-scripts' tqdm progress lines and show them as a rich progress bar.

sd-scripts' training loop draws a tqdm bar described "steps" and sets the postfix to the moving
average loss (plus "Keys Scaled"/"Average key norm" with --scale_weight_norms). tqdm redraws it in
place with carriage returns, e.g.

    steps:  12%|█▏        | 48/400 [01:02<07:30,  1.30s/it, avr_loss=0.0812]

Only the bar whose description is "steps" drives the display; validation bars and every other line
are printed as they come.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_BAR = re.compile(
    r"^(?:(?P<desc>[^\r\n|]*?):)?\s*(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)"
    r"\s*\[(?P<elapsed>[^<\]]*)<(?P<remaining>[^,\]]*)(?:,\s*(?P<rate>[^,\]]*))?(?P<postfix>[^\]]*)\]\s*$"
)
_POSTFIX_ITEM = re.compile(r"\s*([^=,]+?)=([^,]*)")


@dataclass(frozen=True)
class StepProgress:
    step: int
    total: int
    avr_loss: float | None
    speed: str | None  # as tqdm prints it: "1.30s/it" or "2.41it/s"
    eta: str | None  # time left as tqdm prints it ("07:30"); None while unknown ("?")
    elapsed: str
    desc: str = "steps"

    @property
    def seconds_per_step(self) -> float | None:
        if not self.speed:
            return None
        m = re.fullmatch(r"([\d.]+)\s*(s/it|it/s)", self.speed)
        if not m:
            return None
        value = float(m.group(1))
        if m.group(2) == "s/it":
            return value
        return 1.0 / value if value else None


def parse_progress(line: str) -> StepProgress | None:
    """The progress in one tqdm line, or None when the line is something else."""
    m = _BAR.match(line.strip("\r\n"))
    if not m:
        return None
    postfix = {k.strip(): v.strip() for k, v in _POSTFIX_ITEM.findall(m.group("postfix") or "")}
    loss = None
    if "avr_loss" in postfix:
        try:
            loss = float(postfix["avr_loss"])
        except ValueError:
            loss = None
    rate = (m.group("rate") or "").strip()
    remaining = m.group("remaining").strip()
    return StepProgress(
        step=int(m.group("n")),
        total=int(m.group("total")),
        avr_loss=loss,
        speed=None if not rate or rate.startswith("?") else rate,
        eta=None if not remaining or remaining == "?" else remaining,
        elapsed=m.group("elapsed").strip(),
        desc=(m.group("desc") or "").strip(),
    )


def _segments(buffer: str) -> tuple[list[tuple[str, str]], str]:
    """Split text into (segment, terminator) pairs on \\r and \\n; return the unfinished rest."""
    out: list[tuple[str, str]] = []
    start = 0
    for i, ch in enumerate(buffer):
        if ch in "\r\n":
            out.append((buffer[start:i], ch))
            start = i + 1
    return out, buffer[start:]


class ProgressDisplay:
    """A runner sink: a rich bar for the "steps" progress, every other line printed above it."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = console or Console(highlight=False)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._rest = ""
        self.last: StepProgress | None = None
        self._progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]}"),
            TextColumn("left {task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self._task = None
        self._started = False

    def _show(self, p: StepProgress) -> None:
        self.last = p
        fields = {
            "loss": f"{p.avr_loss:.4f}" if p.avr_loss is not None else "-",
            "speed": p.speed or "-",
            "eta": p.eta or "?",
        }
        if not self._started:
            self._progress.start()
            self._started = True
        if self._task is None:
            self._task = self._progress.add_task("steps", total=p.total, completed=p.step, **fields)
        else:
            self._progress.update(self._task, total=p.total, completed=p.step, **fields)

    def _line(self, text: str) -> None:
        if self._started:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            self.console.print(text, markup=False, highlight=False)

    def feed(self, data: bytes) -> None:
        segments, self._rest = _segments(self._rest + self._decoder.decode(data))
        for text, end in segments:
            p = parse_progress(text)
            if p is not None and p.desc == "steps":
                self._show(p)
            elif p is not None and end == "\r":
                continue  # other bars (caching, validation): only their final state, ended by \n, is shown
            elif text.strip():
                self._line(text)
        pending = parse_progress(self._rest) if self._rest else None
        if pending is not None and pending.desc == "steps":
            self._show(pending)

    def close(self) -> None:
        tail = self._rest + self._decoder.decode(b"", final=True)
        self._rest = ""
        if tail.strip() and parse_progress(tail) is None:
            self._line(tail)
        if self._started:
            self._progress.stop()
            self._started = False
