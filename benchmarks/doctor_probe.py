"""What the doctor probe adds to `loratrain check` (goal: at most 5 s).

Builds the launch tests' project (fixture sd-scripts plus sd-scripts' real requirements.txt, real images,
a real safetensors header) and times `loratrain check`, interleaved so machine noise hits all alike:
  none     check with the training-environment check taken out (no probe of the interpreter at all)
  before   check with the probe it had before doctor: package metadata only, nothing imported
  doctor   check as shipped: the doctor probe (imports torch, accelerate and the optimizer's package)
in a venv like the tests' complete one, for two configs: the plain one (networks.lora, AdamW) and a heavier one (lycoris.kohya, AdamW8bit,
logging_dir), whose probe also imports bitsandbytes and tensorboard. The variants run as
`python -c DRIVER` with preflight's check list edited in that process; the rest is the real CLI.
Usage: python benchmarks/doctor_probe.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import (  # noqa: E402
    FIXTURE_SD_SCRIPTS,
    FIXTURES,
    env_for,
    make_env,  # noqa: E402  (the tests' complete venv, on purpose)
    make_project,
)

DRIVER = r"""
import sys
from loratrain.launch import preflight
variant = sys.argv.pop(1)

def before(inp):
    from loratrain.sdscripts import install
    modules = [inp.args["network_module"]] if inp.args.get("network_module") else []
    install.probe(inp.python, inp.sd_scripts, modules, inp.env)
    return []

index = preflight.CHECKS.index(preflight.check_training_env)
if variant == "none":
    del preflight.CHECKS[index]
elif variant == "before":
    preflight.CHECKS[index] = before
from loratrain.cli import main
sys.argv[0] = "loratrain"
main(sys.argv[1:])
"""


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it started)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[-5:])} failed:\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        plain = make_project(root, name="plain")
        heavy = make_project(
            root, name="heavy", extra='[optimizer]\noptimizer_type = "AdamW8bit"\n[logging]\nlogging_dir = "logs"\n'
        )
        heavy.write_text(
            heavy.read_text().replace('network_module = "networks.lora"', 'network_module = "lycoris.kohya"')
        )
        # The tests' complete environment: this one's packages plus metadata for the pins it lacks.
        python, _ = make_env(Path(tmp) / "venv")
        for config in (plain, heavy):
            config.write_text(config.read_text().replace(f'python = "{sys.executable}"', f'python = "{python}"'))
        sd = Path(tmp) / "sd-scripts"
        shutil.copytree(FIXTURE_SD_SCRIPTS, sd)
        shutil.copy(FIXTURES / "sd_scripts_requirements" / "requirements.txt", sd / "requirements.txt")
        env = env_for(root)
        commands = {}
        for config in (plain, heavy):
            for variant in ("none", "before", "doctor"):
                commands[(config.stem, variant)] = [
                    sys.executable,
                    "-c",
                    DRIVER,
                    variant,
                    "check",
                    config.name,
                    "--force",
                    "--sd-scripts",
                    str(sd),
                ]
        for argv in commands.values():
            timed(argv, root, env)  # warm caches
        times: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in commands}
        for _ in range(runs):
            for key, argv in commands.items():
                times[key].append(timed(argv, root, env))
    wall = {key: statistics.median(w for w, _ in values) for key, values in times.items()}
    cpu = {key: statistics.median(c for _, c in values) for key, values in times.items()}
    print(
        f"loratrain check, median of {runs} interleaved runs each (load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs; CPU seconds are what an idle machine would wait)"
    )
    for name in ("plain", "heavy"):
        for label, med in (("wall", wall), ("CPU ", cpu)):
            none, before, doctor = (med[(name, v)] for v in ("none", "before", "doctor"))
            print(
                f"{name:6s} {label} no env probe {none:6.2f} s | metadata probe (before) {before:6.2f} s | "
                f"doctor probe {doctor:6.2f} s | doctor adds {doctor - none:5.2f} s (vs before {doctor - before:5.2f} s; goal <= 5 s)"
            )


if __name__ == "__main__":
    main()
