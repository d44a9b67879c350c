"""Wall time of `loratrain report RUN` on a run of 20 saves x 6 prompts with 10,000 logged steps.

The run is built the way sd-scripts writes one (see the report section of tests/helpers.py): TensorBoard events through
accelerate's tracker (4 tags x 10,000 steps), 20 SDXL U-Net LoRAs of rank 8 (722 modules, fp16, ~43 MB each),
120 sample PNGs of 1024x1024 (20 sample steps x 6 prompts) and a run record. Then the real CLI runs in a
subprocess, interleaved with `python -c pass` as the baseline: cold (the report's cache removed, every file
read) and warm (reported again: only new files read), printing wall and CPU time of each and the ratio.
Goal: the report builds in at most 5 s.  Usage: python benchmarks/report_speed.py [--runs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import helpers  # noqa: E402


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys of the child): on a shared machine the CPU time is the steadier one."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env={**os.environ})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Build the run here (reused when it exists).")
    opts = parser.parse_args()
    base = opts.keep or Path(tempfile.mkdtemp(prefix="report-bench-"))
    runs_folder = base / "out" / "loratrain-runs"
    if not runs_folder.is_dir():
        t = time.perf_counter()
        helpers.make_run(
            base,
            total_steps=10_000,
            save_every=500,
            sample_every=500,
            prompts=6,
            image_size=1024,
            full_modules=True,
            steps_per_epoch=1000,
        )
        print(f"built the run in {time.perf_counter() - t:.1f} s under {base}")
    record = next(runs_folder.iterdir())
    out = base / "report"
    cli = [sys.executable, "-m", "loratrain", "report", str(record), "-o", str(out)]
    baseline = [sys.executable, "-c", "pass"]
    timed(cli)  # warm the file cache and bytecode
    base_times, cold, cold_cpu, warm, warm_cpu = [], [], [], [], []
    for _ in range(opts.runs):
        base_times.append(timed(baseline)[0])
        shutil.rmtree(out / ".cache", ignore_errors=True)  # cold: every save and sample read
        wall, cpu = timed(cli)
        cold.append(wall)
        cold_cpu.append(cpu)
        wall, cpu = timed(cli)  # warm: the cache of the build before (a run reported again)
        warm.append(wall)
        warm_cpu.append(cpu)
    b, c, w = statistics.median(base_times), statistics.median(cold), statistics.median(warm)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"python -c pass         median {b * 1000:7.1f} ms over {opts.runs} runs")
    print(
        f"loratrain report, cold median {c * 1000:7.1f} ms wall (min {min(cold) * 1000:.1f} ms), "
        f"{statistics.median(cold_cpu) * 1000:.1f} ms CPU"
    )
    print(
        f"loratrain report, warm median {w * 1000:7.1f} ms wall (min {min(warm) * 1000:.1f} ms), "
        f"{statistics.median(warm_cpu) * 1000:.1f} ms CPU"
    )
    print(f"ratio cold/baseline {c / b:.1f}; goal: cold report <= 5000 ms -> {'met' if c <= 5.0 else 'NOT met'}")
    print(f"report.html {(out / 'report.html').stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
