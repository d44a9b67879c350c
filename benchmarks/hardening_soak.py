"""The hostile-input soak: every case of tests/hardening/hostile.py, plus random --set strings and prompt lines.

CI runs a fixed sample of each class (tests/hardening/test_hostile_inputs.py, under two minutes); this runs
them all, and as many random extra cases as asked, then prints per issue-10 class the cases run, the failures
(traceback, hang, wrong exit code, file touched on refusal) and the time. `--src DIR` measures another
checkout's loratrain with the same generator (e.g. the commit before the fixes) in a child process.

Usage: python benchmarks/hardening_soak.py [--random N] [--seed S] [--classes 1,5] [--src DIR] [--show K]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "hardening"), str(ROOT / "tests")]  # the generator and tests/helpers.py

SET_PIECES = list("=.[]{}\"'\\ ,#") + [
    "\x00",
    "\x1b",
    "\n",
    "inf",
    "nan",
    "-inf",
    "1e400",
    "1e22",
    "network",
    "network_dim",
    "network_args",
    "optimizer",
    "learning_rate",
    "a",
    "0",
    "-1",
]
PROMPT_PIECES = [
    "a cat",
    "--n",
    "--w",
    "--h",
    "--l",
    "--s",
    "--d",
    "--ss",
    "inf",
    "nan",
    "1e400",
    "-1",
    "0",
    "99999999999999999999",
    "\x00",
    "\x1b",
    "\t",
    "#",
    "\ufeff",
    "k_euler",
    "\\",
    "--",
]


def random_cases(n: int, seed: int) -> list:
    import hostile

    rng = random.Random(seed)
    cases = []
    for i in range(n):
        if i % 2 == 0:
            text = "".join(rng.choice(SET_PIECES) for _ in range(rng.randint(1, 12)))
            depth = rng.choice([0, 0, 1, 5, 50, 900])
            value = "[" * depth + text + "]" * depth
            key = rng.choice(
                [
                    "network.network_args.x",
                    "saving.output_name",
                    "optimizer.learning_rate",
                    "extra.min_snr_gamma",
                    "buckets.max_bucket_reso",
                    "a.b.c",
                ]
            )
            cases.append(
                hostile.config_case(
                    8,
                    f"random --set {key}={value[:30]!r}",
                    hostile.base_config,
                    rng.choice(["check", "dry-run", "plan"]),
                    hostile.EITHER,
                    sets=(f"{key}={value}",),
                )
            )
        else:
            lines = [
                " ".join(rng.choice(PROMPT_PIECES) for _ in range(rng.randint(0, 8))) for _ in range(rng.randint(1, 5))
            ]

            def build(folder: Path, lines=lines) -> list[str]:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "p.txt").write_text("\n".join(lines), encoding="utf-8")
                return ["prompts", str(folder / "p.txt")]

            cases.append(hostile.Case(10, f"random prompt lines {lines[0][:30]!r}", build, hostile.EITHER))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--random", type=int, default=400, help="random --set / prompt-line cases on top")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--classes", default="", help="comma-separated issue-10 classes (default: all)")
    parser.add_argument("--src", default="", help="run another checkout's src/ (in a child process)")
    parser.add_argument("--show", type=int, default=3, help="failures to show per class")
    parser.add_argument("--json", default="", help="write the per-class results here")
    args = parser.parse_args()
    if args.src:
        env = {**os.environ, "PYTHONPATH": str(Path(args.src).resolve())}
        argv = (
            [sys.executable, __file__, "--random", str(args.random), "--seed", str(args.seed), "--show", str(args.show)]
            + (["--classes", args.classes] if args.classes else [])
            + (["--json", args.json] if args.json else [])
        )
        raise SystemExit(subprocess.call(argv, env=env))

    import hostile

    import loratrain

    cases = hostile.all_cases() + random_cases(args.random, args.seed)
    if args.classes:
        wanted = {int(c) for c in args.classes.split(",")}
        cases = [c for c in cases if c.cls in wanted]
    print(f"loratrain from {Path(loratrain.__file__).parent}; {len(cases)} cases", flush=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        stats = hostile.survey(cases, Path(tmp))
    total = time.monotonic() - start
    print(
        f"{'class':>5} {'cases':>6} {'failed':>6}  {'traceback':>9} {'hang':>4} {'exit':>4} {'touched':>7} "
        f"{'other':>5} {'seconds':>8}"
    )
    failed_total = 0
    for cls in sorted(stats):
        entry = stats[cls]
        kinds = {"traceback": 0, "hang": 0, "exit": 0, "files touched": 0, "other": 0}
        for _name, found, _out in entry["failed"]:
            kinds[hostile.failure_kind(found)] += 1
        failed_total += len(entry["failed"])
        print(
            f"{cls:>5} {entry['cases']:>6} {len(entry['failed']):>6}  {kinds['traceback']:>9} {kinds['hang']:>4} "
            f"{kinds['exit']:>4} {kinds['files touched']:>7} {kinds['other']:>5} {entry['seconds']:>8.1f}"
        )
    print(f"total {len(cases)} cases, {failed_total} failed, {total:.0f}s")
    for cls in sorted(stats):
        for name, found, _out in stats[cls]["failed"][: args.show]:
            print(f"  class {cls}: {name}: {found[0][:160]}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {str(c): {"cases": e["cases"], "failed": [n for n, _, _ in e["failed"]]} for c, e in stats.items()},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
