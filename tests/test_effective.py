"""The effective view (loratrain/effective.py) is built once per config, and fit, plan, check, run --dry-run,
slurm and doctor print the same facts from it: the optimizer that really runs, the process count, batch and
resolution, the training precision."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from helpers import BASE, CONFIGS, FIXTURE_SD_SCRIPTS, run_cli, write_fake_nvidia_smi

from loratrain.config.loader import load_config
from loratrain.effective import Effective, parse_resolution, processes
from loratrain.launch import gpus

SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.toml"))
GPUS = 2  # the fake nvidia-smi below lists two

# (name, drop the optimizer_type line?, --set overrides)
VARIANTS = [
    ("as shipped", False, []),
    ("use_8bit_adam", True, ["extra.use_8bit_adam=true"]),
    ("auto processes", False, ['accelerate.num_processes="auto"']),
    ("two processes", False, ["accelerate.num_processes=2"]),
    (
        "batch 3 at 768",
        False,
        ["training.train_batch_size=3", 'dataset.resolution="768"', "buckets.max_bucket_reso=768"],
    ),
    ("fp16", False, ['precision.mixed_precision="fp16"']),
]


@pytest.fixture
def two_gpus(tmp_path, monkeypatch):
    write_fake_nvidia_smi(tmp_path / "bin", [("NVIDIA H100 80GB HBM3", "9.0")] * GPUS)
    path = str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", "")
    monkeypatch.setenv("PATH", path)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return {"PATH": path}


def _variant(tmp_path: Path, config: str, drop_optimizer: bool) -> Path:
    text = (CONFIGS / f"{config}.toml").read_text(encoding="utf-8")
    if drop_optimizer:
        text = re.sub(r"(?m)^optimizer_type = .*\n", "", text)
    path = tmp_path / f"{config}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _sets(sets: list[str]) -> list[str]:
    return [a for kv in sets for a in ("--set", kv)]


def _json(result) -> dict:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name,drop_optimizer,sets", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("config", SHIPPED)
def test_every_verb_reads_the_same_view(two_gpus, tmp_path, config, name, drop_optimizer, sets):
    if drop_optimizer and "optimizer_args" in (CONFIGS / f"{config}.toml").read_text(encoding="utf-8"):
        pytest.skip("this config's optimizer_args belong to its own optimizer")
    path = _variant(tmp_path, config, drop_optimizer)
    cfg = load_config(path, sets).config
    view = Effective.from_config(cfg, gpus.visible_count(cfg.accelerate.model_dump()))
    facts = view.facts()
    total = view.processes.total
    env = two_gpus

    fit = _json(run_cli("fit", str(path), "--vram", "80", "--json", *_sets(sets), env=env))
    assert fit["effective"] == facts
    assert fit["facts"]["processes"] == total
    assert fit["facts"]["optimizer"] == view.optimizer_type
    assert fit["facts"]["batch"] == view.train_batch_size
    assert fit["facts"]["resolution"] == list(view.resolution_or_native)
    assert fit["facts"]["text_encoders_trained"] == view.text_encoders_trained
    assert fit["facts"]["mixed_precision"] == view.precision.mixed

    plan = _json(run_cli("plan", str(path), "--json", *_sets(sets), env=env))
    assert plan["effective"] == facts
    assert plan["num_processes"] == total

    check = _json(run_cli("check", str(path), "--no-preflight", "--json", *_sets(sets), env=env))
    assert check["effective"] == facts

    dry = _json(run_cli("run", str(path), "--dry-run", "--json", *_sets(sets), env=env))
    assert f"--num_processes={total}" in dry["argv"]

    per_node = ["--gpus-per-node", str(GPUS)] if view.processes.auto else []
    slurm = run_cli("slurm", str(path), "--sd-scripts", str(FIXTURE_SD_SCRIPTS), *per_node, *_sets(sets), env=env)
    assert slurm.returncode == 0, slurm.stderr
    assert f"--num_processes={total}" in slurm.stdout


# The torch dtype of each sd-scripts --mixed_precision (library/train_util.py:5507-5512, prepare_dtype).
TORCH_DTYPE = {"no": "float32", "fp16": "float16", "bf16": "bfloat16"}


@pytest.mark.parametrize("name,drop_optimizer,sets", VARIANTS[:2], ids=[v[0] for v in VARIANTS[:2]])
@pytest.mark.parametrize("config", SHIPPED)
def test_doctor_probes_what_the_view_says(two_gpus, tmp_path, config, name, drop_optimizer, sets):
    """doctor --json, its probe run in this test environment's interpreter: the optimizer class it imports, the
    package it names and the dtype of its GPU matmul are the view's."""
    if drop_optimizer and "optimizer_args" in (CONFIGS / f"{config}.toml").read_text(encoding="utf-8"):
        pytest.skip("this config's optimizer_args belong to its own optimizer")
    path = _variant(tmp_path, config, drop_optimizer)
    cfg = load_config(path, sets).config
    view = Effective.from_config(cfg, gpus.visible_count(cfg.accelerate.model_dump()))
    env = {**two_gpus, "HOME": str(tmp_path), "WANDB_API_KEY": ""}
    result = run_cli(
        "doctor", str(path), "--python", sys.executable, "--sd-scripts", str(FIXTURE_SD_SCRIPTS), "--json",
        *_sets(sets), env=env, timeout=300,
    )  # fmt: skip
    data = _json(result)
    assert data["effective"] == view.facts()

    imported = [f"{i['module']}.{i['attr']}" for i in data["request"]["imports"] if "attr" in i]
    assert imported == [view.optimizer_class]
    (line,) = [c for c in data["checks"] if c["name"] == "optimizer"]
    assert view.optimizer_class in line["detail"]
    if view.optimizer_package != "torch":
        assert view.optimizer_package in line["detail"]  # "imports (prodigyopt 1.1.2)" or "prodigyopt is not installed"
    if drop_optimizer:
        assert (view.optimizer_type, view.optimizer_class) == ("AdamW8bit", "bitsandbytes.optim.AdamW8bit")

    gpu = data["request"]["gpu"]
    assert gpu["dtype"] == TORCH_DTYPE[view.precision.mixed]
    assert gpu["fp8"] == view.precision.fp8
    assert gpu["bnb_class"] == (
        view.optimizer_class.rpartition(".")[2] if view.optimizer_package == "bitsandbytes" else None
    )


