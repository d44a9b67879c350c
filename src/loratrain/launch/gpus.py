"""Count the GPUs training can use and whether they support bf16.

`nvidia-smi` answers without loading torch, so it is asked first. It lists every GPU of the machine;
CUDA_VISIBLE_DEVICES then narrows that to what the training processes (and accelerate's gpu_ids,
which count visible GPUs from 0) will see. Without nvidia-smi, torch in the training interpreter is
asked in a subprocess, so loratrain itself never imports torch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping

from loratrain.effective import processes

BF16_MIN_CAPABILITY = 8.0  # Ampere and newer


@dataclass(frozen=True)
class Gpu:
    index: int  # index among the visible GPUs, as accelerate's gpu_ids use it
    name: str
    compute_cap: float | None = None
    uuid: str = ""

    @property
    def bf16(self) -> bool | None:
        if self.compute_cap is None:
            return None
        return self.compute_cap >= BF16_MIN_CAPABILITY


@dataclass(frozen=True)
class GpuScan:
    gpus: list[Gpu] | None  # None: could not tell
    source: str  # "nvidia-smi", "torch" or "none"
    note: str = ""

    @property
    def count(self) -> int | None:
        return None if self.gpus is None else len(self.gpus)


_LIST_LINE = re.compile(r"^GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]+)\))?\s*$")


def parse_nvidia_smi_list(text: str) -> list[Gpu]:
    """Parse `nvidia-smi -L` output ("GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-...)")."""
    gpus = []
    for line in text.splitlines():
        m = _LIST_LINE.match(line.strip())
        if m:
            gpus.append(Gpu(index=int(m.group(1)), name=m.group(2), uuid=(m.group(3) or "").strip()))
    return gpus


def parse_compute_caps(text: str) -> list[tuple[str, float | None]]:
    """Parse `nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader` lines."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, cap = line.rpartition(",")
        try:
            value = float(cap.strip())
        except ValueError:
            value = None
        rows.append((name.strip(), value))
    return rows


def _visible(gpus: list[Gpu], visible: str | None) -> list[Gpu]:
    """Apply CUDA_VISIBLE_DEVICES (indices or UUIDs, comma-separated) and renumber from 0."""
    if visible is None:
        return gpus
    chosen: list[Gpu] = []
    for item in (part.strip() for part in visible.split(",")):
        if not item:
            continue
        match = None
        if item.isdigit():
            match = next((g for g in gpus if g.index == int(item)), None)
        else:
            match = next((g for g in gpus if g.uuid and g.uuid.startswith(item)), None)
        if match is None:
            break  # CUDA stops at the first entry it cannot resolve
        chosen.append(match)
    return [Gpu(index=i, name=g.name, compute_cap=g.compute_cap, uuid=g.uuid) for i, g in enumerate(chosen)]


def _run(argv: list[str], env: Mapping[str, str] | None, timeout: float = 20.0) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=dict(env) if env else None, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def scan_nvidia_smi(env: Mapping[str, str] | None = None) -> list[Gpu] | None:
    path_env = (env or os.environ).get("PATH")
    exe = shutil.which("nvidia-smi", path=path_env)
    if exe is None:
        return None
    listed = _run([exe, "-L"], env)
    if listed is None or listed.returncode != 0:
        return None
    gpus = parse_nvidia_smi_list(listed.stdout)
    caps = _run([exe, "--query-gpu=name,compute_cap", "--format=csv,noheader"], env)
    if caps is not None and caps.returncode == 0:
        rows = parse_compute_caps(caps.stdout)
        if len(rows) == len(gpus):
            gpus = [Gpu(g.index, g.name, cap, g.uuid) for g, (_, cap) in zip(gpus, rows)]
    return gpus


