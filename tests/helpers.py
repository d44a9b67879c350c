"""Shared helpers of the test suite (plain functions and data; fixtures live in the conftest.py files).

Sections: the CLI in-process and through the real entry point; small configs; real files on disk (images,
safetensors headers, a fake nvidia-smi, a training project); sd-scripts' parser rebuilt from its flag table;
synthetic LoRA and base checkpoints with known spectra for the shrink tests; a training run on disk (events,
samples, saves, run record) for the report tests. Heavy packages (torch, numpy, safetensors, pillow) are imported inside the functions that need them, so importing this module stays cheap.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import stat
import struct
import subprocess
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

try:  # the tests run on Python 3.10 too, where the TOML reader is the tomli package
    import tomllib  # noqa: F401 (re-exported for the tests)
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "src" / "loratrain" / "presets"  # the shipped configs
FLAG_TABLE = ROOT / "src" / "loratrain" / "data" / "sd_scripts_args.json"
FIXTURES = Path(__file__).parent / "run" / "fixtures"
FIXTURE_SD_SCRIPTS = FIXTURES / "sd_scripts"
GUIDE_COMMAND = Path(__file__).parent / "importing" / "data" / "guide_command.sh"
COLUMNS = "200"  # every CLI test sees the same terminal width


# --- the CLI -------------------------------------------------------------------------------------------------


@dataclass
class CliResult:
    """What a CLI run left behind, named like subprocess.CompletedProcess so tests read the same either way."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str | None] | None = None,
    input: str | None = None,
    timeout: float | None = None,
) -> CliResult:
    """`loratrain ARGS` in this process through typer's CliRunner, at a fixed terminal width.

    An exception that escapes the command is written to stderr as the traceback a real process would print,
    so tests asserting "no traceback" still see one. `timeout` is accepted for the callers that pass it;
    in-process runs have no time limit of their own.
    """
    from typer.testing import CliRunner

    from loratrain.cli import _register, app
    from loratrain.plan import clip_tokenizer

    _register()
    clip_tokenizer.load_tokenizer.cache_clear()  # a real process finds the vocabulary afresh from its environment
    old_cwd = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(
            app, [str(a) for a in args], input=input, prog_name="loratrain", env={"COLUMNS": COLUMNS, **(env or {})}
        )
    finally:
        os.chdir(old_cwd)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc))
    return CliResult(result.exit_code, result.stdout, stderr)


