"""A plain install (`pip install loratrain`, no extras) works as far as it can.

The wheel is built from this checkout and installed into a fresh virtual environment without extras (its
dependencies from the registry at the versions of constraints/test.txt). Every verb's simplest form then either
works, or says in one line which extra to install and exits 2; none prints a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, tomllib

from loratrain.cli import COMMAND_MODULES
from loratrain.errors import EXIT_ENVIRONMENT, EXTRA_MODULES, MissingExtra, require_extra

CONSTRAINTS = ROOT / "constraints" / "test.txt"


def test_each_extras_modules_come_from_that_extra_in_pyproject():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, modules in EXTRA_MODULES.items():
        listed = {req.split(">")[0].split("=")[0].split("<")[0].split(";")[0].strip().lower() for req in extras[extra]}
        assert {dist.lower() for dist in modules.values()} <= listed, extra


def test_a_missing_extra_is_one_line_naming_it_with_the_environment_exit_code(monkeypatch):
    monkeypatch.setitem(EXTRA_MODULES, "shrink", {"torch": "torch", "no_such_module_x": "safetensors"})
    with pytest.raises(MissingExtra) as caught:
        require_extra("shrink", "shrink")
    assert caught.value.exit_code == EXIT_ENVIRONMENT == 2
    assert str(caught.value) == (
        "loratrain shrink needs safetensors, which is not installed; install it with: pip install 'loratrain[shrink]'"
    )


def _run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [str(python), "-m", "loratrain", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """The interpreter of a fresh venv holding the built wheel and nothing of any extra."""
    work = tmp_path_factory.mktemp("plain")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*pip, "wheel", str(source), "--no-deps", "-w", str(wheels)], capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("loratrain-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "-q", "install", "-c", str(CONSTRAINTS), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if installed.returncode != 0:
        why = f"could not install the wheel's dependencies from the registry: {installed.stderr[-1500:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return python


@pytest.mark.slow
def test_the_wheel_without_extras_runs_every_verb_or_names_the_extra_to_install(plain, tmp_path):
    absent = subprocess.run(
        [str(plain), "-c", "import importlib.util as u; print([m for m in ('torch', 'accelerate', 'safetensors', "
         "'numpy', 'matplotlib', 'tensorboard', 'PIL') if u.find_spec(m)])"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert absent.stdout.strip() == "[]", absent.stdout  # really nothing of any extra
    work = tmp_path / "w"
    work.mkdir()
    (work / "prompts.txt").write_text("a photo of a cat --w 1024 --h 1024\n")
    (work / "cmd.sh").write_text(
        "accelerate launch sdxl_train_network.py --pretrained_model_name_or_path=/m.safetensors "
        "--train_data_dir=/data --output_dir=/out --network_module=networks.lora --network_dim=8\n"
    )
    (work / "lora.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    forms = {
        ("--help",): 0,
        ("--version",): 0,
        ("init", "--list"): 0,
        ("init", "sdxl-lora-minimal", "-o", "c.toml"): 0,
        ("explain", "network_dim"): 0,
        ("schema",): 0,
        ("check", "c.toml", "--no-preflight"): 0,
        ("run", "c.toml", "--dry-run"): 0,
        ("fit", "c.toml", "--vram", "24"): 0,
        ("slurm", "c.toml", "--sd-scripts", "sd"): 0,
        ("prompts", "prompts.txt"): 0,
        ("import", "cmd.sh", "-o", "imported.toml"): 0,
        ("runs", "."): 0,
        ("plan", "c.toml"): 2,  # the preset's dataset folder does not exist here: an input problem
        ("check", "c.toml"): 2,  # the preset names no sd-scripts folder: an input problem
        ("doctor",): 2,  # torch and accelerate missing in the training interpreter, each with its pip line
        ("run", "c.toml"): 2,  # as check: nothing is launched
        ("setup", str(work / "new-sd"), "--repo", str(work / "no-repo"), "--no-install"): 1,  # git fails: runtime
        ("shrink", "lora.safetensors"): 2,
        ("report", "."): 2,
        ("report", ".", "--json"): 2,
        ("audit", "c.toml"): 2,
        ("diagnose", "fail.log"): 0,
        ("sweep", "c.toml", "--vary", "network.network_dim=4,8", "-o", "sweep"): 0,
        ("logs", "."): 2,  # no run recorded here: an input problem
        ("attach", "."): 2,
        ("stop", "."): 2,
        ("compare", "."): 2,
    }
    (work / "fail.log").write_text("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n")
    (work / "sd").mkdir()
    (work / "sd" / "sdxl_train_network.py").touch()
    verbs = [name.rstrip("_") for name in COMMAND_MODULES]
    assert {verb for verb, *_ in forms} >= set(verbs), "a verb without its simplest form here"
    for verb in verbs:
        forms[(verb, "--help")] = 0
    for args, code in forms.items():
        done = _run(plain, work, *args)
        shown = done.stdout + done.stderr
        assert "Traceback" not in shown and "ModuleNotFoundError" not in shown, (args, shown[-3000:])
        assert done.returncode == code, (args, done.returncode, shown[-3000:])
    for verb, arg, missing in (
        ("shrink", "lora.safetensors", "torch"),
        ("report", ".", "numpy"),
        ("audit", "c.toml", "pillow"),
    ):
        extra = verb
        done = _run(plain, work, verb, arg)
        (line,) = [line for line in done.stderr.splitlines() if line.strip()]
        assert f"loratrain {verb} needs {missing}" in line and f"pip install 'loratrain[{extra}]'" in line, line