def _optimizer_state(data: dict) -> float:
    return next(i["gib"] for i in data["breakdown"] if i["name"] == "optimizer state")


def test_fit_sizes_8bit_state_for_use_8bit_adam(write_config):
    """`[extra] use_8bit_adam = true` runs AdamW8bit (get_optimizer), so fit sizes 8-bit state: a quarter of
    AdamW's 8 bytes per fp32 parameter, as for optimizer_type = "AdamW8bit"."""
    dim64 = BASE.replace("network_dim = 8", "network_dim = 64")
    plain = _json(run_cli("fit", str(write_config(dim64)), "--vram", "80", "--json"))
    switch = _json(
        run_cli("fit", str(write_config(dim64 + "[extra]\nuse_8bit_adam = true\n")), "--vram", "80", "--json")
    )
    named = _json(
        run_cli(
            "fit", str(write_config(dim64 + '[optimizer]\noptimizer_type = "AdamW8bit"\n')), "--vram", "80", "--json"
        )
    )
    assert switch["facts"]["optimizer"] == "AdamW8bit"
    assert _optimizer_state(switch) == _optimizer_state(named) == pytest.approx(_optimizer_state(plain) / 4, rel=0.01)
    assert switch["peak_gib"] < plain["peak_gib"]


def test_fit_counts_auto_processes_like_a_number(two_gpus, write_config):
    """num_processes = "auto" on a machine with 2 GPUs is 2 processes for fit, as for run and plan."""
    auto = _json(
        run_cli(
            "fit",
            str(write_config(BASE + '[accelerate]\nnum_processes = "auto"\n')),
            "--vram",
            "80",
            "--json",
            env=two_gpus,
        )
    )
    two = _json(
        run_cli(
            "fit", str(write_config(BASE + "[accelerate]\nnum_processes = 2\n")), "--vram", "80", "--json", env=two_gpus
        )
    )
    assert auto["facts"]["processes"] == two["facts"]["processes"] == 2
    assert auto["peak_gib"] == two["peak_gib"]
    assert any(i["name"] == "DDP gradient buckets" for i in auto["breakdown"])


