"""What loratrain adds to a launch: preflight, record and output streaming, against bare accelerate.

Builds the test project (fixture sd-scripts, real images, a real safetensors header), then times,
interleaved so machine noise hits all alike:
  bare    the exact argv loratrain launches, run directly (python -m accelerate.commands.launch ...)
  run     loratrain run --plain --force (preflight + record + runner around the same launch)
  check0  loratrain check --no-preflight (config validation only)
  check   loratrain check (validation + preflight)
Prints each median and the overheads. Usage: python benchmarks/launch_overhead.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from run.test_run_cli import env_for, make_project  # noqa: E402  (shared with the tests on purpose)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        config = make_project(root, steps=5)
        env = env_for(root, FIXTURE_STEP_S="0")
        cli = [sys.executable, "-m", "loratrain"]
        dry = subprocess.run(
            [*cli, "run", config.name, "--dry-run", "--json"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        bare_argv = json.loads(dry.stdout)["argv"]
        bare_argv[bare_argv.index(next(a for a in bare_argv if a.endswith("sdxl_train_network.py")))] = str(
            ROOT / "tests" / "run" / "fixtures" / "sd_scripts" / "sdxl_train_network.py"
        )
        commands = {
            "bare": bare_argv,
            "run": [*cli, "run", config.name, "--plain", "--force"],
            "check0": [*cli, "check", config.name, "--no-preflight"],
            "check": [*cli, "check", config.name, "--force"],
        }
        for argv in commands.values():
            timed(argv, root, env)  # warm caches
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                times[name].append(timed(argv, root, env))
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"bare accelerate launch of the fixture   median {med['bare'] * 1000:7.0f} ms over {runs} runs")
    print(f"loratrain run --plain (same launch)      median {med['run'] * 1000:7.0f} ms")
    print(f"  overhead {(med['run'] - med['bare']) * 1000:.0f} ms, ratio {med['run'] / med['bare']:.2f}")
    print(f"loratrain check --no-preflight           median {med['check0'] * 1000:7.0f} ms")
    print(f"loratrain check (with preflight)         median {med['check'] * 1000:7.0f} ms")
    print(f"  preflight adds {(med['check'] - med['check0']) * 1000:.0f} ms, ratio {med['check'] / med['check0']:.2f}")


if __name__ == "__main__":
    main()
