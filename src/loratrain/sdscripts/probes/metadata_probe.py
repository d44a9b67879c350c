"""Run by path in the training interpreter: installed versions and findable modules, importing nothing heavy.

Request: {"dists": [...], "modules": [...], "path": sd-scripts folder or null}.
Answer: {"versions": {"python": ..., dist: version or null}, "modules": {name: bool}, "executable": ...}.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING or __package__:
    from loratrain.sdscripts.probes.probe_common import answer, findable, request
else:  # run by path: this folder is sys.path[0]
    from probe_common import answer, findable, request


def main() -> None:
    asked = request()
    if asked.get("path"):
        sys.path.insert(0, asked["path"])
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for dist in asked["dists"]:
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    modules = {name: findable(name) for name in asked["modules"]}
    answer({"versions": versions, "modules": modules, "executable": sys.executable})


if __name__ == "__main__":
    main()
