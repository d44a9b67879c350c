"""Remove the copy of the script's stderr that a newer `accelerate launch` prints again when the script fails.

accelerate 1.16.0's simple launcher passes the script's stderr through live (nothing is lost or delayed) and, when
the script fails, also raises `CalledProcessError(...) from RuntimeError(<the last 512 KiB of that stderr>)`, so the
log ends with the script's stderr a second time, after a line starting `RuntimeError: `, then the launcher's own
traceback. accelerate 1.6.0 (sd-scripts' pin) prints only the traceback. Read as it is, the second copy would show
the script's final exception twice, with the progress bar replayed in between (docs/run.md, "Two accelerate
launchers"). Only this exact shape is removed; any other text is returned unchanged.
"""

from __future__ import annotations

import re

CHAINED = (
    "\n\nThe above exception was the direct cause of the following exception:\n\nTraceback (most recent call last):\n"
)
ECHO_HEAD = "\nRuntimeError: "


def _lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]


def _is_copy_of_the_end(echo: str, before: str) -> bool:
    """Whether the echo's lines appear, in order, in `before`, its last line being `before`'s last line. stdout may be
    interleaved, even sharing a line with the script's stderr, and the echo's first line may start mid-line. An echo
    too short to tell is not recognised: the text is then kept as it is."""
    wanted = _lines(echo)
    seen = _lines(before)
    if not wanted or not seen or wanted[-1] != seen[-1]:
        return False
    rest = iter(reversed(seen))
    for i, line in reversed(list(enumerate(wanted))):
        if not any(other.endswith(line) or (i > 0 and other.startswith(line)) for other in rest):
            return False
    return True


def drop_launcher_echo(text: str) -> str:
    """`text` without accelerate's re-printed stderr tail, keeping the launcher's traceback as 1.6.0 prints it."""
    cut = text.rfind(CHAINED)
    if cut < 0:
        return text
    after = text[cut + len(CHAINED) :]
    if "accelerate" not in after or "CalledProcessError" not in after:
        return text
    # The echo starts at one of the `RuntimeError: ` lines before the chain; the script's own stderr may hold more
    # of them. The right one is the earliest whose text after it repeats the end of the text before it.
    found = None
    start = cut
    while (start := text.rfind(ECHO_HEAD, 0, start)) >= 0:
        if _is_copy_of_the_end(text[start + len(ECHO_HEAD) : cut], text[:start]):
            found = start
    if found is None:
        return text
    return text[: found + 1] + "Traceback (most recent call last):\n" + after
