"""Line numbers of keys in a TOML file, for error messages (tomllib does not report positions).

A light scan, not a parser: it follows `[table]` / `[[array]]` headers and `key =` lines, which covers
how config files are written. Keys it cannot place fall back to their table's line.
"""

from __future__ import annotations

import re
from typing import Mapping

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_dotted(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r"""(?:"[^"]*"|'[^']*'|[^.]+)""", text)]


def key_lines(text: str) -> dict[str, int]:
    """Map "table.key" (dotted) to its 1-based line. Tables map to their header line."""
    lines: dict[str, int] = {}
    table: list[str] = []
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = False
            continue
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            table = _split_dotted(header.group(1))
            lines.setdefault(".".join(table), number)
            continue
        key = _KEY.match(line)
        if key:
            path = table + _split_dotted(key.group(1))
            lines.setdefault(".".join(path), number)
            rest = line[key.end() :]
            if rest.count('"""') == 1 or rest.count("'''") == 1:
                in_multiline = True
    return lines


def line_of(lines: Mapping[str, int], key: str) -> int | None:
    """The line of `key`, else of its nearest enclosing table."""
    parts = key.replace("[", ".[").split(".")
    while parts:
        found = lines.get(".".join(p for p in parts if not p.startswith("[")))
        if found is not None:
            return found
        parts.pop()
    return None
