"""`loratrain fit --probe`: run the config for a few real steps and measure the GPU's memory.used peak.

UNTESTED ON A GPU: written while no GPU was available. The plumbing (config rewrite, launch, nvidia-smi
polling, result) is tested with sd-scripts' stand-in script and an nvidia-smi stand-in; the numbers a real
run gives have not been seen yet.

The probe config is the user's config with: max_train_steps = --probe-steps (max_train_epochs dropped),
output_dir = a temporary folder (deleted afterwards; sd-scripts' final save lands there), no intermediate
saves or states, no logging, and no samples unless asked (then one sample at the last step, like the
calibration runs). nvidia-smi is polled for memory.used of the visible GPUs while it runs; the peak over the
GPUs is reported with what was in use before the launch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

DROP = {
    "training": ("max_train_epochs",),
    "saving": ("save_every_n_epochs", "save_last_n_epochs", "save_every_n_steps", "save_last_n_steps", "save_state"),
    "logging": ("logging_dir", "log_with", "log_prefix", "log_tracker_name", "wandb_run_name", "wandb_api_key"),
    "sampling": ("sample_every_n_epochs", "sample_at_first"),
}


def probe_data(data: dict[str, Any], steps: int, output_dir: str, samples: bool) -> dict[str, Any]:
    """The probe's version of a config's TOML data (a new dict; the input is not changed)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for table, keys in DROP.items():
        for key in keys:
            out.get(table, {}).pop(key, None)
    out.setdefault("training", {})["max_train_steps"] = steps
    out.setdefault("saving", {})["output_dir"] = output_dir
    sampling = out.get("sampling", {})
    if samples and sampling.get("sample_prompts"):
        sampling["sample_every_n_steps"] = steps
    else:
        out.pop("sampling", None)
    return out


def probe_config(path: str, overrides: list[str], steps: int, output_dir: str, samples: bool):
    """Load the config with --set overrides applied, then rewrite it for the probe and validate again."""
    from loratrain.config.loader import apply_overrides, read_toml, validate

    data, _ = read_toml(Path(path))
    data, _ = apply_overrides(data, overrides)
    return validate(probe_data(data, steps, output_dir, samples), str(path), None, Path(path))


class MemoryPoller:
    """Polls `nvidia-smi --query-gpu=uuid,memory.used` (MiB) in a thread; keeps the peak per GPU."""

    def __init__(self, uuids: list[str], env: Mapping[str, str], interval_s: float = 0.5):
        self.uuids = uuids
        self.env = dict(env)
        self.interval_s = interval_s
        self.peak: dict[str, float] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def read(self) -> dict[str, float]:
        exe = shutil.which("nvidia-smi", path=self.env.get("PATH"))
        if exe is None:
            return {}
        try:
            done = subprocess.run(
                [exe, "--query-gpu=uuid,memory.used", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return {}
        out = {}
        for line in done.stdout.splitlines():
            uuid, _, used = line.partition(",")
            try:
                out[uuid.strip()] = float(used.strip())
            except ValueError:
                continue
        return {u: v for u, v in out.items() if u in self.uuids}

    def _loop(self) -> None:
        while not self._stop.is_set():
            for uuid, used in self.read().items():
                self.peak[uuid] = max(self.peak.get(uuid, 0.0), used)
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "MemoryPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


@dataclass
class ProbeResult:
    exit_code: int
    peak_gib: float | None  # the largest memory.used over the visible GPUs during the probe
    before_gib: float | None  # memory.used of that GPU before the launch (other processes)
    samples: int
    duration_s: float
    log_tail: str


def run_probe(
    path: str,
    overrides: list[str],
    steps: int,
    samples: bool,
    sd_scripts: str | None,
    env: Mapping[str, str] | None = None,
    interval_s: float = 0.5,
    sink=None,
) -> ProbeResult:
    from loratrain.errors import ConfigError, Problem
    from loratrain.launch import gpus, runner
    from loratrain.launch.prepare import LaunchOptions, prepare

    env = dict(os.environ if env is None else env)
    visible = gpus.scan_nvidia_smi(env)
    visible = gpus._visible(visible, env.get("CUDA_VISIBLE_DEVICES")) if visible else visible
    if not visible or not all(g.uuid for g in visible):
        raise ConfigError(
            [
                Problem(
                    "fit --probe needs nvidia-smi and a GPU to measure",
                    key="--probe",
                    fix="run it on the training machine, or use fit without --probe",
                )
            ]
        )
    uuids = [g.uuid for g in visible]
    workdir = tempfile.mkdtemp(prefix="loratrain-probe-")
    try:
        loaded = probe_config(path, overrides, steps, workdir, samples)
        prepared = prepare(loaded, LaunchOptions(sd_scripts=sd_scripts, force=True), env)
        poller = MemoryPoller(uuids, env, interval_s)
        before = poller.read()
        log_path = Path(workdir) / "probe.log"
        started = time.monotonic()
        with poller:
            result = runner.run(
                prepared.command.argv, prepared.child_env(env), log_path=log_path, sink=sink, cwd=prepared.cwd
            )
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:] if log_path.exists() else ""
        peak: float | None = None
        prior: float | None = None
        if poller.peak:
            uuid = max(poller.peak, key=lambda u: poller.peak[u])
            peak, prior = poller.peak[uuid] / 1024, before.get(uuid, 0.0) / 1024
        return ProbeResult(result.exit_code, peak, prior, poller.samples, time.monotonic() - started, tail)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
