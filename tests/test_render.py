"""render.py, unit by unit: how each kind of value becomes argv tokens, and what stays out of argv."""

from __future__ import annotations

import shlex

import pytest
from helpers import BASE, tomllib

from loratrain.config.loader import validate
from loratrain.render import (
    GPUS_PLACEHOLDER,
    SCRIPT_PLACEHOLDER,
    accelerate_flags,
    build_command,
    display,
    format_value,
    launcher_for,
    script_flags,
    script_path,
)


def cfg(extra: str = ""):
    """BASE with the tables of `extra` merged in, validated."""
    data = tomllib.loads(BASE)
    for table, values in tomllib.loads(extra).items():
        data.setdefault(table, {}).update(values)
    return validate(data, "t.toml").config


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "True"),
        (False, "False"),
        (0, "0"),
        (0.0, "0.0"),
        (1e-4, "0.0001"),
        (0.1 + 0.2, "0.30000000000000004"),
        ("a b", "a b"),
    ],
)
def test_values_are_written_the_way_sd_scripts_reads_them_back(value, text):
    assert format_value(value) == text


def test_true_is_a_bare_flag_and_false_or_unset_is_omitted():
    argv, _ = script_flags(cfg("[training]\ngradient_checkpointing = true\n[precision]\nno_half_vae = false\n"))
    assert "--gradient_checkpointing" in argv
    assert not any(t.startswith("--no_half_vae") for t in argv)
    assert not any(t.startswith("--max_train_steps") for t in argv)  # unset: sd-scripts' default applies


def test_zero_is_kept_and_single_values_use_equals():
    argv, _ = script_flags(cfg("[network]\nnetwork_dropout = 0\n"))
    assert "--network_dropout=0" in argv or "--network_dropout=0.0" in argv
    assert "--network_dim=8" in argv


def test_list_values_are_separate_tokens_after_their_option():
    argv, _ = script_flags(cfg('[optimizer]\noptimizer_args = ["weight_decay=0.1", "betas=0.9,0.99"]\n'))
    at = argv.index("--optimizer_args")
    assert argv[at + 1 : at + 3] == ["weight_decay=0.1", "betas=0.9,0.99"]


def test_network_args_are_key_value_tokens_as_lycoris_reads_them():
    argv, _ = script_flags(
        cfg(
            '[network]\nnetwork_module = "lycoris.kohya"\n'
            '[network.network_args]\nalgo = "lokr"\nuse_tucker = false\ndecompose_both = false\n'
        )
    )
    at = argv.index("--network_args")
    items = argv[at + 1 :]
    assert "algo=lokr" in items and "use_tucker=False" in items
    assert not any(i.startswith("decompose_both") for i in items)  # any text turns it on: false is left out


def test_secrets_go_to_the_environment_never_to_argv():
    argv, env = script_flags(cfg('[logging]\nwandb_api_key = "k-123"\n[extra]\nhuggingface_token = "hf-9"\n'))
    assert env == {"WANDB_API_KEY": "k-123", "HF_TOKEN": "hf-9"}
    assert not any("k-123" in t or "hf-9" in t for t in argv)


def test_accelerate_options_are_all_explicit_with_loratrains_defaults():
    assert accelerate_flags(cfg()) == [
        "--num_processes=1",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
    ]


def test_several_processes_turn_multi_gpu_on_and_auto_waits_for_the_gpu_count():
    flags = accelerate_flags(cfg('[accelerate]\nnum_processes = 2\n[precision]\nmixed_precision = "bf16"\n'))
    assert flags[:2] == ["--multi_gpu", "--num_processes=2"] and "--mixed_precision=bf16" in flags
    auto = cfg('[accelerate]\nnum_processes = "auto"\n')
    assert f"--num_processes={GPUS_PLACEHOLDER}" in accelerate_flags(auto)
    assert "--num_processes=4" in accelerate_flags(auto, visible_gpus=4)


def test_a_multi_machine_run_names_its_rank():
    flags = accelerate_flags(
        cfg(
            '[accelerate]\nnum_processes = 4\nnum_machines = 2\nmain_process_ip = "10.0.0.1"\n'
            "main_process_port = 29500\n"
        ),
        machine_rank=1,
    )
    assert "--machine_rank=1" in flags and "--main_process_ip=10.0.0.1" in flags


def test_the_command_starts_with_the_launcher_and_a_visible_placeholder_without_sd_scripts():
    cmd = build_command(cfg(), None, launcher=launcher_for("/env/bin/python"))
    assert cmd.argv[:3] == ["/env/bin/python", "-m", "accelerate.commands.launch"]
    assert script_path(None) == f"{SCRIPT_PLACEHOLDER}/sdxl_train_network.py" in cmd.argv
    assert script_path("/sd/") == "/sd/sdxl_train_network.py"


def test_display_is_one_option_per_line_and_splits_back_into_the_argv():
    cmd = build_command(cfg('[saving]\noutput_name = "it\'s a name"\n'), "/sd scripts")
    text = display(cmd)
    assert shlex.split(text.replace("\\\n", " ")) == cmd.argv
    lines = [line.strip().rstrip(" \\") for line in text.splitlines()]
    assert lines[0] == "accelerate launch"
    assert [line for line in lines[1:] if not line.lstrip("'").startswith("--")] == [
        "'/sd scripts/sdxl_train_network.py'"
    ]
