"""Build a finished (or running) sd-scripts run on disk for the report tests and benchmark.

Everything is written the way sd-scripts 48d368f writes it:
- TensorBoard events through accelerate's own TensorBoardTracker (what `accelerator.log` uses) into
  `<logging_dir>/<log_prefix><YYYYmmddHHMMSS>/network_train/`, with train_network.py's tags
  (`loss/current`, `loss/average`, `lr/unet`, `lr/textencoder`, `loss/epoch_average` logged per epoch);
- samples as `<output_dir>/sample/<output_name>_<step:06d>_<prompt:02d>_<YYYYmmddHHMMSS>[_<seed>].png`
  (or `e<epoch:06d>` at an epoch's end), train_util.sample_image_inference's pattern;
- adapters as `<output_name>-step<step:08d>.safetensors` with `ss_steps`/`ss_epoch` metadata and SDXL
  kohya module names (`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`, ...), lora_up zero where a
  module never trained (kohya initialises lora_up to zero);
- the loratrain run record (launch/record.py's RunRecord, the real class).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

import numpy as np

# SDXL U-Net transformer stacks: (block name, width, transformer blocks), as sd-scripts' SDXL U-Net names them.
SDXL_STACKS = [("input_blocks_4_1", 640, 2), ("input_blocks_5_1", 640, 2), ("input_blocks_7_1", 1280, 10),
               ("input_blocks_8_1", 1280, 10), ("middle_block_1", 1280, 10), ("output_blocks_0_1", 1280, 10),
               ("output_blocks_1_1", 1280, 10), ("output_blocks_2_1", 1280, 10), ("output_blocks_3_1", 640, 2),
               ("output_blocks_4_1", 640, 2), ("output_blocks_5_1", 640, 2)]
PROMPTS = ["1girl, solo, looking at viewer --n lowres --w 1024 --h 1024 --d 42",
           "a red fox in the snow, highly detailed --d 7",
           "portrait of an old man, dramatic light",
           "a castle on a hill at sunset --d 1234",
           "still life with apples --d 5",
           "cyberpunk street at night, rain --d 99"]


def sdxl_modules(full: bool = True) -> list[tuple[str, int, int]]:
    """(kohya module name, in features, out features) of an SDXL U-Net LoRA: 722 modules when `full`."""
    out = []
    stacks = SDXL_STACKS if full else [SDXL_STACKS[0], SDXL_STACKS[4], SDXL_STACKS[8]]
    for stack, dim, blocks in stacks:
        out.append((f"lora_unet_{stack}_proj_in", dim, dim))
        for b in range(blocks if full else 1):
            p = f"lora_unet_{stack}_transformer_blocks_{b}_"
            out += [(p + "attn1_to_q", dim, dim), (p + "attn1_to_k", dim, dim), (p + "attn1_to_v", dim, dim),
                    (p + "attn1_to_out_0", dim, dim), (p + "attn2_to_q", dim, dim), (p + "attn2_to_k", 2048, dim),
                    (p + "attn2_to_v", 2048, dim), (p + "attn2_to_out_0", dim, dim),
                    (p + "ff_net_0_proj", dim, dim * 8), (p + "ff_net_2", dim * 4, dim)]
        out.append((f"lora_unet_{stack}_proj_out", dim, dim))
    return out


def lora_tensors(step: int, *, rank: int = 8, full: bool = True, untrained: tuple[str, ...] = (),
                 nan_in: str | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """A kohya LoRA after `step` steps: lora_down random (its init), lora_up grown with the step."""
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

    save_file(tensors, str(path), metadata={"ss_steps": str(step), "ss_epoch": str(epoch),
                                            "ss_network_module": "networks.lora", "ss_output_name": path.stem})
    return path


def write_events(logging_dir: Path, stamp: dt.datetime, steps: range, steps_per_epoch: int,
                 prefix: str = "", loss_at=None) -> Path:
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
        for tag, value in (("loss/current", loss), ("loss/average", total / i), ("lr/unet", lr),
                           ("lr/textencoder", lr / 2)):
            writer.add_scalar(tag, value, global_step=step)
        if step % steps_per_epoch == 0:
            writer.add_scalar("loss/epoch_average", total / i, global_step=step // steps_per_epoch)
    tracker.finish()
    return folder


def sample_png(path: Path, size: int, seed: int) -> None:
    """A smooth picture with some noise, saved the way sd-scripts saves samples (PIL, PNG defaults)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([np.sin(x * 6 + seed) * 0.5 + 0.5, np.cos(y * 5 + seed) * 0.5 + 0.5, x * y], axis=-1)
    rgb = np.clip(rgb * 255 + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def sample_name(output_name: str | None, *, step: int | None = None, epoch: int | None = None, index: int,
                stamp: dt.datetime, seed: int | None) -> str:
    """train_util.sample_image_inference's file name (48d368f)."""
    when = f"e{epoch:06d}" if epoch is not None else f"{step:06d}"
    return (f"{'' if output_name is None else output_name + '_'}{when}_{index:02d}_{stamp:%Y%m%d%H%M%S}"
            f"{'' if seed is None else f'_{seed}'}.png")


def make_run(root: Path, *, name: str = "mylora", total_steps: int = 200, save_every: int = 50,
             sample_every: int = 100, prompts: int = 3, image_size: int = 64, logging: bool = True,
             full_modules: bool = False, untrained: tuple[str, ...] = (), nan_save: int | None = None,
             nan_module: str | None = None, status: str = "succeeded", steps_per_epoch: int = 100,
             started: dt.datetime | None = None) -> Path:
    """A run's output_dir with a run record; returns the record folder."""
    from loratrain.launch.record import RunRecord

    out = root / "out"
    out.mkdir(parents=True, exist_ok=True)
    started = started or dt.datetime.now().astimezone().replace(microsecond=0) - dt.timedelta(minutes=30)
    prompt_file = root / "prompts.txt"
    prompt_file.write_text("# sample prompts\n" + "\n".join(PROMPTS[:prompts]) + "\n", encoding="utf-8")
    argv = ["python", "-m", "accelerate.commands.launch", "--num_processes=1", "sdxl_train_network.py",
            f"--output_dir={out}", f"--output_name={name}", f"--sample_prompts={prompt_file}",
            f"--sample_every_n_steps={sample_every}", "--save_model_as=safetensors",
            f"--save_every_n_steps={save_every}", "--network_module=networks.lora"]
    if logging:
        argv.append(f"--logging_dir={root / 'logs'}")
    rec = RunRecord(out, name, started=started)
    rec.start(argv=argv, env={"PYTHONUNBUFFERED": "1"}, cwd=str(root), config={"saving": {"output_dir": str(out)}},
              config_file=str(root / "config.toml"), versions={"torch": "2.13.0", "accelerate": "1.0.0"},
              sd_scripts={"path": "/sd-scripts", "commit": "48d368f"}, gpus=[{"index": 0, "name": "NVIDIA H100"}])
    local_start = started.astimezone().replace(tzinfo=None)
    if logging:
        write_events(root / "logs", local_start + dt.timedelta(seconds=20), range(1, total_steps + 1), steps_per_epoch)
    sample_dir = out / "sample"
    sample_dir.mkdir()
    seeds = [_seed(p) for p in PROMPTS[:prompts]]
    for n, step in enumerate(range(sample_every, total_steps + 1, sample_every)):
        stamp = local_start + dt.timedelta(minutes=1, seconds=n * 10)
        for i in range(prompts):
            sample_png(sample_dir / sample_name(name, step=step, index=i, stamp=stamp, seed=seeds[i]), image_size,
                       seed=n * 10 + i)
    for step in range(save_every, total_steps + 1, save_every):
        tensors = lora_tensors(step, full=full_modules, untrained=untrained,
                               nan_in=nan_module if step == nan_save else None, seed=step)
        save_lora(out / f"{name}-step{step:08d}.safetensors", tensors, step, step // steps_per_epoch)
    if status != "running":
        rec.finish(exit_code=0 if status == "succeeded" else 1, duration_s=1800.0)
    return rec.folder


def _seed(prompt: str) -> int | None:
    from loratrain.plan.prompts import parse_prompt_line

    return parse_prompt_line(prompt)[0].get("seed")


def now_stamp() -> float:
    return time.time()
