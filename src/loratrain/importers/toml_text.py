"""Write a loratrain config as TOML text, with comments: a header, and comment lines above chosen keys.

Our own small emitter (no extra dependency): the config is at most two table levels deep and holds only
strings, booleans, numbers and flat lists, so that is all it writes. `tomllib` reads the result back.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping, Sequence

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key_text(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # shortest text that reads back as the same float ("0.0001", "1e-05")
    if isinstance(value, str):
        # JSON string escapes are a subset of TOML basic-string escapes
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _comment_lines(lines: Sequence[str]) -> list[str]:
    out = []
    for line in lines:
        for part in str(line).splitlines() or [""]:
            out.append(f"# {part}".rstrip())
    return out


def dumps(
    doc: Mapping[str, Any],
    header: Sequence[str] = (),
    comments: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """TOML text for `doc` (root scalars, then tables, then sub-tables).

    `comments` maps a dotted key ("network.network_dim", "network" for a table header) to comment lines
    written just above it.
    """
    comments = comments or {}
    out: list[str] = _comment_lines(header)
    if out:
        out.append("")

    def emit_table(path: list[str], table: Mapping[str, Any]) -> None:
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
        subtables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        if path:
            if out and out[-1] != "":
                out.append("")
            out.extend(_comment_lines(comments.get(".".join(path), ())))
            out.append("[" + ".".join(key_text(p) for p in path) + "]")
        for key, value in scalars:
            out.extend(_comment_lines(comments.get(".".join(path + [key]), ())))
            out.append(f"{key_text(key)} = {value_text(value)}")
        for key, value in subtables:
            emit_table(path + [key], value)

    emit_table([], doc)
    return "\n".join(out).rstrip("\n") + "\n"
