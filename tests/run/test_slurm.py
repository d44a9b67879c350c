"""The sbatch script: valid bash, and on each node an accelerate command accelerate itself accepts."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from loratrain.launch import slurm

SCRIPT = "/opt/sd-scripts/sdxl_train_network.py"


def job(**changes) -> slurm.SlurmJob:
    fields = dict(
        python=sys.executable,
        options=[
            "--multi_gpu",
            "--num_processes=8",
            "--num_machines=2",
            "--mixed_precision=bf16",
            "--dynamo_backend=no",
        ],
        script_argv=[
            SCRIPT,
            "--output_name=my char's lora",
            "--network_args",
            "conv_dim=4",
            "algo=locon",
            "--max_train_steps=400",
        ],
        nodes=2,
        cwd="/work/runs",
        job_name="mychar",
        gpus_per_node=4,
        env={"WANDB_API_KEY": "s3cret-value", "HF_HUB_OFFLINE": "1"},
    )
    fields.update(changes)
    return slurm.SlurmJob(**fields)


def accelerate_parse(argv: list[str]):
    from accelerate.commands.launch import launch_command_parser

    assert argv[1:3] == ["-m", "accelerate.commands.launch"]
    return launch_command_parser().parse_args(argv[3:])


def test_sbatch_script_is_valid_bash_and_asks_for_one_task_per_node():
    text = slurm.render(job())
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    assert "#SBATCH --nodes=2" in text and "#SBATCH --ntasks-per-node=1" in text and "#SBATCH --gpus-per-node=4" in text
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1' in text
    assert "s3cret-value" not in text and "export HF_HUB_OFFLINE=1" in text


@pytest.mark.parametrize("rank", [0, 1])
def test_node_commands_for_ranks_0_and_1_are_accepted_by_accelerates_launch_parser(rank):
    args = accelerate_parse(slurm.node_argv(job(), rank, "node-a"))
    assert (args.machine_rank, args.main_process_ip, args.main_process_port) == (rank, "node-a", 29500)
    assert (args.num_machines, args.num_processes, args.multi_gpu) == (2, 8, True)
    assert args.training_script == SCRIPT
    assert args.training_script_args == job().script_argv[1:]


def test_rank_and_address_options_of_the_rendered_command_are_replaced_by_the_scripts():
    options = [
        "--num_processes=8",
        "--machine_rank=0",
        "--main_process_ip",
        "10.0.0.1",
        "--main-process-port=1234",
        "--gpu_ids=all",
    ]
    assert slurm.drop_options(options, slurm.PER_NODE_OPTIONS) == ["--num_processes=8", "--gpu_ids=all"]


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_the_script_run_under_fake_srun_starts_accelerate_on_every_node_with_its_rank(tmp_path):
    """Runs the real script with stand-ins for srun/scontrol and for the training Python."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv.jsonl"
    # srun: run the command once per node, as SLURM would, with that node's SLURM_NODEID.
    _executable(
        bin_dir / "srun",
        '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\n'
        'for i in 0 1; do SLURM_NODEID=$i "$@" || exit $?; done\n',
    )
    _executable(
        bin_dir / "scontrol", '#!/bin/bash\n[ "$1 $2" = "show hostnames" ] && printf "gpu-node-07\\ngpu-node-08\\n"\n'
    )
    fake_python = tmp_path / "python"
    _executable(
        fake_python,
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps([sys.argv[0]] + sys.argv[1:] + [os.environ.get('WANDB_API_KEY')]) + '\\n')\n",
    )
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "job.sbatch"
    script.write_text(slurm.render(job(python=str(fake_python), cwd=str(work))))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_NODELIST": "gpu-node-[07-08]", "WANDB_API_KEY": "from-env"}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 2
    for rank, call in enumerate(calls):
        *argv, key = call
        assert key == "from-env"
        assert argv[1:] == slurm.node_argv(job(python=str(fake_python)), rank, "gpu-node-07")[1:]
        assert accelerate_parse([sys.executable, *argv[1:]]).machine_rank == rank


def test_the_script_refuses_to_start_without_the_secret_in_the_environment(tmp_path):
    script = tmp_path / "job.sbatch"
    script.write_text(slurm.render(job(cwd=str(tmp_path))))
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60
    )
    assert done.returncode != 0 and "export WANDB_API_KEY before sbatch" in done.stderr
