"""Wall time of `loratrain fit src/loratrain/presets/pony-sdxl-locon.toml --gpu h200` (prediction + advice) against
`loratrain run ... --dry-run` (load, validate, render) and `python -c pass`.

Runs the commands interleaved (machine noise hits all alike) and prints each median and the ratios.
Goal: fit under 1 s wall, and fit / dry-run <= 2 (the prediction and advice cost less than loading the config).
Usage: python benchmarks/fit_speed.py [--runs N]
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
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "loratrain run --dry-run": [
            sys.executable,
            "-m",
            "loratrain",
            "run",
            "src/loratrain/presets/pony-sdxl-locon.toml",
            "--dry-run",
        ],
        "loratrain fit --gpu h200": [
            sys.executable,
            "-m",
            "loratrain",
            "fit",
            "src/loratrain/presets/pony-sdxl-locon.toml",
            "--gpu",
            "h200",
        ],
        "loratrain fit --vram 8 (advice search)": [
            sys.executable,
            "-m",
            "loratrain",
            "fit",
            "src/loratrain/presets/pony-sdxl-locon.toml",
            "--vram",
            "8",
        ],
    }
    for argv in commands.values():
        timed(argv)  # warm the file cache and bytecode
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(timed(argv))
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, value in med.items():
        print(f"{name:40s} median {value * 1000:7.1f} ms over {runs} runs")
    dry = med["loratrain run --dry-run"]
    for name in ("loratrain fit --gpu h200", "loratrain fit --vram 8 (advice search)"):
        print(f"{name} / dry-run: {med[name] / dry:.2f} (goal <= 2); under 1 s: {med[name] < 1.0}")


if __name__ == "__main__":
    main()