def test_auto_without_a_gpu_count_is_one_process_with_a_note(write_config, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    data = _json(
        run_cli("fit", str(write_config(BASE + '[accelerate]\nnum_processes = "auto"\n')), "--vram", "80", "--json")
    )
    assert data["facts"]["processes"] == 1
    assert any('"auto" but no GPU could be counted' in n for n in data["notes"])


@pytest.mark.parametrize(
    "accelerate,visible,expected",
    [
        ({}, 4, (1, 1)),
        ({"num_processes": 4, "num_machines": 2}, None, (4, 2)),
        ({"num_processes": "auto"}, 3, (3, 3)),
        ({"num_processes": "auto", "gpu_ids": "1,3"}, 8, (2, 2)),
        ({"num_processes": "auto", "num_machines": 2}, 4, (8, 4)),
        ({"num_processes": "auto"}, None, (None, None)),
    ],
)
def test_process_arithmetic(accelerate, visible, expected):
    p = processes(accelerate, visible)
    assert (p.total, p.per_machine) == expected


@pytest.mark.parametrize(
    "value,expected",
    [("1024", (1024, 1024)), ("1024,768", (1024, 768)), (896, (896, 896)), ([640, 512], (640, 512)), (None, None)],
)
def test_resolution_is_read_as_sd_scripts_reads_it(value, expected):
    assert parse_resolution(value) == expected


def test_the_view_is_read_only():
    view = Effective.from_args({"train_batch_size": 2})
    with pytest.raises(Exception):
        view.train_batch_size = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.args["train_batch_size"] = 3  # type: ignore[index]
    assert view.with_args({"train_batch_size": 4}).train_batch_size == 4 and view.train_batch_size == 2


def test_derivations_follow_sd_scripts():
    v = Effective.from_args(
        {
            "use_lion_optimizer": True,
            "cache_text_encoder_outputs_to_disk": True,
            "network_train_unet_only": True,
            "cache_latents_to_disk": True,
            "mixed_precision": "bf16",
            "fp8_base": True,
            "no_half_vae": True,
            "xformers": True,
            "sdpa": True,
            "max_token_length": 225,
        }
    )
    assert (v.optimizer_type, v.optimizer_class) == ("Lion", "lion_pytorch.Lion")
    assert (v.text_encoder_outputs_cache, v.latents_cache, v.text_encoders_trained) == ("disk", "disk", False)
    assert (v.precision.unet, v.precision.text_encoders, v.precision.vae, v.precision.adapter) == (
        "fp8",
        "fp8",
        "fp32",
        "fp32",
    )
    assert (v.attention, v.token_chunks) == ("xformers", 3)
    defaults = Effective.from_args({})
    assert (defaults.optimizer_type, defaults.train_batch_size, defaults.buckets.reso_steps) == ("AdamW", 1, 64)


@pytest.mark.parametrize(
    "args,package,xformers,backend,trackers",
    [
        ({}, "torch", False, "NO", ()),
        # the VAE takes xformers even where mem_eff_attn wins the U-Net (sdxl_train_network.py:63-65)
        ({"mem_eff_attn": True, "xformers": True}, "torch", True, "NO", ()),
        ({"torch_compile": True}, "torch", False, "inductor", ()),
        ({"torch_compile": True, "dynamo_backend": "eager"}, "torch", False, "eager", ()),
        ({"dynamo_backend": "eager"}, "torch", False, "NO", ()),  # without torch_compile: "NO"
        ({"logging_dir": "logs"}, "torch", False, "NO", ("tensorboard",)),
        ({"logging_dir": "logs", "log_with": "all"}, "torch", False, "NO", ("tensorboard", "wandb")),
        ({"log_with": "wandb"}, "torch", False, "NO", ("wandb",)),
        ({"optimizer_type": "Prodigy"}, "prodigyopt", False, "NO", ()),
        ({"optimizer_type": "prodigyplus.ProdigyPlusScheduleFree"}, None, False, "NO", ()),  # not in the table
    ],
)
def test_what_the_training_environment_must_import(args, package, xformers, backend, trackers):
    """The facts doctor's probe is built from: the optimizer's distribution, xformers, torch.compile, loggers."""
    v = Effective.from_args(args)
    assert (v.optimizer_package, v.xformers_loaded, v.dynamo_backend, v.trackers) == (
        package,
        xformers,
        backend,
        trackers,
    )
