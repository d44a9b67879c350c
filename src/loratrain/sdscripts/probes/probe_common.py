"""What every probe script shares: the marked lines loratrain reads, and finding a module without importing it.

Runs in the training interpreter (any Python 3.8+, none of loratrain installed): standard library only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

RESULT_MARK = "LORATRAIN-RESULT "
STEP_MARK = "LORATRAIN-STEP "


def step(name: str) -> None:
    """Say what comes next, so a crash (a segfault in a native library) names its culprit."""
    sys.stdout.write(STEP_MARK + name + "\n")
    sys.stdout.flush()


def answer(result: Any) -> None:
    """The one line loratrain reads: the mark, then the result as JSON."""
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def request() -> Any:
    """The JSON request loratrain passes as the first argument."""
    return json.loads(sys.argv[1])


def findable(name: str) -> bool:
    """Whether a dotted module is on disk, without importing its packages (lycoris/__init__ imports torch)."""
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    places = list(spec.submodule_search_locations or [])
    for part in parts[1:]:
        found = None
        for place in places:
            candidate = os.path.join(place, part)
            if os.path.isdir(candidate):
                found = [candidate]
                break
            try:
                names = os.listdir(place)
            except OSError:
                continue
            if part + ".py" in names or any(n.startswith(part + ".") and n.endswith((".so", ".pyd")) for n in names):
                found = []
                break
        if found is None:
            return False
        places = found
    return True


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`, as the reports quote an exception."""
    text = str(exc).strip()
    return "%s: %s" % (type(exc).__name__, text.splitlines()[0] if text else "")
