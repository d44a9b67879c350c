"""accelerate's own `launch` parser accepts the accelerate options loratrain renders."""

from __future__ import annotations

import pytest
from helpers import BASE, CONFIGS, tomllib

from loratrain.config.loader import load_config, validate
from loratrain.render import build_command

launch = pytest.importorskip("accelerate.commands.launch")


def _launch_args(cmd):
    script_at = next(i for i, t in enumerate(cmd.argv) if t.endswith("sdxl_train_network.py"))
    return launch.launch_command_parser().parse_args(cmd.argv[2 : script_at + 1] + cmd.argv[script_at + 1 :])


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_accelerate_parses_the_shipped_configs(config):
    cfg = load_config(config).config
    args = _launch_args(build_command(cfg, "/sd"))
    assert args.training_script == "/sd/sdxl_train_network.py"
    assert args.num_processes == (cfg.accelerate.num_processes or 1)
    assert args.mixed_precision == (cfg.precision.mixed_precision or "no")
    assert args.training_script_args[0].startswith("--pretrained_model_name_or_path")


def test_two_gpu_config_asks_for_multi_gpu_with_its_gpu_ids():
    args = _launch_args(build_command(load_config(CONFIGS / "sdxl-locon-2gpu.toml").config, "/sd"))
    assert args.multi_gpu and args.num_processes == 2 and args.gpu_ids == "0,1"


@pytest.mark.parametrize("rank", [0, 1])
def test_multi_node_commands_parse_for_each_rank(rank):
    data = tomllib.loads(
        BASE + "[accelerate]\nnum_processes = 4\nnum_machines = 2\n"
        'main_process_ip = "10.0.0.1"\nmain_process_port = 29500\n'
    )
    cmd = build_command(validate(data, "t.toml").config, "/sd", machine_rank=rank)
    args = _launch_args(cmd)
    assert (args.machine_rank, args.num_machines, args.num_processes) == (rank, 2, 4)
    assert args.main_process_ip == "10.0.0.1" and args.main_process_port == 29500