def scan_torch(python: str, env: Mapping[str, str] | None = None) -> list[Gpu] | None:
    """The GPUs torch in `python` sees (sdscripts/probes/gpu_probe.py; it imports torch, so only a fallback)."""
    from loratrain.sdscripts import probes

    try:
        ended = probes.run(python, "gpu_probe", [], dict(env) if env is not None else None, timeout=120.0)
    except (OSError, probes.TimedOut):
        return None
    data = ended.result
    if ended.returncode != 0 or not isinstance(data, dict) or "gpus" not in data:
        return None
    return [Gpu(index=g["index"], name=g["name"], compute_cap=g["cap"]) for g in data["gpus"]]


def scan_light(env: Mapping[str, str] | None = None) -> GpuScan:
    """nvidia-smi only (never torch): for paths that must stay fast, such as --dry-run."""
    env = env if env is not None else os.environ
    smi = scan_nvidia_smi(env)
    if smi is None:
        return GpuScan(None, "none", "nvidia-smi not found")
    return GpuScan(_visible(smi, env.get("CUDA_VISIBLE_DEVICES")), "nvidia-smi")


def scan(python: str, env: Mapping[str, str] | None = None) -> GpuScan:
    """The GPUs the training processes will see: nvidia-smi first, torch in `python` second."""
    env = env if env is not None else os.environ
    smi = scan_nvidia_smi(env)
    if smi is not None:
        return GpuScan(_visible(smi, env.get("CUDA_VISIBLE_DEVICES")), "nvidia-smi")
    via_torch = scan_torch(python, env)
    if via_torch is not None:
        return GpuScan(via_torch, "torch")  # torch already honours CUDA_VISIBLE_DEVICES
    return GpuScan(None, "none", "neither nvidia-smi nor torch in the training interpreter could list GPUs")


def local_process_count(accelerate: Mapping[str, Any], scan: GpuScan) -> int | None:
    """Processes this machine starts (effective.processes: "auto" counts the scanned GPUs)."""
    return processes(accelerate, scan.count).per_machine


def total_processes(accelerate: Mapping[str, Any], scan: GpuScan) -> int | None:
    """accelerate's --num_processes (the total over all machines), with "auto" resolved from the scan."""
    return processes(accelerate, scan.count).total


def visible_count(accelerate: Mapping[str, Any], env: Mapping[str, str] | None = None) -> int | None:
    """The GPUs this machine's training processes will see, for the effective view: scanned (nvidia-smi only,
    no torch) only where num_processes is "auto", the one setting that needs them; None otherwise."""
    if accelerate.get("num_processes") != "auto":
        return None
    return scan_light(env).count


def parse_memory_totals(text: str) -> list[tuple[str, str, float]]:
    """Parse `nvidia-smi --query-gpu=uuid,name,memory.total --format=csv,noheader,nounits` (MiB) lines."""
    rows = []
    for line in text.splitlines():
        uuid, _, rest = line.partition(",")
        name, _, total = rest.rpartition(",")
        if not name.strip():
            continue
        try:
            rows.append((uuid.strip(), name.strip(), float(total.strip())))
        except ValueError:
            continue
    return rows


def memory_totals(env: Mapping[str, str] | None = None) -> list[tuple[Gpu, float]] | None:
    """The visible GPUs with their memory in GiB (nvidia-smi only); None when nvidia-smi cannot tell."""
    env = env if env is not None else os.environ
    smi = scan_nvidia_smi(env)
    if smi is None:
        return None
    done = _run(
        [
            shutil.which("nvidia-smi", path=env.get("PATH")) or "nvidia-smi",
            "--query-gpu=uuid,name,memory.total",
            "--format=csv,noheader,nounits",
        ],
        env,
    )
    if done is None or done.returncode != 0:
        return None
    mib = {uuid: total for uuid, _, total in parse_memory_totals(done.stdout)}
    visible = _visible(smi, env.get("CUDA_VISIBLE_DEVICES"))
    out = [(g, mib[g.uuid] / 1024) for g in visible if g.uuid in mib]
    return out if len(out) == len(visible) else None