def run_entry_point(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """`python -m loratrain ARGS` in a real process (for tests about the process itself), this worktree first."""
    full_env = cli_env(**(env or {}))
    full_env.setdefault("COLUMNS", COLUMNS)
    return subprocess.run(
        [sys.executable, "-m", "loratrain", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        input=input,
        timeout=timeout,
    )


def cli_env(**extra: str) -> dict[str, str]:
    """The current environment for a `python -m loratrain` subprocess, with this worktree's src first."""
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("LORATRAIN_SD_SCRIPTS", None)
    env.update(extra)
    return env


# `python -c PROBE ARGS` runs loratrain ARGS in a fresh process, then prints `HEAVY:` and the heavy packages it
# imported (none is the goal for the fast paths and for report).
HEAVY = ("torch", "accelerate", "lycoris", "transformers")
PROBE = (
    "import sys, runpy\n"
    "sys.argv = ['loratrain'] + sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('loratrain', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in %r)\n"
    "print('HEAVY:' + ','.join(heavy), file=sys.stderr)\n" % (HEAVY,)
)

# --- opt-in GPU tests (`pytest -m gpu`) ---------------------------------------------------------------------


def gpu_run_ready() -> bool:
    """A CUDA GPU answers nvidia-smi and the environment names real sd-scripts and an SDXL model."""
    import shutil

    exe = shutil.which("nvidia-smi")
    if not exe or not (os.environ.get("LORATRAIN_SD_SCRIPTS") and os.environ.get("LORATRAIN_TEST_MODEL")):
        return False
    done = subprocess.run([exe, "-L"], capture_output=True, text=True)
    return done.returncode == 0 and "GPU 0" in done.stdout


GPU_RUN_NEEDS = "needs a CUDA GPU, LORATRAIN_SD_SCRIPTS and LORATRAIN_TEST_MODEL"


# --- configs -------------------------------------------------------------------------------------------------

BASE = """
[model]
pretrained_model_name_or_path = "/models/sdxl.safetensors"
[dataset]
train_data_dir = "/data"
resolution = "1024,1024"
[network]
network_module = "networks.lora"
network_dim = 8
[saving]
output_dir = "/out"
"""


def plan_config(
    tmp_path: Path,
    extra: str = "",
    training: str = "train_batch_size = 8\ngradient_accumulation_steps = 6\nmax_train_steps = 400\n",
) -> Path:
    """The plan tests' config: a `train/` folder under tmp_path, the guide's batch, accumulation and steps."""
    path = tmp_path / "run.toml"
    path.write_text(
        f"""
[model]
pretrained_model_name_or_path = "/models/sdxl.safetensors"
[dataset]
train_data_dir = "{tmp_path / "train"}"
resolution = "1024,1024"
caption_extension = ".txt"
[buckets]
enable_bucket = true
bucket_reso_steps = 32
[network]
network_module = "networks.lora"
[training]
{training}
[saving]
output_dir = "{tmp_path / "out"}"
save_every_n_epochs = 50
{extra}""",
        encoding="utf-8",
    )
    return path


# --- real files: images, safetensors headers, nvidia-smi, a training project ----------------------------------

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def make_images(
    folder: Path,
    sizes: list[tuple[int, int]],
    ext: str = ".png",
    caption: str | None = "a photo",
    caption_ext: str = ".txt",
    start: int = 0,
) -> list[Path]:
    """One image per size (named img0, img1, ...), each with a caption file unless caption is None."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes, start=start):
        path = folder / f"img{i}{ext}"
        Image.new("RGB", size, (i * 7 % 256, 80, 160)).save(path, FORMATS[ext.lower()])
        if caption is not None:
            path.with_suffix(caption_ext).write_text(caption, encoding="utf-8")
        paths.append(path)
    return paths


# Six shapes that land in six different SDXL buckets (1024², step 32).
SIX_SHAPES = [(1024, 1024), (832, 1216), (1216, 832), (768, 1344), (1344, 768), (896, 1152)]

# Tensor names as they appear in real single-file checkpoints (a few of each, enough to classify).
SDXL_KEYS = [
    "conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
    "conditioner.embedders.1.model.ln_final.weight",
    "model.diffusion_model.input_blocks.1.1.proj_in.weight",
    "model.diffusion_model.label_emb.0.0.weight",
    "first_stage_model.decoder.conv_in.weight",
]
SD1_KEYS = [
    "cond_stage_model.transformer.text_model.embeddings.position_ids",
    "model.diffusion_model.input_blocks.1.1.proj_in.weight",
    "first_stage_model.decoder.conv_in.weight",
]


def write_safetensors(path: Path, names: list[str]) -> Path:
    """A valid safetensors file: each tensor one float32 value (the header is what preflight reads)."""
    header = {"__metadata__": {"format": "pt"}}
    for i, name in enumerate(names):
        header[name] = {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(struct.pack("<f", 0.25) for _ in names))
    return path


def write_image(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    from PIL import Image

    Image.new("RGB", size, (200, 80, 40)).save(path)
    return path


def make_dataset(root: Path, folders: dict[str, int], caption_ext: str = ".txt") -> Path:
    """`root/<folder>/img<i>.png` with a caption file each."""
    root.mkdir(parents=True, exist_ok=True)
    for folder, count in folders.items():
        sub = root / folder
        sub.mkdir()
        for i in range(count):
            write_image(sub / f"img{i}.png")
            (sub / f"img{i}{caption_ext}").write_text(f"photo of {folder.partition('_')[2]}, number {i}\n")
    return root


def write_fake_nvidia_smi(bin_dir: Path, gpus: list[tuple[str, str]]) -> Path:
    """An `nvidia-smi` that answers -L and the name,compute_cap query for the given (name, cap) GPUs."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    listing = "\n".join(
        f"GPU {i}: {name} (UUID: GPU-{i:08d}-aaaa-bbbb-cccc-000000000000)" for i, (name, _) in enumerate(gpus)
    )
    query = "\n".join(f"{name}, {cap}" for name, cap in gpus)
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-L" ]; then\n'
        f"cat <<'EOF'\n{listing}\nEOF\n"
        "exit 0\nfi\n"
        'case "$1" in --query-gpu=*)\n'
        f"cat <<'EOF'\n{query}\nEOF\n"
        "exit 0;;\nesac\n"
        "exit 9\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return script


STEP_LINE = "steps: 100%|##########| 5/5"


def make_project(
    root: Path, name: str = "mychar", steps: int = 5, extra: str = "", python: str = sys.executable
) -> Path:
    """A training folder: SDXL model, a captioned dataset, a tokenizer cache and a config using them.

    `python` is the training interpreter, the one whose accelerate launches the run (tests/run/conftest.py's
    `launcher` fixture gives each accelerate under test)."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "sdxl.safetensors").exists():
        write_safetensors(root / "sdxl.safetensors", SDXL_KEYS)
        make_dataset(root / "train", {"10_mychar": 2})
        for folder in ("openai_clip-vit-large-patch14", "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"):
            (root / "tok" / folder).mkdir(parents=True)
        write_fake_nvidia_smi(root / "bin", [("NVIDIA A100-SXM4-40GB", "8.0")])
    config = root / f"{name}.toml"
    config.write_text(f"""# test run
sd_scripts = "{FIXTURE_SD_SCRIPTS}"
python = "{python}"
[model]
pretrained_model_name_or_path = "sdxl.safetensors"
tokenizer_cache_dir = "tok"
[dataset]
train_data_dir = "train"
resolution = "1024,1024"
caption_extension = ".txt"
[network]
network_module = "networks.lora"
network_dim = 4
[training]
max_train_steps = {steps}
[saving]
output_dir = "out"
output_name = "{name}"
[precision]
mixed_precision = "no"
{extra}""")
    return config


def env_for(root: Path, **extra: str) -> dict[str, str]:
    """A subprocess environment for a project made by make_project: its fake nvidia-smi first on PATH."""
    return cli_env(PATH=f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", **extra)


def loratrain(root: Path, *args: str, timeout: float = 120, **env: str) -> CliResult:
    """`loratrain ARGS` in-process from a make_project folder, with its fake nvidia-smi first on PATH."""
    return run_cli(
        *args,
        cwd=root,
        timeout=timeout,
        env={"PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", "LORATRAIN_SD_SCRIPTS": None, **env},
    )


def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "out" / "loratrain-runs").glob("*/record.json"))]


# The guide's two sample prompts (its example prompt file), for token counts.
GUIDE_PROMPT_1 = (
    "score_9, score_8_up, score_7_up, score_6_up, rating_explicit, source_furry, solo, female anthro "
    "kindred, mask, presenting, white pillow, bedroom, looking at viewer, detailed background, "
    "amazing_background, scenery porn, realistic, photo"
)
GUIDE_PROMPT_2 = (
    "score_9, score_8_up, score_7_up, score_6_up, rating_explicit, source_furry, solo, anthro female "
    "wolf, sexy pose, standing, gray fur, brown fur, canine pussy, black nose, blue eyes, pink areola, "
    "pink nipples, detailed background, amazing_background, realistic, photo"
)


# --- sd-scripts' parser, rebuilt from the flag table ----------------------------------------------------------


def _int_or_float(text: str):
    # sd-scripts' behaviour as documented in the reference notes: "1.0" is rejected
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    number = float(text)
    return int(text) if number >= 1 else number


def reference_parser() -> argparse.ArgumentParser:
    """A plain argparse parser built from sd-scripts' 197 recorded actions: sd-scripts' own parsing rules."""
    data = json.loads(FLAG_TABLE.read_text(encoding="utf-8"))
    types = {"str": str, "int": int, "float": float, "int_or_float": _int_or_float, "Path": str}
    parser = argparse.ArgumentParser(exit_on_error=False, add_help=False)
    for action in data["arguments"]:
        if action["action"] == "help":
            continue
        if action["action"] == "store_true":
            parser.add_argument(*action["option_strings"], action="store_true")
            continue
        kwargs = {"type": types[action["type"]], "default": action["default"]}
        if action["nargs"]:
            kwargs["nargs"] = action["nargs"]
        if action["choices"]:
            kwargs["choices"] = action["choices"]
        parser.add_argument(*action["option_strings"], **kwargs)
    return parser


_PARSER: argparse.ArgumentParser | None = None


def reference_parse(argv: list[str]) -> dict:
    """All dests as sd-scripts' parser sets them for argv; raises (ArgumentError/SystemExit) where it would stop."""
    global _PARSER
    if _PARSER is None:
        _PARSER = reference_parser()
    return vars(_PARSER.parse_args(argv))


def reference_parser_cached() -> argparse.ArgumentParser:
    global _PARSER
    if _PARSER is None:
        _PARSER = reference_parser()
    return _PARSER


def parse_changed(argv: list[str]) -> dict:
    """The values a script argv sets that differ from sd-scripts' defaults."""
    parser = reference_parser_cached()
    ns = vars(parser.parse_args(argv))
    defaults = vars(parser.parse_args([]))
    return {k: v for k, v in ns.items() if v != defaults[k]}


# --- synthetic LoRA files and SDXL-layout base checkpoints with known spectra (shrink) -------------------------
# Every down/up layer is built as dW = U·diag(σ)·Vᵀ with orthonormal U, V and a chosen σ, stored the way
# sd-scripts stores it (scale alpha/r outside), so the tests know the exact singular values.

LINEAR_Q = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
LINEAR_FF = "lora_unet_input_blocks_4_1_transformer_blocks_0_ff_net_2"
CONV3 = "lora_unet_input_blocks_4_0_in_layers_2"
CONV1 = "lora_unet_input_blocks_4_0_skip_connection"
TE1_Q = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"
TE1_ZERO = "lora_te1_text_model_encoder_layers_11_self_attn_q_proj"
TE2 = "lora_te2_text_model_encoder_layers_0_self_attn_{}_proj"

UNET = "model.diffusion_model."
TE1P = "conditioner.embedders.0.transformer.text_model."
TE2P = "conditioner.embedders.1.model.transformer.resblocks."


def geometric(r: int, step: float = 4.0, top: float = 1.0) -> torch.Tensor:
    """σᵢ = top·10^(−i/step): the spectrum the reference's measurements used."""
    import torch

    return top * 10 ** (-torch.arange(r, dtype=torch.float64) / step)


def orthonormal(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    import torch

    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=gen, dtype=torch.float64))
    return q


