"""Wall time of `loratrain run src/loratrain/presets/pony-sdxl-locon.toml --dry-run` against `python -c pass`.

Runs both commands interleaved (so machine noise hits both alike), prints each median and their ratio.
Goal: ratio <= 8 on a 2-core machine.  Usage: python benchmarks/cli_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    baseline = [sys.executable, "-c", "pass"]
    dry_run = [sys.executable, "-m", "loratrain", "run", "src/loratrain/presets/pony-sdxl-locon.toml", "--dry-run"]
    timed(dry_run)  # warm the file cache and bytecode
    base_times, cli_times = [], []
    for _ in range(runs):
        base_times.append(timed(baseline))
        cli_times.append(timed(dry_run))
    base, cli = statistics.median(base_times), statistics.median(cli_times)
    print(f"python -c pass          median {base * 1000:7.1f} ms over {runs} runs")
    print(f"loratrain run --dry-run median {cli * 1000:7.1f} ms over {runs} runs")
    print(f"ratio {cli / base:.2f} (goal <= 8)")


if __name__ == "__main__":
    main()
