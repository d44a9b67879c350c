"""How long `loratrain import` takes on the guide's command, against importing accelerate's launch parser.

Why it matters: `loratrain import` reads accelerate's options from its own small table instead of calling
`accelerate.commands.launch.launch_command_parser()`, because importing accelerate pulls in torch. This prints
both times (median of N runs, each a fresh interpreter) and their ratio, measured in the same run.

    PYTHONPATH=src python benchmarks/import_command_speed.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "tests" / "importing" / "data" / "guide_command.sh"


def seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ours = seconds([sys.executable, "-m", "loratrain", "import", str(GUIDE)], runs)
    baseline = seconds(
        [sys.executable, "-c", "from accelerate.commands.launch import launch_command_parser; launch_command_parser()"],
        runs,
    )
    print(f"loratrain import (guide command, whole CLI): {ours:.3f} s (median of {runs})")
    print(f"import accelerate's launch parser only:       {baseline:.3f} s (median of {runs})")
    print(f"ratio parser-import / loratrain import:      {baseline / ours:.1f}x")


if __name__ == "__main__":
    main()