def known_layer(out: int, in_flat: int, sigma: torch.Tensor, alpha: float, gen, kernel=()):
    """(down, up, alpha) with (alpha/r)·up·down = U diag(σ) Vᵀ exactly (up to float32 rounding)."""
    import torch

    r = len(sigma)
    U, V = orthonormal(out, r, gen), orthonormal(in_flat, r, gen)
    s = alpha / r
    root = torch.sqrt(sigma / s)
    up = (U * root).float()
    down = (root[:, None] * V.T).float()
    if kernel:
        up = up.reshape(out, r, 1, 1)
        down = down.reshape(r, in_flat // math.prod(kernel), *kernel)
    return {"lora_down.weight": down, "lora_up.weight": up, "alpha": torch.tensor(float(alpha))}


def add(tensors: dict, name: str, parts: dict) -> None:
    for suffix, t in parts.items():
        tensors[f"{name}.{suffix}"] = t


def lora_tensors(seed: int = 0) -> dict:
    """A LoRA + LoCon mix covering UNet linear, 3x3 and 1x1 convs, CLIP-L, CLIP-G q/k/v, a zero layer."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    t: dict = {}
    add(t, LINEAR_Q, known_layer(64, 48, geometric(16), 8.0, gen))
    add(t, LINEAR_FF, known_layer(48, 96, geometric(16, step=3, top=3.0), 16.0, gen))
    add(t, CONV3, known_layer(40, 32 * 9, geometric(8, step=2, top=0.5), 1.0, gen, kernel=(3, 3)))
    add(t, CONV1, known_layer(40, 32, geometric(8), 4.0, gen, kernel=(1, 1)))
    add(t, TE1_Q, known_layer(32, 32, geometric(8, top=0.2), 8.0, gen))
    for p in "qkv":
        add(t, TE2.format(p), known_layer(40, 40, geometric(8, step=2), 8.0, gen))
    zero = known_layer(32, 32, geometric(8), 8.0, gen)
    zero["lora_up.weight"] = torch.zeros_like(zero["lora_up.weight"])
    add(t, TE1_ZERO, zero)
    return t


def tucker_layer(out: int, cin: int, r: int, gen, alpha: float = 4.0) -> dict:
    import torch

    return {
        "lora_down.weight": torch.randn(r, cin, 1, 1, generator=gen) * 0.3,
        "lora_mid.weight": torch.randn(r, r, 3, 3, generator=gen) * 0.3,
        "lora_up.weight": torch.randn(out, r, 1, 1, generator=gen) * 0.3,
        "alpha": torch.tensor(alpha),
    }


def tucker_delta(parts: dict) -> torch.Tensor:
    """ΔW of a Tucker LoCon, written out index by index: ΔW[o,c,y,x] = s·Σ up[o,i]·mid[i,j,y,x]·down[j,c]."""
    import torch

    up = parts["lora_up.weight"].double()[:, :, 0, 0]
    down = parts["lora_down.weight"].double()[:, :, 0, 0]
    mid = parts["lora_mid.weight"].double()
    s = float(parts["alpha"]) / down.shape[0]
    return s * torch.einsum("oi,ijyx,jc->ocyx", up, mid, down)


def loha_layer(out: int, cin: int, r: int, gen) -> dict:
    import torch

    return {
        "hada_w1_a": torch.randn(out, r, generator=gen),
        "hada_w1_b": torch.randn(r, cin, generator=gen),
        "hada_w2_a": torch.randn(out, r, generator=gen),
        "hada_w2_b": torch.randn(r, cin, generator=gen),
        "alpha": torch.tensor(float(r)),
    }


def base_tensors(fro: dict | None = None, sdxl: bool = True, seed: int = 1) -> dict:
    """An SGM-layout SDXL checkpoint holding just the weights the synthetic LoRA touches.

    Each weight is scaled to a chosen Frobenius norm so `fro_ckpt` references are known. CLIP-G's fused
    in_proj has q, k, v thirds with norms 1, 10 and 100 so a test can tell which third a layer was scored
    against.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    fro = fro or {}

    def weight(shape, norm):
        w = torch.randn(*shape, generator=gen)
        return (w * (norm / w.norm())).to(torch.float16)

    t = {
        UNET + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight": weight((64, 48), fro.get(LINEAR_Q, 20.0)),
        UNET + "input_blocks.4.1.transformer_blocks.0.ff.net.2.weight": weight((48, 96), fro.get(LINEAR_FF, 30.0)),
        UNET + "input_blocks.4.0.in_layers.2.weight": weight((40, 32, 3, 3), fro.get(CONV3, 10.0)),
        UNET + "input_blocks.4.0.skip_connection.weight": weight((40, 32, 1, 1), fro.get(CONV1, 5.0)),
        TE1P + "encoder.layers.0.self_attn.q_proj.weight": weight((32, 32), fro.get(TE1_Q, 8.0)),
        TE1P + "encoder.layers.11.self_attn.q_proj.weight": weight((32, 32), 8.0),
        TE2P + "0.attn.in_proj_weight": torch.cat([weight((40, 40), n) for n in (1.0, 10.0, 100.0)]),
        TE2P + "0.attn.out_proj.weight": weight((40, 40), 4.0),
    }
    if sdxl:
        t[UNET + "label_emb.0.0.weight"] = torch.zeros(4, 2816, dtype=torch.float16)
    return t


def save(path, tensors: dict, metadata: dict | None = None):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


TRAINING_METADATA = {
    "ss_network_module": "lycoris.kohya",
    "ss_network_dim": "16",
    "ss_network_alpha": "8",
    "ss_network_args": '{"conv_dim": "8", "conv_alpha": "1", "algo": "locon"}',
    "ss_base_model_version": "sdxl_base_v1-0",
    "ss_training_comment": "trained for a test",
    "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
    "sshs_model_hash": "stale",
    "sshs_legacy_hash": "stale",
}


# --- a training run on disk, as sd-scripts 48d368f and `loratrain run` leave it (report) ----------------------
# TensorBoard events through accelerate's own TensorBoardTracker (what `accelerator.log` uses) into
# `<logging_dir>/<log_prefix><YYYYmmddHHMMSS>/network_train/` with train_network.py's tags (`loss/current`,
# `loss/average`, `lr/unet`, `lr/textencoder`, `loss/epoch_average` per epoch); samples named like
# train_util.sample_image_inference (`<output_name>_<step:06d>_<prompt:02d>_<YYYYmmddHHMMSS>[_<seed>].png`, or
# `e<epoch:06d>` at an epoch's end); adapters `<output_name>-step<step:08d>.safetensors` with ss_steps/ss_epoch
# metadata and SDXL kohya module names, lora_up zero where a module never trained (kohya initialises it to zero);
# the run record through launch/record.py's real RunRecord.

# Modules the report fixture's run leaves untrained, and the one holding a NaN in its step-100 save.
UNTRAINED = ("lora_unet_middle_block_1_proj_in", "lora_unet_output_blocks_3_1_transformer_blocks_0_attn2_to_k")
NAN_MODULE = "lora_unet_input_blocks_4_1_proj_out"

# SDXL U-Net transformer stacks: (block name, width, transformer blocks), as sd-scripts' SDXL U-Net names them.
SDXL_STACKS = [
    ("input_blocks_4_1", 640, 2),
    ("input_blocks_5_1", 640, 2),
    ("input_blocks_7_1", 1280, 10),
    ("input_blocks_8_1", 1280, 10),
    ("middle_block_1", 1280, 10),
    ("output_blocks_0_1", 1280, 10),
    ("output_blocks_1_1", 1280, 10),
    ("output_blocks_2_1", 1280, 10),
    ("output_blocks_3_1", 640, 2),
    ("output_blocks_4_1", 640, 2),
    ("output_blocks_5_1", 640, 2),
]
SAMPLE_PROMPTS = [
    "1girl, solo, looking at viewer --n lowres --w 1024 --h 1024 --d 42",
    "a red fox in the snow, highly detailed --d 7",
    "portrait of an old man, dramatic light",
    "a castle on a hill at sunset --d 1234",
    "still life with apples --d 5",
    "cyberpunk street at night, rain --d 99",
]


def sdxl_modules(full: bool = True) -> list[tuple[str, int, int]]:
    """(kohya module name, in features, out features) of an SDXL U-Net LoRA: 722 modules when `full`."""
    out = []
    stacks = SDXL_STACKS if full else [SDXL_STACKS[0], SDXL_STACKS[4], SDXL_STACKS[8]]
    for stack, dim, blocks in stacks:
        out.append((f"lora_unet_{stack}_proj_in", dim, dim))
        for b in range(blocks if full else 1):
            p = f"lora_unet_{stack}_transformer_blocks_{b}_"
            out += [
                (p + "attn1_to_q", dim, dim),
                (p + "attn1_to_k", dim, dim),
                (p + "attn1_to_v", dim, dim),
                (p + "attn1_to_out_0", dim, dim),
                (p + "attn2_to_q", dim, dim),
                (p + "attn2_to_k", 2048, dim),
                (p + "attn2_to_v", 2048, dim),
                (p + "attn2_to_out_0", dim, dim),
                (p + "ff_net_0_proj", dim, dim * 8),
                (p + "ff_net_2", dim * 4, dim),
            ]
        out.append((f"lora_unet_{stack}_proj_out", dim, dim))
    return out


def saved_lora_tensors(
    step: int,
    *,
    rank: int = 8,
    full: bool = True,
    untrained: tuple[str, ...] = (),
    nan_in: str | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A kohya LoRA after `step` steps: lora_down random (its init), lora_up grown with the step."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, fin, fout in sdxl_modules(full):
        down = rng.standard_normal((rank, fin)).astype(np.float16) * np.float16(0.02)
        if name in untrained:
            up = np.zeros((fout, rank), np.float16)
        else:
            up = (rng.standard_normal((fout, rank)) * 1e-3 * math.sqrt(step)).astype(np.float16)
        if name == nan_in:
            up[0, 0] = np.nan
        tensors[f"{name}.lora_down.weight"] = down
        tensors[f"{name}.lora_up.weight"] = up
        tensors[f"{name}.alpha"] = np.array(rank / 2, dtype=np.float16)
    return tensors


def save_lora(path: Path, tensors: dict, step: int, epoch: int) -> Path:
    from safetensors.numpy import save_file

    save_file(
        tensors,
        str(path),
        metadata={
            "ss_steps": str(step),
            "ss_epoch": str(epoch),
            "ss_network_module": "networks.lora",
            "ss_output_name": path.stem,
        },
    )
    return path


def write_events(
    logging_dir: Path, stamp: dt.datetime, steps: range, steps_per_epoch: int, prefix: str = "", loss_at=None
) -> Path:
    """Log like train_network.py: step logs each step, loss/epoch_average at each epoch's end (step = epoch)."""
    from accelerate.tracking import TensorBoardTracker

    folder = logging_dir / f"{prefix}{stamp:%Y%m%d%H%M%S}"
    tracker = TensorBoardTracker("network_train", str(folder))
    tracker.start()
    writer = tracker.writer
    loss_at = loss_at or (lambda s: 0.12 + 0.05 * math.exp(-s / 300) + 0.01 * math.sin(s))
    total = 0.0
    for i, step in enumerate(steps, start=1):
        loss = loss_at(step)
        total += loss
        lr = 1e-4 * min(1.0, step / 50)
        # accelerate's tracker.log() flushes after every call; its add_scalar calls are the same, flushed once.
        for tag, value in (
            ("loss/current", loss),
            ("loss/average", total / i),
            ("lr/unet", lr),
            ("lr/textencoder", lr / 2),
        ):
            writer.add_scalar(tag, value, global_step=step)
        if step % steps_per_epoch == 0:
            writer.add_scalar("loss/epoch_average", total / i, global_step=step // steps_per_epoch)
    tracker.finish()
    return folder


def sample_png(path: Path, size: int, seed: int) -> None:
    """A smooth picture with some noise, saved the way sd-scripts saves samples (PIL, PNG defaults)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([np.sin(x * 6 + seed) * 0.5 + 0.5, np.cos(y * 5 + seed) * 0.5 + 0.5, x * y], axis=-1)
    rgb = np.clip(rgb * 255 + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def sample_name(
    output_name: str | None,
    *,
    step: int | None = None,
    epoch: int | None = None,
    index: int,
    stamp: dt.datetime,
    seed: int | None,
) -> str:
    """train_util.sample_image_inference's file name (48d368f)."""
    when = f"e{epoch:06d}" if epoch is not None else f"{step:06d}"
    return (
        f"{'' if output_name is None else output_name + '_'}{when}_{index:02d}_{stamp:%Y%m%d%H%M%S}"
        f"{'' if seed is None else f'_{seed}'}.png"
    )


def make_run(
    root: Path,
    *,
    name: str = "mylora",
    total_steps: int = 200,
    save_every: int = 50,
    sample_every: int = 100,
    prompts: int = 3,
    image_size: int = 64,
    logging: bool = True,
    full_modules: bool = False,
    untrained: tuple[str, ...] = (),
    nan_save: int | None = None,
    nan_module: str | None = None,
    status: str = "succeeded",
    steps_per_epoch: int = 100,
    started: dt.datetime | None = None,
) -> Path:
    """A run's output_dir with a run record; returns the record folder."""
    from loratrain.launch.record import RunRecord

    out = root / "out"
    out.mkdir(parents=True, exist_ok=True)
    started = started or dt.datetime.now().astimezone().replace(microsecond=0) - dt.timedelta(minutes=30)
    prompt_file = root / "prompts.txt"
    prompt_file.write_text("# sample prompts\n" + "\n".join(SAMPLE_PROMPTS[:prompts]) + "\n", encoding="utf-8")
    argv = [
        "python",
        "-m",
        "accelerate.commands.launch",
        "--num_processes=1",
        "sdxl_train_network.py",
        f"--output_dir={out}",
        f"--output_name={name}",
        f"--sample_prompts={prompt_file}",
        f"--sample_every_n_steps={sample_every}",
        "--save_model_as=safetensors",
        f"--save_every_n_steps={save_every}",
        "--network_module=networks.lora",
    ]
    if logging:
        argv.append(f"--logging_dir={root / 'logs'}")
    rec = RunRecord(out, name, started=started)
    rec.start(
        argv=argv,
        env={"PYTHONUNBUFFERED": "1"},
        cwd=str(root),
        config={"saving": {"output_dir": str(out)}},
        config_file=str(root / "config.toml"),
        versions={"torch": "2.13.0", "accelerate": "1.0.0"},
        sd_scripts={"path": "/sd-scripts", "commit": "48d368f"},
        gpus=[{"index": 0, "name": "NVIDIA H100"}],
    )
    local_start = started.astimezone().replace(tzinfo=None)
    if logging:
        write_events(root / "logs", local_start + dt.timedelta(seconds=20), range(1, total_steps + 1), steps_per_epoch)
    sample_dir = out / "sample"
    sample_dir.mkdir()
    seeds = [_seed(p) for p in SAMPLE_PROMPTS[:prompts]]
    for n, step in enumerate(range(sample_every, total_steps + 1, sample_every)):
        stamp = local_start + dt.timedelta(minutes=1, seconds=n * 10)
        for i in range(prompts):
            sample_png(
                sample_dir / sample_name(name, step=step, index=i, stamp=stamp, seed=seeds[i]),
                image_size,
                seed=n * 10 + i,
            )
    for step in range(save_every, total_steps + 1, save_every):
        tensors = saved_lora_tensors(
            step, full=full_modules, untrained=untrained, nan_in=nan_module if step == nan_save else None, seed=step
        )
        save_lora(out / f"{name}-step{step:08d}.safetensors", tensors, step, step // steps_per_epoch)
    if status != "running":
        rec.finish(exit_code=0 if status == "succeeded" else 1, duration_s=1800.0)
    return rec.folder


def _seed(prompt: str) -> int | None:
    from loratrain.plan.prompts import parse_prompt_line

    return parse_prompt_line(prompt)[0].get("seed")


# --- a page in a real browser ---------------------------------------------------------------------------------


def chromium_path() -> str | None:
    """Debian's Chromium, if installed (the report and compare pages are checked in it)."""
    import shutil

    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Dom(HTMLParser):
    """What a page's DOM ended as: <body>'s attributes, every <img>, and every grid cell (a <td> with
    data-prompt) with the image inside it."""

    def __init__(self):
        super().__init__()
        self.body: dict = {}
        self.images: list[dict] = []
        self.cells: list[dict] = []
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "td" and "data-prompt" in a:
            self._cell = {**a, "img": None}
            self.cells.append(self._cell)
        elif tag == "img":
            self.images.append(a)
            if self._cell is not None:
                self._cell["img"] = a

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None


def browser_dom(chromium: str, page: Path, profile: Path) -> Dom:
    """Load `page` from disk in headless Chromium (no network) and parse the DOM it ends with, after the page's
    own load handler has marked every image (data-natural-width, and body data-images="ok/total")."""
    dom = Dom()
    dom.feed(browser_dump(chromium, page, profile))
    return dom


def browser_dump(chromium: str, page: Path, profile: Path) -> str:
    """The DOM headless Chromium ends with after loading `page` from disk (no network), as HTML text."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# --- adapter variants (fit's exact adapter counts against the real packages) ---------------------------------


def lycoris_args(algo: str, *extra: str, dim: int = 8, **args) -> dict:
    """sd-scripts' script args of a lycoris.kohya adapter (network_alpha 4)."""
    return {
        "network_module": "lycoris.kohya",
        "network_dim": dim,
        "network_alpha": 4.0,
        "network_args": [f"algo={algo}", *extra],
        **args,
    }


ADAPTER_VARIANTS = {
    "lora plain": {"network_module": "networks.lora", "network_dim": 16, "network_alpha": 8.0},
    "lora default dim": {"network_module": "networks.lora"},
    "lora conv_dim": {
        "network_module": "networks.lora",
        "network_dim": 8,
        "network_args": ["conv_dim=4", "conv_alpha=1"],
    },
    "lora unet only": {"network_module": "networks.lora", "network_dim": 4, "network_train_unet_only": True},
    "lora te only": {"network_module": "networks.lora", "network_dim": 4, "network_train_text_encoder_only": True},
    "locon full": lycoris_args("locon", "preset=full", "conv_dim=16"),
    "locon default conv_dim": lycoris_args("locon"),
    "locon tucker": lycoris_args("locon", "conv_dim=16", "use_tucker=True"),
    "locon tucker off": lycoris_args("locon", "conv_dim=16", "use_tucker=False"),
    "locon scalar": lycoris_args("lora", "use_scalar=True", "conv_dim=4"),
    "locon train_norm": lycoris_args("locon", "train_norm=True", "preset=full"),
    "locon conv off": lycoris_args("locon", "conv_dim=0"),
    "locon full-lin": lycoris_args("locon", "preset=full-lin"),
    "locon attn-mlp": lycoris_args("locon", "preset=attn-mlp"),
    "locon attn-only": lycoris_args("locon", "preset=attn-only"),
    "locon unet-only": lycoris_args("locon", "preset=unet-only"),
    "locon unet-transformer-only": lycoris_args("locon", "preset=unet-transformer-only"),
    "locon unet-convblock-only": lycoris_args("locon", "preset=unet-convblock-only", "conv_dim=4"),
    "locon cached te": lycoris_args("locon", cache_text_encoder_outputs=True, network_train_unet_only=True),
    "loha": lycoris_args("loha", "conv_dim=4"),
    "loha tucker": lycoris_args("loha", "conv_dim=4", "use_tucker=True"),
    "lokr": lycoris_args("lokr", "conv_dim=4"),
    "lokr factor 8": lycoris_args("lokr", "factor=8", "conv_dim=4"),
    "lokr factor 16 tucker": lycoris_args("lokr", "factor=16", "conv_dim=2", "use_tucker=True"),
    "lokr decompose_both": lycoris_args("lokr", "decompose_both=True", "factor=4"),
    "lokr full dim": lycoris_args("lokr", "preset=attn-mlp", "factor=8", dim=10000),
    "lokr full_matrix": lycoris_args("lokr", "full_matrix=True", "factor=16", "conv_dim=0"),
    "lokr unbalanced": lycoris_args("lokr", "unbalanced_factorization=True", "factor=8"),
    # rank 60 against 1280 = 8 x 160: low-rank factor, as r < max(160, 160) / 2 (at 80 and above, a full matrix)
    "lokr rank below the full-factor switch": lycoris_args("lokr", "factor=8", "conv_dim=4", dim=60),
    "locon bypass_mode": lycoris_args("locon", "bypass_mode=True"),
}


# --- doctor: real virtual environments linking this one's packages (tests/run/test_doctor.py, benchmarks) ---

from loratrain.launch import requirements as _requirements  # noqa: E402

SITE = Path(sysconfig.get_paths()["purelib"])
REQUIREMENTS = FIXTURES / "sd_scripts_requirements" / "requirements.txt"
PINS = {r.dist: r for r in _requirements.parse_requirements(REQUIREMENTS.read_text())}


def _entries_of(dist: str) -> set[str]:
    """The top-level names (packages, modules, its .dist-info) a distribution installed into site-packages."""
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return set()
    return {f.parts[0] for f in found.files or () if f.parts[0] not in ("..", "__pycache__")}


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def write_metadata(site: Path, dist: str, version: str, top_level: tuple[str, ...] = ()) -> None:
    """A .dist-info as pip leaves it: METADATA with the version, and top_level.txt naming the modules it holds."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    if top_level:
        (info / "top_level.txt").write_text("".join(f"{m}\n" for m in top_level))


def write_stub(site: Path, dist: str, version: str, module: str, init: str = "") -> None:
    """An installed distribution whose module imports (a stub that only knows its version) with its metadata."""
    (site / module).mkdir(exist_ok=True)
    (site / module / "__init__.py").write_text(init or f"__version__ = {version!r}\n")
    write_metadata(site, dist, version, (module,))


def make_env(root: Path, hide: tuple[str, ...] = (), complete: bool = True) -> tuple[str, Path]:
    """(interpreter, its site-packages): a venv linking the test environment's packages minus `hide`.

    `complete`: sd-scripts pins some packages this test environment does not carry (opencv-python,
    voluptuous, ...); they get installed at the pinned version as stubs (metadata and a module that imports),
    which is what the requirement check reads (it locates their modules and imports only cv2). The packages a
    config imports are always real.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, capture_output=True)
    site = next((root / "lib").glob("python3*/site-packages"))
    hidden: set[str] = set()
    for dist in hide:
        hidden |= _entries_of(dist)
    for entry in SITE.iterdir():
        if entry.name not in hidden and not (site / entry.name).exists():
            (site / entry.name).symlink_to(entry)
    if complete:
        for dist, req in PINS.items():
            if dist not in hide and not _installed(dist) and dist not in _requirements.OPTIONAL_DISTS:
                write_stub(site, dist, req.pin or "1.0", _requirements.use_of(dist).module)
    return str(root / "bin" / "python"), site


def build_train_network_adapter(module, args: dict, kwargs: dict, text_encoders: list, unet):
    """The adapter `module` (lycoris.kohya or networks.lora) makes for these script args, created and applied the
    way train_network.py does it, on the meta device where the package allows (LoHa/LoKr convs call .item() on a
    shape tensor: those are built on the CPU)."""
    import torch

    def create():
        return module.create_network(
            1.0,
            args.get("network_dim"),
            args.get("network_alpha"),
            None,
            text_encoders,
            unet,
            neuron_dropout=args.get("network_dropout"),
            **kwargs,
        )

    try:
        with torch.device("meta"):
            net = create()
    except RuntimeError as exc:
        assert "meta" in str(exc)
        net = create()
    train_te = not args.get("network_train_unet_only") and not args.get("cache_text_encoder_outputs")
    net.apply_to(text_encoders, unet, train_te, not args.get("network_train_text_encoder_only"))
    return net


def load_fit_generator():
    """src/loratrain/data/fit/make_sdxl_fit_data.py as a module (it is a script beside its data, not a package)."""
    import importlib.util

    import loratrain.fit.model as fit_model

    path = Path(fit_model.__file__).resolve().parent.parent / "data" / "fit" / "make_sdxl_fit_data.py"
    spec = importlib.util.spec_from_file_location("make_sdxl_fit_data", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen
