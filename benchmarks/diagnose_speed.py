"""Wall time of `loratrain diagnose LOG` on a 10,000-line log, against `python -c pass` and reading the file.

The log is made the way a kohya_ss GUI console looks after a long run: the GUI's time-stamped INFO lines,
sd-scripts' rich-logged INFO/WARNING lines (captions with "error" and "nan" in them), tqdm redraws with
carriage returns, and at the end a real failure tail from the corpus (tests/data/failure_logs). The real CLI
runs in a subprocess, interleaved with the baselines; the in-process classifier is timed on the same text,
and on a log twice as long to show the time grows (at most) linearly.
Goal: diagnose answers in under 1 s.  Usage: python benchmarks/diagnose_speed.py [--runs N] [--tail FILE]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "failure_logs"


def make_log(lines: int, tail: Path) -> str:
    out = []
    i = 0
    while len(out) < lines:
        i += 1
        out.append(f"17:52:{i % 60:02d}-{i:06d} INFO     Validating folder {i}_error nan existence... SUCCESS")
        out.append(
            f"                    WARNING  caption: 'a cat, nan, error 404 shirt' image {i}.png    train_util.py:2097"
        )
        out.append(
            "\r".join(
                f"steps:  {k % 100:2d}%|#         | {k}/{lines} [00:10<01:30,  1.00s/it, avr_loss=0.{k % 97:02d}]"
                for k in range(i * 3, i * 3 + 3)
            )
        )
    return "\n".join(out[:lines]) + "\n" + tail.read_text(encoding="utf-8")


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tail", type=Path, default=CORPUS / "bnb-bmaltais-1999.log")
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from loratrain.launch import failures

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "console.log"
        text = make_log(10_000, opts.tail)
        log.write_text(text, encoding="utf-8")
        print(f"log: {text.count(chr(10))} lines, {len(text.encode()) / 1024:.0f} KiB, tail from {opts.tail.name}")
        cli, empty, read, helps, verb = [], [], [], [], []
        for _ in range(opts.runs):
            cli.append(timed([sys.executable, "-m", "loratrain", "diagnose", str(log)]))
            helps.append(timed([sys.executable, "-m", "loratrain", "--help"]))
            verb.append(timed([sys.executable, "-m", "loratrain", "explain", "network_dim"]))
            empty.append(timed([sys.executable, "-c", "pass"]))
            read.append(timed([sys.executable, "-c", f"open({str(log)!r}, 'rb').read()"]))
        found = failures.classify(text)
        print(f"answer: {found.cause_id if found else None}: {found.cause if found else ''}")

        def inproc(t: str) -> float:
            best = float("inf")
            for _ in range(opts.runs):
                start = time.perf_counter()
                failures.classify(t)
                best = min(best, time.perf_counter() - start)
            return best

        one, two = inproc(text), inproc(make_log(20_000, opts.tail))
    c, e, r, h = statistics.median(cli), statistics.median(empty), statistics.median(read), statistics.median(helps)
    print(f"loratrain diagnose (subprocess, median of {opts.runs}): {c:.3f} s   goal: < 1 s")
    print(f"python -c pass: {e:.3f} s  -> ratio {c / e:.1f}x")
    print(f"python reading the file: {r:.3f} s  -> ratio {c / r:.1f}x")
    print(f"loratrain --help (the CLI's own start-up): {h:.3f} s  -> ratio {c / h:.2f}x")
    x = statistics.median(verb)
    print(f"loratrain explain network_dim (a light verb with arguments): {x:.3f} s  -> ratio {c / x:.2f}x")
    print(
        f"classify in process: 10,000 lines {one * 1000:.1f} ms, 20,000 lines {two * 1000:.1f} ms (ratio {two / one:.2f})"
    )


if __name__ == "__main__":
    main()
