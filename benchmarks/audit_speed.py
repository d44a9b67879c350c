"""Benchmark: `loratrain audit` against a bare Pillow decode pass over the same files, in the same run.

Generates N photo-like images (default 400; JPEG and PNG, 768-1216 px, smooth colour fields plus sensor-like
noise so the codecs work as hard as on photos) with tag captions in two `N_name` folders, warms the page cache,
then times, best of --repeat:

  - the baseline: sd-scripts' load_image (`Image.open(p)`, `convert("RGB")`, `np.asarray`) for every image, on
    the same process pool and cores the audit uses (and once in one process, for reference);
  - the first audit: `run_audit` with an empty cache folder (every image decoded, hashed, checked);
  - the second audit of the unchanged dataset (the decode results come from the audit's cache);
  - the second audit through the real command line (`python -m loratrain audit CONFIG --json`), process start
    included.

Prints each time and the two ratios the issue asks for: first audit / parallel bare decode (goal <= 2) and
second audit / first audit (goal <= 0.10).

    PYTHONPATH=src python benchmarks/audit_speed.py [--images 400] [--repeat 3] [--workers N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FOLDERS = ["10_alpha", "5_bravo"]
SIZES = [(1024, 1024), (832, 1216), (1216, 832), (768, 1024), (1024, 768)]
TAGS = (
    "solo, looking at viewer, smile, outdoors, blue sky, long hair, brown hair, standing, full body, "
    "detailed background, realistic, photo, forest, river, sunset, cloud, tree, armor, cape, wind, "
    "dramatic lighting, depth of field, bokeh, close-up, from side, short hair, jacket, scarf, snow, night"
).split(", ")


def generate(root: Path, count: int, seed: int = 1) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    for folder in FOLDERS:
        (root / "train" / folder).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        folder = FOLDERS[i % len(FOLDERS)]
        w, h = SIZES[i % len(SIZES)]
        base = Image.fromarray((rng.random((8, 8, 3)) * 255).astype("uint8")).resize((w, h), Image.Resampling.BICUBIC)
        noise = rng.normal(0, 12, (h, w, 3))
        pixels = np.clip(np.asarray(base, np.float32) + noise, 0, 255).astype("uint8")
        image = Image.fromarray(pixels)
        path = root / "train" / folder / f"img_{i:05d}.{'png' if i % 4 == 0 else 'jpg'}"
        image.save(path, quality=90) if path.suffix == ".jpg" else image.save(path, compress_level=1)
        name = folder.partition("_")[2]
        tags = pick.sample(TAGS, pick.randint(6, 14))
        path.with_suffix(".txt").write_text(f"{name}, " + ", ".join(tags) + f", shot {i}", encoding="utf-8")


def write_config(root: Path) -> Path:
    config = root / "audit.toml"
    config.write_text(
        f"""
[model]
pretrained_model_name_or_path = "/models/sdxl.safetensors"
[dataset]
train_data_dir = "{root / "train"}"
resolution = "1024,1024"
caption_extension = ".txt"
shuffle_caption = true
keep_tokens = 1
[buckets]
enable_bucket = true
bucket_reso_steps = 64
[network]
network_module = "networks.lora"
[saving]
output_dir = "{root / "out"}"
""",
        encoding="utf-8",
    )
    return config


def bare_pass(paths: list[str], workers: int) -> float:
    from loratrain.audit.images import decode_bare

    start = time.perf_counter()
    if workers <= 1:
        for p in paths:
            decode_bare(p)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        chunk = max(1, min(16, len(paths) // (workers * 4)))  # the audit's chunking (decode.py)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for _ in pool.map(decode_bare, paths, chunksize=chunk):
                pass
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep", type=Path, help="generate into (and keep) this folder")
    opts = ap.parse_args()
    root = opts.keep or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    os.environ["LORATRAIN_CACHE_DIR"] = str(root / "cache")
    os.environ["LORATRAIN_AUDIT_WORKERS"] = str(opts.workers)
    from loratrain.audit.build import run_audit
    from loratrain.config.loader import load_config

    try:
        if not (root / "train").exists():
            t = time.perf_counter()
            generate(root, opts.images)
            print(f"generated {opts.images} images in {time.perf_counter() - t:.1f}s under {root}")
        config = write_config(root)
        args = load_config(str(config), []).config.script_args()
        paths = sorted(str(p) for p in (root / "train").rglob("*") if p.suffix in (".jpg", ".png"))
        size = sum(os.path.getsize(p) for p in paths)
        for p in paths:  # warm the page cache
            Path(p).read_bytes()
        print(f"{len(paths)} images, {size / 1e6:.0f} MB, {opts.workers} worker process(es), {os.cpu_count()} CPUs")

        bare = min(bare_pass(paths, opts.workers) for _ in range(opts.repeat))
        serial = bare_pass(paths, 1)
        firsts, seconds = [], []
        for _ in range(opts.repeat):
            shutil.rmtree(root / "cache", ignore_errors=True)
            t = time.perf_counter()
            result = run_audit(args)
            firsts.append(time.perf_counter() - t)
            assert result.decoded == len(paths), (result.decoded, len(paths))
            t = time.perf_counter()
            again = run_audit(args)
            seconds.append(time.perf_counter() - t)
            assert again.decoded == 0
        first, second = min(firsts), min(seconds)
        cli = []
        for _ in range(opts.repeat):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "loratrain", "audit", str(config), "--json"],
                check=False,
                capture_output=True,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")},
            )
            cli.append(time.perf_counter() - t)
        print(f"findings: {len(result.findings)} ({len(result.errors)} errors)")
        print(f"bare Pillow decode, {opts.workers} process(es):  {bare:7.3f} s  ({len(paths) / bare:6.0f} images/s)")
        print(f"bare Pillow decode, 1 process:             {serial:7.3f} s")
        print(f"audit, first run:                          {first:7.3f} s  ({len(paths) / first:6.0f} images/s)")
        print(f"audit, second run (unchanged dataset):     {second:7.3f} s")
        print(f"audit, second run via the CLI:             {min(cli):7.3f} s  (process start included)")
        print(f"ratio first audit / bare decode (same pool):     {first / bare:5.2f}  (goal <= 2)")
        print(f"ratio first audit / bare decode (one process):   {first / serial:5.2f}")
        print(f"ratio second audit / first audit:                {second / first:5.3f}  (goal <= 0.10)")
        print(f"ratio second audit via CLI / first audit:        {min(cli) / first:5.3f}")
    finally:
        if opts.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
