"""Benchmark: `loratrain plan` dataset scan against opening every image with PIL, in the same run.

Generates N small PNG/JPEG/WebP images (default 20,000) with tag captions across several `N_name`
folders in a temporary directory, warms the page cache, then times:

  - the scan: `loratrain.plan.planner.build_plan` in this process (folders, headers, captions, buckets,
    caption token counts, steps), best of --repeat runs;
  - the CLI: `python -m loratrain plan CONFIG --json` as a subprocess, when the config loader exists;
  - the baseline: `PIL.Image.open(path).size` for every image (what a naive scanner does).

Prints images/s, the ratio to the baseline, and peak RSS. A second, smaller folder of large images
shows that memory does not grow with pixel data (only headers are read).

    PYTHONPATH=src python benchmarks/plan_scan.py [--images 20000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FOLDERS = ["10_alpha", "5_bravo", "3_charlie", "2_delta", "1_echo"]
SIZES = [(96, 128), (128, 96), (128, 128), (80, 144), (144, 80), (112, 160), (160, 112), (120, 120)]
TAGS = (
    "solo, 1girl, looking at viewer, smile, outdoors, blue sky, long hair, brown hair, standing, full body, "
    "detailed background, masterpiece, best quality, realistic, photo, forest, river, sunset, cloud, tree, "
    "holding sword, armor, cape, wind, dramatic lighting, depth of field, bokeh, close-up, from side, "
    "short hair, red eyes, jacket, scarf, snow, night, city lights, rain, umbrella, reflection"
).split(", ")


# Peak resident memory of the current process in KiB. Linux's VmHWM starts afresh at exec; ru_maxrss
# would carry this benchmark's own high-water mark into the child.
_PEAK_EXPR = (
    "(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) "
    "if __import__('os').path.exists('/proc/self/status') "
    "else __import__('resource').getrusage(__import__('resource').RUSAGE_SELF).ru_maxrss)"
)


def generate(root: Path, count: int, seed: int = 1) -> list[Path]:
    from PIL import Image

    rng = random.Random(seed)
    paths: list[Path] = []
    per_folder = -(-count // len(FOLDERS))
    tiles = {}
    for folder in FOLDERS:
        (root / "train" / folder).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        folder = FOLDERS[i // per_folder]
        w, h = SIZES[i % len(SIZES)]
        fmt = ("png", "jpg", "webp")[i % 3]
        key = (w, h, fmt)
        if key not in tiles:
            img = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
            path = root / f"tile.{fmt}"
            img.save(path, quality=80) if fmt != "png" else img.save(path)
            tiles[key] = path.read_bytes()
        path = root / "train" / folder / f"img_{i:06d}.{fmt}"
        path.write_bytes(tiles[key])
        caption = ", ".join(rng.sample(TAGS, rng.randint(8, 30)))
        path.with_suffix(".txt").write_text(caption, encoding="utf-8")
        paths.append(path)
    return paths


def write_config(root: Path) -> Path:
    prompts = root / "prompts.txt"
    prompts.write_text("a photo of a cat --n blurry --w 1024 --h 1024 --d 1 --s 28\n", encoding="utf-8")
    config = root / "plan.toml"
    config.write_text(
        "\n".join(
            [
                "[model]",
                f'pretrained_model_name_or_path = "{root / "model.safetensors"}"',
                "[saving]",
                f'output_dir = "{root / "out"}"',
                "[dataset]",
                f'train_data_dir = "{root / "train"}"',
                'resolution = "1024,1024"',
                'caption_extension = ".txt"',
                "[buckets]",
                "enable_bucket = true",
                "bucket_reso_steps = 32",
                "[network]",
                'network_module = "networks.lora"',
                "[training]",
                "train_batch_size = 8",
                "max_train_epochs = 10",
                "[sampling]",
                f'sample_prompts = "{prompts}"',
                "sample_every_n_epochs = 1",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return config


def plan_args(root: Path) -> dict:
    return {
        "train_data_dir": str(root / "train"),
        "resolution": "1024,1024",
        "enable_bucket": True,
        "bucket_reso_steps": 32,
        "caption_extension": ".txt",
        "train_batch_size": 8,
        "max_train_epochs": 10,
        "sample_prompts": str(root / "prompts.txt"),
        "sample_every_n_epochs": 1,
    }


def time_scan(root: Path, repeat: int, workers: int = 1) -> tuple[float, dict]:
    from loratrain.plan.planner import build_plan

    os.environ["LORATRAIN_SCAN_WORKERS"] = str(workers)
    best, data = float("inf"), {}
    for _ in range(repeat):
        start = time.perf_counter()
        report = build_plan(plan_args(root))
        best = min(best, time.perf_counter() - start)
        data = report.data
    return best, data


def time_headers(paths: list[Path], repeat: int) -> float:
    from loratrain.plan.images import image_size

    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for p in paths:
            image_size(p)
        best = min(best, time.perf_counter() - start)
    return best


def time_pil(paths: list[Path], repeat: int) -> float:
    from PIL import Image

    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for p in paths:
            with Image.open(p) as im:
                im.size
        best = min(best, time.perf_counter() - start)
    return best


def time_cli(config: Path) -> tuple[float | None, int | None, str]:
    try:
        import loratrain.config.loader  # noqa: F401  (the CLI needs the core config loader)
    except ImportError:
        return None, None, "skipped: loratrain.config.loader is not there yet"
    code = (
        "import atexit, runpy, sys\n"
        f"sys.argv = ['loratrain', 'plan', {str(config)!r}, '--json']\n"
        f"atexit.register(lambda: sys.stderr.write('\\nPEAK_KIB %d\\n' % {_PEAK_EXPR}))\n"
        "runpy.run_module('loratrain', run_name='__main__')\n"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return None, None, f"failed ({proc.returncode}): {proc.stderr[-600:]}"
    rss = int(proc.stderr.rsplit("PEAK_KIB", 1)[1].split()[0])
    return elapsed, rss, "ok"


def large_image_rss(root: Path, count: int = 40) -> tuple[int, int]:
    """Peak RSS (KiB) of a scan over `count` 4000x3000 images, in a fresh process, vs. the same over tiny ones."""
    from PIL import Image

    results = []
    for label, size in (("small", (64, 48)), ("large", (4000, 3000))):
        folder = root / f"rss_{label}" / "1_x"
        shutil.rmtree(folder.parent, ignore_errors=True)
        folder.mkdir(parents=True)
        Image.new("RGB", size, (200, 30, 30)).save(folder / "a.jpg", quality=90)
        data = (folder / "a.jpg").read_bytes()
        for i in range(count):
            (folder / f"{i}.jpg").write_bytes(data)
        code = (
            "import resource; from loratrain.plan.planner import build_plan; "
            f"build_plan({{'train_data_dir': {str(folder.parent)!r}, 'resolution': '1024,1024', 'enable_bucket': True}}); "
            f"print({_PEAK_EXPR})"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
        results.append(int(out.stdout.strip() or 0))
    return results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate into (or reuse) this folder instead of a temp dir")
    parser.add_argument("--workers", type=int, default=2, help="also time the forked scan with this many workers")
    ns = parser.parse_args()

    root = ns.keep or Path(tempfile.mkdtemp(prefix="loratrain-bench-"))
    try:
        marker = root / "generated.json"
        start = time.perf_counter()
        if marker.exists() and json.loads(marker.read_text())["images"] == ns.images:
            paths = sorted(p for p in (root / "train").rglob("img_*") if p.suffix != ".txt")
        else:
            paths = generate(root, ns.images)
            marker.write_text(json.dumps({"images": ns.images}))
        config = write_config(root)
        print(f"dataset: {len(paths)} images in {len(FOLDERS)} folders ({time.perf_counter() - start:.1f}s to prepare)")

        time_pil(paths, 1)  # warm the page cache for both sides
        scan_s, data = time_scan(root, ns.repeat)
        pil_s = time_pil(paths, ns.repeat)
        head_s = time_headers(paths, ns.repeat)
        n = len(paths)
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (timings are wall-clock)")
        print(
            f"plan scan (build_plan: headers, captions, tokens, buckets, steps; best of {ns.repeat}): "
            f"{scan_s:.3f}s = {n / scan_s:,.0f} images/s [{data['batches_per_epoch']} batches/epoch]"
        )
        print(f"header sizes only (loratrain.plan.images.image_size):  {head_s:.3f}s = {n / head_s:,.0f} images/s")
        print(f"PIL Image.open().size baseline:                   {pil_s:.3f}s = {n / pil_s:,.0f} images/s")
        print(
            f"ratio plan scan / PIL: {pil_s / scan_s:.2f}x; header sizes / PIL: {pil_s / head_s:.2f}x "
            "(goals: >= 3x, >= 30,000 images/s)"
        )
        if ns.workers > 1:
            par_s, _ = time_scan(root, ns.repeat, ns.workers)
            print(f"plan scan with LORATRAIN_SCAN_WORKERS={ns.workers}: {par_s:.3f}s = {n / par_s:,.0f} images/s")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        cli_s, cli_rss, status = time_cli(config)
        if cli_s is None:
            print(f"CLI `loratrain plan --json`: {status}")
        else:
            print(
                f"CLI `loratrain plan --json` (whole process incl. start-up): {cli_s:.3f}s = {n / cli_s:,.0f} images/s, "
                f"peak RSS {cli_rss / 1024:.0f} MiB"
            )
        small, large = large_image_rss(root)
        print(
            f"peak RSS scanning 40 JPEGs of 64x48: {small / 1024:.0f} MiB; of 4000x3000: {large / 1024:.0f} MiB "
            "(flat: headers only)"
        )
    finally:
        if ns.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
