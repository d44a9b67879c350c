"""Benchmark `loratrain shrink` on an SDXL-sized LoCon against sd-scripts' full-SVD method.

    PYTHONPATH=src python benchmarks/shrink.py [--workdir DIR] [--keep]

What it does, all in one run:
1. derives every Linear and Conv2d layer of the SDXL UNet that LyCORIS' LoCon wraps (transformer
   blocks, ResNet blocks, down/upsamplers) from SDXL's architecture, and writes
   - a synthetic LoCon: rank 32 on every one of them (3x3 and 1x1 convs included), alpha 16, fp16;
   - a synthetic SDXL single-file base checkpoint (SGM layout, fp16) holding those layers' weights;
2. in a fresh process, times the full `loratrain shrink` pipeline with the guide's recipe
   `fro_ckpt=1,thr=-3.55` (read LoRA, open and check base, base norms, decompositions, build, write),
   and records the process's peak RSS;
   (twice: the first run reads the base norms from the checkpoint, the second finds them in the
   norm cache the first one wrote);
3. in another fresh process, times sd-scripts' method (`networks/resize_lora.py` on main: dense
   ΔW = up @ down, then `torch.linalg.svd` with full matrices) on one layer of every distinct shape and
   extrapolates to all layers by their counts (the full run takes many minutes on a 2-core CPU);
4. prints the times and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

RANK, ALPHA = 32, 16.0
RECIPE = "fro_ckpt=1,thr=-3.55"
CONTEXT, TIME_EMB = 2048, 1280


def sdxl_unet_layers():
    """[(dotted path, out, in, kernel)] for every layer LoCon wraps in the SDXL UNet (SGM names)."""
    layers = []

    def resblock(prefix, cin, cout):
        layers.append((f"{prefix}.in_layers.2", cout, cin, 3))
        layers.append((f"{prefix}.emb_layers.1", cout, TIME_EMB, 0))
        layers.append((f"{prefix}.out_layers.3", cout, cout, 3))
        if cin != cout:
            layers.append((f"{prefix}.skip_connection", cout, cin, 1))

    def transformer(prefix, ch, depth):
        layers.append((f"{prefix}.proj_in", ch, ch, 0))
        for d in range(depth):
            tb = f"{prefix}.transformer_blocks.{d}"
            for attn, kv_in in (("attn1", ch), ("attn2", CONTEXT)):
                layers.append((f"{tb}.{attn}.to_q", ch, ch, 0))
                layers.append((f"{tb}.{attn}.to_k", ch, kv_in, 0))
                layers.append((f"{tb}.{attn}.to_v", ch, kv_in, 0))
                layers.append((f"{tb}.{attn}.to_out.0", ch, ch, 0))
            layers.append((f"{tb}.ff.net.0.proj", 8 * ch, ch, 0))  # GEGLU: two 4x halves
            layers.append((f"{tb}.ff.net.2", ch, 4 * ch, 0))
        layers.append((f"{prefix}.proj_out", ch, ch, 0))

    # SDXL: model_channels 320, channel_mult (1, 2, 4), 2 res blocks per level,
    # transformer depth (0, 2, 10), linear projections in the transformers, context 2048.
    mult, depth = (1, 2, 4), (0, 2, 10)
    ch, skips, i = 320, [320], 1
    for level in range(3):
        for _ in range(2):
            out = 320 * mult[level]
            resblock(f"input_blocks.{i}.0", ch, out)
            ch = out
            if depth[level]:
                transformer(f"input_blocks.{i}.1", ch, depth[level])
            skips.append(ch)
            i += 1
        if level < 2:
            layers.append((f"input_blocks.{i}.0.op", ch, ch, 3))
            skips.append(ch)
            i += 1
    resblock("middle_block.0", ch, ch)
    transformer("middle_block.1", ch, depth[2])
    resblock("middle_block.2", ch, ch)
    i = 0
    for level in (2, 1, 0):
        for j in range(3):
            out = 320 * mult[level]
            resblock(f"output_blocks.{i}.0", ch + skips.pop(), out)
            ch = out
            n = 1
            if depth[level]:
                transformer(f"output_blocks.{i}.1", ch, depth[level])
                n = 2
            if level and j == 2:
                layers.append((f"output_blocks.{i}.{n}.conv", ch, ch, 3))
            i += 1
    return layers


def lora_name(path):
    return "lora_unet_" + path.replace(".", "_")


def write_safetensors_streaming(path, specs, fill, metadata=None):
    """Write a safetensors file tensor by tensor (the 5 GB base never sits in memory at once).

    specs: [(key, shape)] of fp16 tensors; fill(key, shape) returns the fp16 tensor.
    """
    import torch

    header, offset = {}, 0
    for key, shape in specs:
        n = 2
        for d in shape:
            n *= d
        header[key] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    if metadata:
        header["__metadata__"] = metadata
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        for key, shape in specs:
            t = fill(key, shape)
            assert t.dtype == torch.float16 and tuple(t.shape) == tuple(shape)
            fh.write(t.contiguous().numpy().tobytes())


def make_files(workdir: Path):
    import torch

    layers = sdxl_unet_layers()
    gen = torch.Generator().manual_seed(0)

    lora_specs = []
    for path, out, cin, k in layers:
        name = lora_name(path)
        down = (RANK, cin, k, k) if k else (RANK, cin)
        up = (out, RANK, 1, 1) if k else (out, RANK)
        lora_specs += [(f"{name}.alpha", ()), (f"{name}.lora_down.weight", down), (f"{name}.lora_up.weight", up)]

    def lora_fill(key, shape):
        if key.endswith(".alpha"):
            return torch.tensor(ALPHA, dtype=torch.float16)
        # A trained-looking spectrum: each layer's update decays over its 32 directions.
        t = torch.randn(*shape, generator=gen) * (0.02 if "down" in key else 0.005)
        if "lora_down" in key:
            decay = torch.logspace(0, -2.5, shape[0])
            t = t * decay.reshape(-1, *[1] * (len(shape) - 1))
        return t.to(torch.float16)

    write_safetensors_streaming(
        workdir / "locon.safetensors",
        lora_specs,
        lora_fill,
        {"ss_network_module": "lycoris.kohya", "ss_network_dim": str(RANK), "ss_network_alpha": str(ALPHA)},
    )

    base_specs = [("model.diffusion_model.label_emb.0.0.weight", (1280, 2816))]
    for path, out, cin, k in layers:
        base_specs.append((f"model.diffusion_model.{path}.weight", (out, cin, k, k) if k else (out, cin)))

    def base_fill(key, shape):
        fan_in = 1
        for d in shape[1:]:
            fan_in *= d
        return (torch.randn(*shape, generator=gen) / fan_in**0.5).to(torch.float16)

    write_safetensors_streaming(workdir / "sdxl_base.safetensors", base_specs, base_fill)
    return layers


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_ours(workdir: Path):
    import torch

    from loratrain.shrink.base import BaseCheckpoint
    from loratrain.shrink.lorafile import read_lora, write_lora
    from loratrain.shrink.recipes import parse_recipes
    from loratrain.shrink.resize import analyse, build, one_cpu_thread
    from loratrain.shrink.svd import layer_spectrum

    t0 = time.perf_counter()
    lora = read_lora(workdir / "locon.safetensors")
    t1 = time.perf_counter()
    base = BaseCheckpoint(workdir / "sdxl_base.safetensors")
    base.check_layers(lora.layers, "locon.safetensors")
    t2 = time.perf_counter()
    selections = parse_recipes(RECIPE)
    with torch.no_grad():
        infos = analyse(lora, selections, base)
        t3 = time.perf_counter()
        outcome = build(lora, infos, selections[0], lora.dtype)
        size = write_lora(workdir / "locon_shrunk.safetensors", outcome.tensors, outcome.metadata)
    t4 = time.perf_counter()
    # The decompositions alone, like for like with the baseline (no base reads, no file I/O), on one
    # thread as the pipeline runs them.
    with torch.no_grad(), one_cpu_thread():
        s0 = time.perf_counter()
        for layer in lora.layers.values():
            layer_spectrum(layer)
        svd_only = time.perf_counter() - s0
    ranks = [r.rank_after for r in outcome.results]
    print(
        json.dumps(
            {
                "layers": len(lora.layers),
                "read_lora_s": t1 - t0,
                "open_check_base_s": t2 - t1,
                "analyse_s": t3 - t2,
                "build_write_s": t4 - t3,
                "total_s": t4 - t0,
                "svd_only_s": svd_only,
                "peak_rss_mib": peak_rss_mib(),
                "size_before": lora.size_bytes,
                "size_after": size,
                "rank_min": min(ranks),
                "rank_max": max(ranks),
                "rank_mean": sum(ranks) / len(ranks),
            }
        )
    )


def child_baseline(workdir: Path):
    """sd-scripts' method per layer: dense ΔW, full `torch.linalg.svd`; one layer per distinct shape.

    Runs with torch's default threads (what sd-scripts gets): large dense SVDs do use both cores.
    """
    import torch
    from safetensors import safe_open

    layers = sdxl_unet_layers()
    shapes = Counter((out, cin * (k * k if k else 1)) for _, out, cin, k in layers)
    first = {}
    for path, out, cin, k in layers:
        first.setdefault((out, cin * (k * k if k else 1)), path)
    per_shape = {}
    with safe_open(str(workdir / "locon.safetensors"), "pt") as fh, torch.no_grad():
        for shape, path in first.items():
            name = lora_name(path)
            down = fh.get_tensor(f"{name}.lora_down.weight").float()
            up = fh.get_tensor(f"{name}.lora_up.weight").float()
            t0 = time.perf_counter()
            dense = up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1)
            torch.linalg.svd(dense)
            per_shape[shape] = time.perf_counter() - t0
    total = sum(per_shape[s] * n for s, n in shapes.items())
    print(
        json.dumps(
            {
                "distinct_shapes": len(shapes),
                "sampled_s": sum(per_shape.values()),
                "extrapolated_total_s": total,
                "slowest": max(((f"{o}x{n}", t) for (o, n), t in per_shape.items()), key=lambda x: x[1]),
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def run_child(role, workdir, cache=None):
    env = dict(os.environ)
    if cache is not None:
        env["LORATRAIN_CACHE_DIR"] = str(cache)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", role, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode:
        sys.exit(f"{role} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--child", choices=["ours", "baseline"])
    args = ap.parse_args()
    if args.child == "ours":
        return child_ours(args.workdir)
    if args.child == "baseline":
        return child_baseline(args.workdir)

    import torch

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="shrink-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not (workdir / "sdxl_base.safetensors").exists():
        layers = make_files(workdir)
    else:
        layers = sdxl_unet_layers()
    kinds = Counter("conv3x3" if k == 3 else "conv1x1" if k == 1 else "linear" for _, _, _, k in layers)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    print(f"SDXL UNet LoCon: {len(layers)} layers ({dict(kinds)}), rank {RANK}; setup {time.perf_counter() - t0:.1f} s")
    print(
        f"files: LoRA {(workdir / 'locon.safetensors').stat().st_size / 2**20:.1f} MiB, "
        f"base {(workdir / 'sdxl_base.safetensors').stat().st_size / 2**30:.2f} GiB in {workdir}"
    )

    cache = Path(tempfile.mkdtemp(prefix="shrink-bench-cache-"))
    cold = run_child("ours", workdir, cache)  # base norms read from the 5 GB checkpoint
    ours = run_child("ours", workdir, cache)  # base norms from the cache the first run wrote
    base = run_child("baseline", workdir)
    for p in cache.rglob("*.json"):
        p.unlink()
    print(f"\nloratrain shrink -r {RECIPE} (whole pipeline, fresh process each):")
    for label, r in (("first run on this base (norms read from it)", cold), ("later runs (norms cached)", ours)):
        print(
            f"  {label}: wall {r['total_s']:.2f} s = read LoRA {r['read_lora_s']:.2f} + open/check base "
            f"{r['open_check_base_s']:.2f} + base norms & decompositions {r['analyse_s']:.2f} + build & write "
            f"{r['build_write_s']:.2f}; peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    print(f"  decompositions alone (QR trick, all {ours['layers']} layers): {ours['svd_only_s']:.2f} s")
    print(
        f"  file {ours['size_before'] / 2**20:.1f} -> "
        f"{ours['size_after'] / 2**20:.1f} MiB; ranks {ours['rank_min']}..{ours['rank_max']} "
        f"(mean {ours['rank_mean']:.1f})"
    )
    print("\nsd-scripts method (dense dW + torch.linalg.svd, full matrices), decompositions only:")
    print(
        f"  timed one layer of each of {base['distinct_shapes']} distinct shapes: {base['sampled_s']:.1f} s; "
        f"slowest {base['slowest'][0]} {base['slowest'][1]:.1f} s"
    )
    print(
        f"  extrapolated to all {ours['layers']} layers by shape counts: {base['extrapolated_total_s']:.1f} s "
        f"(peak RSS {base['peak_rss_mib']:.0f} MiB)"
    )
    print("\nratios:")
    print(f"  baseline decompositions / our decompositions: {base['extrapolated_total_s'] / ours['svd_only_s']:.0f}x")
    for label, r in (("first run", cold), ("cached norms", ours)):
        ratio = base["extrapolated_total_s"] / r["total_s"]
        goal = "met" if r["total_s"] < 10 and ratio >= 50 else "NOT met"
        print(f"  baseline decompositions / our whole pipeline, {label}: {ratio:.0f}x (goal < 10 s and >= 50x: {goal})")
    if not args.keep and args.workdir is None:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
