"""Round trips between configs and commands.

- For a config C, importing the command `loratrain run --dry-run C` prints gives C back.
- For a command line X, the command loratrain renders for `import X` parses, under sd-scripts' argument rules,
  to the same values as X. The guide's full command is one case; generated flag sets are the others.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from helpers import GUIDE_COMMAND, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loratrain.config.loader import load_config, validate
from loratrain.importers import import_text
from loratrain.importers.accelerate_argv import parse_accelerate
from loratrain.importers.finish import finish
from loratrain.importers.output import typed_network_value, without_rendered_defaults
from loratrain.importers.sd_argv import parse_script_argv
from loratrain.importers.shell_command import parse_command
from loratrain.render import build_command

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "src" / "loratrain" / "presets").glob("*.toml"))


def imported_config(text: str):
    """import -> the validated TrainConfig of the result."""
    done = finish(import_text(text, "<test>", "command"))
    return validate(done.doc, "<imported>").config


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_importing_the_dry_run_command_of_a_shipped_config_gives_the_config_back(path):
    dry = run_cli("run", "--dry-run", str(path))
    assert dry.returncode == 0, dry.stderr
    original = load_config(path).config
    assert imported_config(dry.stdout) == original


def test_importing_the_dry_run_of_a_config_with_python_and_sd_scripts_gives_it_back(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        (REPO / "src" / "loratrain" / "presets" / "sdxl-lokr.toml")
        .read_text()
        .replace("[model]", 'sd_scripts = "/opt/sd-scripts"\npython = "/opt/venv/bin/python"\n\n[model]', 1)
    )
    dry = run_cli("run", "--dry-run", str(config))
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("/opt/venv/bin/python -m accelerate.commands.launch")
    assert imported_config(dry.stdout) == load_config(config).config


def _normalised(args: dict) -> dict:
    """Values as sd-scripts' parser gives them, with network_args compared by meaning ("1e-4" == "0.0001")."""
    out = dict(args)
    if "network_args" in out:
        out["network_args"] = {k: typed_network_value(v) for k, _, v in (i.partition("=") for i in out["network_args"])}
    return out


def assert_rendered_command_parses_the_same(text: str) -> None:
    original = parse_command(text)
    cfg = imported_config(text)
    rendered = build_command(cfg, sd_scripts_dir="/sd")
    script_at = next(i for i, tok in enumerate(rendered.argv) if tok.endswith(".py"))
    again = parse_script_argv(rendered.argv[script_at + 1 :]).values
    first = parse_script_argv(original.script_argv).values
    assert _normalised(again) == _normalised(first)
    # accelerate: the same launch options, up to the values loratrain passes by default
    before, _ = parse_accelerate(original.accelerate_argv, "<x>")
    after, _ = parse_accelerate(rendered.argv[2:script_at], "<y>")
    precision = first.get("mixed_precision")
    assert without_rendered_defaults(after, precision) == without_rendered_defaults(before, precision)


def test_the_guides_full_command_renders_back_to_the_same_values():
    assert_rendered_command_parses_the_same(GUIDE_COMMAND.read_text())


# --- generated command lines -------------------------------------------------------------------------------

_REQUIRED = [
    "--pretrained_model_name_or_path=/models/sdxl.safetensors",
    "--train_data_dir=/data/train",
    "--output_dir=/data/out",
    "--resolution=1024,1024",
]

_NUM = st.sampled_from(["1e-4", "0.0001", "5e-5", "3e-4", "1"])
_CHOICES = {
    "--network_dim": st.integers(1, 128).map(str),
    "--network_alpha": st.sampled_from(["1", "4", "8.0", "0.5"]),
    "--learning_rate": _NUM,
    "--unet_lr": _NUM,
    "--max_train_steps": st.integers(1, 5000).map(str),
    "--train_batch_size": st.integers(1, 8).map(str),
    "--gradient_accumulation_steps": st.integers(1, 8).map(str),
    "--seed": st.integers(0, 2**31).map(str),
    "--keep_tokens": st.integers(0, 3).map(str),
    "--caption_extension": st.sampled_from([".txt", ".caption"]),
    "--output_name": st.sampled_from(["my lora", "x", "name-with-dash"]),
    "--save_every_n_epochs": st.integers(1, 50).map(str),
    "--save_precision": st.sampled_from(["fp16", "bf16", "float"]),
    "--optimizer_type": st.sampled_from(["AdamW", "AdamW8bit", "Lion"]),
    "--lr_scheduler": st.sampled_from(["cosine", "linear", "constant"]),
    "--min_snr_gamma": st.sampled_from(["5", "1.5"]),
    "--max_grad_norm": st.sampled_from(["0", "1", "0.5"]),
    "--noise_offset": st.sampled_from(["0.05", "0.0357"]),
    "--sample_sampler": st.sampled_from(["euler_a", "ddim", "k_dpm_2"]),
}
_SWITCHES = ["--sdpa", "--gradient_checkpointing", "--cache_latents", "--no_half_vae", "--enable_bucket"]
_LYCORIS_ARGS = {
    "algo": st.sampled_from(["locon", "loha", "lokr"]),
    "preset": st.sampled_from(["full", "attn-mlp"]),
    "conv_dim": st.integers(1, 64).map(str),
    "conv_alpha": st.sampled_from(["1", "4", "0.5"]),
    "use_tucker": st.sampled_from(["True", "False"]),
    "train_norm": st.sampled_from(["True", "False"]),
}


@st.composite
def command_lines(draw) -> str:
    argv = list(_REQUIRED)
    for option in draw(st.lists(st.sampled_from(sorted(_CHOICES)), unique=True, max_size=10)):
        value = draw(_CHOICES[option])
        argv += [f"{option}={value}"] if draw(st.booleans()) else [option, value]
    argv += draw(st.lists(st.sampled_from(_SWITCHES), unique=True))
    if draw(st.booleans()):
        argv += ["--text_encoder_lr", *draw(st.lists(_NUM, min_size=1, max_size=2))]
    argv += ["--network_module=lycoris.kohya"]
    keys = draw(st.lists(st.sampled_from(sorted(_LYCORIS_ARGS)), unique=True, max_size=5))
    if keys:
        argv += ["--network_args", *(f"{k}={draw(_LYCORIS_ARGS[k])}" for k in keys)]
    launcher = draw(
        st.sampled_from(
            [
                "accelerate launch --num_cpu_threads_per_process=2 ./sdxl_train_network.py",
                "accelerate launch --num_processes 2 --multi_gpu --gpu_ids=0,1 /sd/sdxl_train_network.py",
                "python sdxl_train_network.py",
            ]
        )
    )
    joiner = draw(st.sampled_from([" ", " \\\n    "]))
    return launcher + joiner + joiner.join(shlex.quote(a) for a in argv)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_lines())
def test_generated_command_lines_render_back_to_the_same_values(text):
    assert_rendered_command_parses_the_same(text)
