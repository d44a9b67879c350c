"""`loratrain run` for real: accelerate launch (CPU) starts the fixture training script.

Each launch costs a couple of seconds (accelerate starts a second Python), so the tests share one
project folder layout and launch only where the behaviour needs a live process.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import STEP_LINE, env_for, loratrain, make_project, records, write_fake_nvidia_smi


def test_run_on_a_terminal_trains_shows_a_progress_bar_and_records_everything(tmp_path, launcher):
    root = tmp_path / "p"
    config = make_project(root, python=launcher.python)
    # A pseudo-terminal, so loratrain sees a TTY and draws its own progress bar.
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loratrain", "run", config.name],
        cwd=root,
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env_for(root, COLUMNS="160"),
    )
    os.close(slave)
    screen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    os.close(master)
    terminal = screen.decode(errors="replace")
    assert "training" in terminal and "5/5" in terminal and "loss" in terminal
    assert (root / "out" / "mychar.safetensors").is_file()

    (rec,) = records(root)
    folder = next((root / "out" / "loratrain-runs").iterdir())
    assert rec["status"] == "succeeded" and rec["exit_code"] == 0 and rec["duration_s"] > 0
    assert {"path": "mychar.safetensors", "bytes": (root / "out" / "mychar.safetensors").stat().st_size} in rec["files"]
    assert rec["argv"][:3] == [launcher.python, "-m", "accelerate.commands.launch"]
    assert "--output_name=mychar" in rec["argv"] and rec["config_file"] == config.name
    assert rec["versions"]["accelerate"] == launcher.accelerate and rec["versions"]["torch"]
    assert rec["gpus"][0]["name"] == "NVIDIA A100-SXM4-40GB" and rec["sd_scripts"]["commit"] is None
    assert rec["config"]["network"]["network_dim"] == 4
    log = (folder / "train.log").read_text()
    assert "fixture: training networks.lora" in log and STEP_LINE in log and "fixture: saved mychar.safetensors" in log
    script = folder / "command.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0 and os.access(script, os.X_OK)
    assert f"log: out/loratrain-runs/{folder.name}/train.log" in stderr or str(folder / "train.log") in stderr


@pytest.mark.usefixtures("without_environment_probe")  # about outputs, queues, files: not the interpreter
def test_existing_output_is_not_overwritten_without_force_and_is_with_it(tmp_path):
    root = tmp_path / "p"
    config = make_project(root)
    (root / "out").mkdir()
    (root / "out" / "mychar.safetensors").write_bytes(b"last week's LoRA")
    refused = loratrain(root, "run", config.name)
    assert (
        refused.returncode == 2
        and "mychar.safetensors already exists" in refused.stderr
        and "--force" in refused.stderr
    )
    assert (root / "out" / "mychar.safetensors").read_bytes() == b"last week's LoRA"
    assert not (root / "out" / "loratrain-runs").exists()  # nothing was launched or recorded
    forced = loratrain(root, "run", config.name, "--force", "--plain")
    assert forced.returncode == 0, forced.stderr
    assert (root / "out" / "mychar.safetensors").read_bytes() != b"last week's LoRA"
    assert STEP_LINE in forced.stdout  # --plain (and no TTY): sd-scripts' output as is


def test_an_output_dir_that_is_a_file_is_exit_2_naming_it_even_without_preflight(tmp_path):
    root = tmp_path / "p"
    config = make_project(root)
    (root / "notes.txt").write_text("mine\n")
    result = loratrain(root, "run", config.name, "--no-preflight", "--set", "saving.output_dir=notes.txt")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "notes.txt" in result.stderr and "saving.output_dir" in result.stderr
    assert "launching" not in result.stderr and (root / "notes.txt").read_text() == "mine\n"


@pytest.mark.usefixtures("without_environment_probe")  # about outputs, queues, files: not the interpreter
def test_a_failing_training_run_fails_loratrain_and_is_recorded_as_failed(tmp_path, launcher):
    root = tmp_path / "p"
    config = make_project(root, python=launcher.python)
    result = loratrain(root, "run", config.name, FIXTURE_EXIT="3")
    # accelerate's simple launcher (1.6.0 and 1.16.0 alike) turns any non-zero status of the script into its own 1.
    assert result.returncode == 1
    assert "training failed with exit code 1" in result.stderr
    (rec,) = records(root)
    assert rec["status"] == "failed" and rec["exit_code"] == 1


def _start_and_wait_for_training(
    root: Path, config: Path, *extra: str, **env: str
) -> tuple[subprocess.Popen, int, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "loratrain", "run", config.name, "--plain", *extra],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(root, FIXTURE_STEP_S="0.2", **env),
    )
    pid_file = root / "out" / "fixture.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() or len(pid_file.read_text().split()) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "the fixture never started"
        time.sleep(0.05)
    time.sleep(0.5)  # into the training loop
    pid, pgid = (int(x) for x in pid_file.read_text().split())
    return proc, pid, pgid


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _signals_seen(root: Path) -> list[str]:
    path = root / "out" / "fixture.signal"
    return path.read_text().split() if path.exists() else []


# What the user is promised whichever launcher runs: accelerate 1.6.0 lets the script handle the signal and dies
# itself, 1.16.0 also sends the script SIGTERM and, 5 s later, SIGKILL of its own (docs/run.md). So these tests
# assert the exit code, the record, the first signal the script saw, an empty process group and the time it took;
# never which process sent the last signal.
# SIGHUP (an SSH session dropping) is handled like SIGTERM: the script is told SIGTERM, the record is closed.
@pytest.mark.parametrize(
    "sig, code, seen",
    [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 143, "SIGTERM")],
)
def test_signal_to_loratrain_reaches_the_training_script_and_nothing_is_left(tmp_path, launcher, sig, code, seen):
    root = tmp_path / "p"
    config = make_project(root, steps=200, python=launcher.python)  # 40 s of training if nothing stopped it
    proc, pid, pgid = _start_and_wait_for_training(root, config)
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == code, err.decode()
    assert f"sent {seen} to the training processes" in err.decode()  # what loratrain got goes on to the group
    # The script stopped on a signal it can handle (never killed). Which one its handler ran for first is the
    # launcher's doing: accelerate 1.16.0 follows a Ctrl-C with its own SIGTERM at once, and that may win.
    told = _signals_seen(root)
    assert told and set(told) <= {"SIGINT", "SIGTERM"} and (sig == signal.SIGINT or told[0] == seen), told
    assert "fixture: stopping on SIG" in out.decode()
    assert _group_gone(pgid)
    # The script stopped on its own: loratrain never had to escalate, and it took well under the 30 s grace.
    assert "sent SIGKILL" not in err.decode() and took < 20, (took, err.decode())
    (rec,) = records(root)
    assert rec["status"] == "interrupted" and rec["interrupted_by"] == seen and rec["exit_code"] == code


def test_a_script_that_ignores_ctrl_c_is_stopped_within_the_grace_steps_and_nothing_is_left(tmp_path, launcher):
    root = tmp_path / "p"
    config = make_project(root, steps=400, python=launcher.python)  # 80 s of training if nothing stopped it
    grace = 1.0
    proc, pid, pgid = _start_and_wait_for_training(root, config, "--grace", str(grace), FIXTURE_STUBBORN="1")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    text = err.decode()
    assert proc.returncode == 130, text
    assert _group_gone(pgid)
    # SIGINT, then SIGTERM after one grace, then SIGKILL after the second: whoever kills the script first (accelerate
    # 1.16.0 does after its own 5 s), it is gone by then. 10 s of slack for a loaded machine, far below the 80 s.
    assert took < 2 * grace + 10, (took, text)
    assert "sent SIGINT to the training processes" in text
    said = [name for name in ("SIGINT", "SIGTERM", "SIGKILL") if f"sent {name}" in text]
    assert said == ["SIGINT", "SIGTERM", "SIGKILL"][: len(said)]  # escalation in order, none skipped
    (rec,) = records(root)
    assert rec["status"] == "interrupted" and rec["interrupted_by"] == "SIGINT" and rec["exit_code"] == 130


@pytest.mark.usefixtures("without_environment_probe")  # about outputs, queues, files: not the interpreter
def test_a_queue_checks_every_config_first_and_launches_nothing_when_one_is_broken(tmp_path):
    root = tmp_path / "p"
    good = make_project(root, "first")
    broken = make_project(root, "second")
    broken.write_text(broken.read_text().replace('"sdxl.safetensors"', '"missing.safetensors"'))
    result = loratrain(root, "run", good.name, broken.name)
    assert result.returncode == 2
    assert "missing.safetensors does not exist" in result.stderr and "nothing was launched" in result.stderr
    assert not (root / "out" / "loratrain-runs").exists()
    assert "summary" in result.stderr and "invalid" in result.stderr


@pytest.mark.usefixtures("without_environment_probe")  # about outputs, queues, files: not the interpreter
def test_a_queue_stops_at_the_first_failed_run_and_keep_going_runs_the_rest(tmp_path):
    root = tmp_path / "p"
    bad = make_project(root, "bad")
    good = make_project(root, "good")
    stopped = loratrain(root, "run", bad.name, good.name, "--plain", FIXTURE_FAIL_NAME="bad")
    assert stopped.returncode == 1
    assert not (root / "out" / "good.safetensors").exists()
    summary = stopped.stderr[stopped.stderr.index("summary") :]
    assert "failed" in summary and "not started" in summary
    # The failed run still wrote bad.safetensors (as sd-scripts may): --force lets it run again.
    kept = loratrain(root, "run", bad.name, good.name, "--plain", "--keep-going", "--force", FIXTURE_FAIL_NAME="bad")
    assert kept.returncode == 1
    assert (root / "out" / "good.safetensors").is_file()
    summary = kept.stderr[kept.stderr.index("summary") :]
    assert "failed" in summary and "succeeded" in summary


def test_check_runs_preflight_and_verify_parser_reports_flags_the_installed_script_rejects(tmp_path):
    root = tmp_path / "p"
    config = make_project(root, extra="[noise]\nnoise_offset = 0.05\n")
    checked = loratrain(root, "check", config.name)
    assert checked.returncode == 0 and "OK, ready to run" in checked.stdout
    assert "fit: predicted peak" in checked.stdout  # the memory verdict line (this fake nvidia-smi reports no memory)
    assert "commit" in checked.stderr  # the fixture is not a git checkout: the flag table may not match it
    verified = loratrain(root, "check", config.name, "--verify-parser")
    assert verified.returncode == 2
    assert "--noise_offset is not accepted by the installed sdxl_train_network.py" in verified.stderr


@pytest.mark.usefixtures("without_environment_probe")  # about outputs, queues, files: not the interpreter
def test_check_reports_every_preflight_error_at_once_with_exit_2(tmp_path):
    root = tmp_path / "p"
    config = make_project(root, extra='[sampling]\nsample_prompts = "prompts.txt"\n')
    config.write_text(config.read_text().replace('train_data_dir = "train"', 'train_data_dir = "nowhere"'))
    result = loratrain(root, "check", config.name)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = config.read_text().splitlines().index('train_data_dir = "nowhere"') + 1
    assert (
        f"{config.name}:{line}: dataset.train_data_dir:" in result.stderr and "nowhere does not exist" in result.stderr
    )
    assert "prompts.txt: sample_prompts: sample prompt file not found" in result.stderr


def test_training_python_without_accelerate_is_a_preflight_error(tmp_path):
    root = tmp_path / "p"
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    config = make_project(root)
    config.write_text(
        config.read_text().replace(f'python = "{sys.executable}"', f'python = "{bare / "bin" / "python"}"')
    )
    result = loratrain(root, "check", config.name)
    python = bare / "bin" / "python"
    assert result.returncode == 2
    assert (
        f"training needs torch, but torch is not installed in {python} ({python} -m pip install torch)" in result.stderr
    )
    assert f"the launch runs accelerate, but accelerate is not installed in {python}" in result.stderr


def test_slurm_prints_a_script_whose_node_commands_accelerate_accepts(tmp_path):
    from accelerate.commands.launch import launch_command_parser

    root = tmp_path / "p"
    config = make_project(
        root, extra='[accelerate]\nnum_processes = 8\nnum_machines = 2\nmain_process_ip = "placeholder"\n'
    )
    result = loratrain(root, "slurm", config.name, "--partition", "gpu", "--time", "04:00:00")
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert (
        "#SBATCH --nodes=2" in script and "#SBATCH --gpus-per-node=4" in script and "#SBATCH --partition=gpu" in script
    )
    assert "placeholder" not in script  # the address comes from the job, not the config
    # Run it with stand-ins for srun (one call per node), scontrol and the training Python.
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(
        '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nfor i in 0 1; do SLURM_NODEID=$i "$@" || exit $?; done\n'
    )
    (bin_dir / "scontrol").write_text('#!/bin/bash\nprintf "node-a\\nnode-b\\n"\n')
    log = tmp_path / "calls.jsonl"
    fake = bin_dir / "python"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    runnable = script.replace(f"export LORATRAIN_PYTHON={sys.executable}", f"export LORATRAIN_PYTHON={fake}")
    done = subprocess.run(
        ["bash", "-c", runnable],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_NODELIST": "node-[a-b]"},
    )
    assert done.returncode == 0, done.stderr
    for rank, line in enumerate(log.read_text().splitlines()):
        argv = json.loads(line)
        assert argv[:2] == ["-m", "accelerate.commands.launch"]
        args = launch_command_parser().parse_args(argv[2:])
        assert (args.machine_rank, args.main_process_ip, args.num_machines, args.num_processes) == (
            rank,
            "node-a",
            2,
            8,
        )
        assert (
            args.training_script.endswith("sdxl_train_network.py")
            and "--output_name=mychar" in args.training_script_args
        )


def test_check_with_preflight_and_slurm_import_no_heavy_package_in_loratrains_process(tmp_path):
    """torch, accelerate, lycoris and transformers are only ever imported by the training interpreter."""
    root = tmp_path / "p"
    config = make_project(
        root,
        extra="[accelerate]\nnum_processes = 2\nnum_machines = 2\n"
        'main_process_ip = "10.0.0.1"\nmain_process_port = 29500\n',
    )
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['loratrain'] + sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_module('loratrain', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'accelerate', 'lycoris', 'transformers'))\n"
        "print('HEAVY:' + ','.join(heavy), file=sys.stderr)\n"
    )
    for args in (["check", config.name], ["slurm", config.name], ["setup", "--help"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=root,
            capture_output=True,
            text=True,
            env=env_for(root),
            timeout=120,
        )
        assert [ln for ln in done.stderr.splitlines() if ln.startswith("HEAVY:")] == ["HEAVY:"], (
            args,
            done.stderr[-2000:],
        )


def test_dry_run_counts_auto_processes_like_the_launch_without_touching_the_gpus(tmp_path):
    root = tmp_path / "p"
    config = make_project(root, extra='[accelerate]\nnum_processes = "auto"\n')
    write_fake_nvidia_smi(root / "bin", [("A100", "8.0"), ("A100", "8.0"), ("A100", "8.0"), ("A100", "8.0")])
    shown = loratrain(root, "run", config.name, "--dry-run", "--json", CUDA_VISIBLE_DEVICES="1,3,2")
    assert shown.returncode == 0, shown.stderr
    argv = json.loads(shown.stdout)["argv"]
    assert "--num_processes=3" in argv and "--multi_gpu" in argv
