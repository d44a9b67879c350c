"""sd-scripts' progress lines become a progress bar; GPU counts come from nvidia-smi or torch."""

from __future__ import annotations

import io
import os

import pytest
from helpers import write_fake_nvidia_smi

from loratrain.launch import gpus
from loratrain.launch.progress import ProgressDisplay, parse_progress


def test_a_training_step_line_gives_step_total_loss_speed_and_time_left():
    p = parse_progress("steps:  12%|█▏        | 48/400 [01:02<07:30,  1.30s/it, avr_loss=0.0812]")
    assert (p.step, p.total, p.avr_loss, p.speed, p.eta, p.elapsed) == (48, 400, 0.0812, "1.30s/it", "07:30", "01:02")
    assert p.seconds_per_step == 1.3


def test_the_first_line_before_any_step_has_no_speed_loss_or_eta():
    p = parse_progress("steps:   0%|          | 0/400 [00:00<?, ?it/s]")
    assert (p.step, p.total, p.avr_loss, p.speed, p.eta) == (0, 400, None, None, None)


def test_weight_norm_postfix_and_scientific_loss_are_read():
    p = parse_progress(
        "steps:  50%|█████     | 5/10 [00:05<00:05,  2.41it/s, Keys Scaled=3, Average key norm=0.12, avr_loss=1.2e-05]"
    )
    assert p.avr_loss == 1.2e-05 and p.speed == "2.41it/s"
    assert abs(p.seconds_per_step - 1 / 2.41) < 1e-9


def test_lines_drawn_by_real_tqdm_as_sd_scripts_sets_it_up_are_read():
    tqdm = pytest.importorskip("tqdm").tqdm  # installed with lycoris_lora / huggingface_hub
    out = io.StringIO()
    bar = tqdm(range(400), smoothing=0, desc="steps", file=out, mininterval=0)  # train_network.py's settings
    for loss in (0.0812, 0.0799, 0.0785):
        bar.update(1)
        bar.set_postfix(**{"avr_loss": loss})
    bar.set_postfix(**{"Keys Scaled": 3, "Average key norm": 0.1234, "avr_loss": 1.2e-05})
    bar.close()
    drawn = [s for s in out.getvalue().replace("\n", "\r").split("\r") if s.strip()]
    parsed = [parse_progress(s) for s in drawn]
    assert all(p is not None and p.desc == "steps" and p.total == 400 for p in parsed)
    assert parsed[-1].step == 3 and parsed[-1].avr_loss == 1.2e-05 and parsed[-1].speed.endswith(("it/s", "s/it"))


def test_ordinary_log_lines_are_not_progress():
    assert parse_progress("INFO     Loading dataset [train_util.py:1234]") is None
    assert parse_progress("epoch 1/10") is None


def _display() -> tuple[ProgressDisplay, io.StringIO]:
    from rich.console import Console

    out = io.StringIO()
    return ProgressDisplay(Console(file=out, force_terminal=False, width=120)), out


def test_display_tracks_the_latest_step_across_carriage_return_redraws_and_chunk_splits():
    display, out = _display()
    stream = (
        "prepare network\n"
        + "".join(
            f"\rsteps: {i * 10:3d}%|#         | {i}/10 [00:0{i}<00:0{10 - i}, 1.00s/it, avr_loss={0.1 - i / 100:.3f}]"
            for i in range(0, 8)
        )
    ).encode()
    for start in range(0, len(stream), 7):  # arbitrary chunking, as a pipe delivers it
        display.feed(stream[start : start + 7])
    assert display.last.step == 7 and display.last.total == 10 and display.last.avr_loss == 0.03
    display.feed("\nsaving checkpoint: out/mychar.safetensors\n".encode())
    display.close()
    text = out.getvalue()
    assert "prepare network" in text and "saving checkpoint: out/mychar.safetensors" in text


def test_other_bars_show_only_their_final_state():
    display, out = _display()
    display.feed(b"\r 50%|#####     | 1/2 [00:01<00:01, 1.00it/s]\r100%|##########| 2/2 [00:02<00:00, 1.00it/s]\n")
    display.close()
    assert out.getvalue().count("|") == 2 and "2/2" in out.getvalue() and "1/2" not in out.getvalue()
    assert display.last is None


def test_fake_nvidia_smi_gives_names_and_compute_capability(tmp_path):
    bin_dir = tmp_path / "bin"
    write_fake_nvidia_smi(bin_dir, [("NVIDIA A100-SXM4-80GB", "8.0"), ("Tesla T4", "7.5")])
    scan = gpus.scan("python-not-needed", {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert scan.source == "nvidia-smi" and scan.count == 2
    assert [(g.name, g.bf16) for g in scan.gpus] == [("NVIDIA A100-SXM4-80GB", True), ("Tesla T4", False)]


def test_cuda_visible_devices_narrows_and_renumbers_the_gpus(tmp_path):
    bin_dir = tmp_path / "bin"
    write_fake_nvidia_smi(bin_dir, [("GPU-A", "8.6"), ("GPU-B", "7.0"), ("GPU-C", "9.0")])
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CUDA_VISIBLE_DEVICES": "2,0"}
    scan = gpus.scan("unused", env)
    assert [(g.index, g.name) for g in scan.gpus] == [(0, "GPU-C"), (1, "GPU-A")]


def test_without_nvidia_smi_torch_in_the_training_interpreter_is_asked(tmp_path, python):
    # No nvidia-smi on this PATH; the CPU torch in the test venv reports zero CUDA GPUs.
    env = {"PATH": str(tmp_path), "HOME": os.environ.get("HOME", "/tmp")}
    scan = gpus.scan(python, env)
    assert scan.source == "torch" and scan.count == 0
