"""Run by path in the training interpreter: build sd-scripts' own parser and parse the rendered arguments.

Arguments: the sd-scripts folder, the training script, the arguments as JSON. parser.error is replaced so
that a rejection comes back as data instead of exit status 2.
Answer: {"unknown": [...], "error": message or null}.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING or __package__:
    from loratrain.sdscripts.probes.probe_common import answer
else:  # run by path: this folder is sys.path[0]
    from probe_common import answer


class Rejected(Exception):
    pass


def _reject(message: str) -> NoReturn:
    raise Rejected(message)


def main() -> None:
    folder, script, argv = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    sys.path.insert(0, folder)
    os.chdir(folder)
    spec = importlib.util.spec_from_file_location("_loratrain_verify_target", script)
    if spec is None or spec.loader is None:
        raise SystemExit("cannot load " + script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser = module.setup_parser()
    parser.error = _reject
    try:
        _, unknown = parser.parse_known_args(argv)
        answer({"unknown": unknown, "error": None})
    except Rejected as exc:
        answer({"unknown": [], "error": str(exc)})


if __name__ == "__main__":
    main()
