"""One placement of a problem for every verb: `file:line: table.key`.

A problem found on sd-scripts' argument names (the plan's scan, preflight) gets the config's dotted key
(`dataset.train_data_dir`) and the line it was written on, read once with the config (LoadedConfig.lines).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

from loratrain.errors import Problem
from loratrain.sdscripts import flags


def place_problems(problems: list[Problem], path: Path, lines: Mapping[str, int]) -> list[Problem]:
    """Give the config's own preflight problems its dotted key (`dataset.train_data_dir`) and line.

    `lines` are the config's key positions, read once with it (LoadedConfig.lines). Problems about another
    file (a dataset_config, a prompt file, an image folder) keep theirs.
    """
    from loratrain import toml_positions
    from loratrain.schema.root import group_of

    placed = []
    for p in problems:
        if p.file and p.file != str(path):
            placed.append(p)
            continue
        key = p.key
        if key and "." not in key and flags.get(key) is not None:  # a bare sd-scripts dest
            key = f"{group_of(key)}.{key}"
        line = p.line if p.line is not None else (toml_positions.line_of(lines, key) if key else None)
        placed.append(dataclasses.replace(p, key=key, file=str(path), line=line))
    return placed
