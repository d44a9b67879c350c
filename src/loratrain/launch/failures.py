"""Name the cause of a failed training run from the tail of its log, with the fix, in one or two lines.

All knowledge lives in one table, `CAUSES`: each row has an id, the patterns that identify it in a
log (regular expressions, matched line by line against the last lines of the log), the cause as a
person would say it and what to do. Rows are tried in order and the first one whose pattern occurs
anywhere in the tail wins (its last occurrence is the evidence), so specific causes (CUDA out of memory) come before generic ones (an
sd-scripts error message, a process killed by a signal). The patterns name exception types and
messages printed only on failure, so a successful run's log matches none of them.

sd-scripts' own messages are written "English / Japanese"; any exception or `ERROR` line of that
shape is reported as an sd-scripts message with its English half. A run that matches no row gets its
last meaningful lines (the final exception, not the launcher's "returned non-zero exit status").
Nothing here imports anything heavy; `classify` is a pure function of text and exit status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from loratrain.launch.launcher_echo import drop_launcher_echo

TAIL_LINES = 400  # how much of the end of the log is read

# (id, patterns, cause, fix). `{1}`..`{n}` in cause/fix are filled from the first pattern's groups.
CAUSES: list[tuple[str, tuple[str, ...], str, str]] = [
    (
        "cuda_oom",
        (r"CUDA out of memory", r"OutOfMemoryError", r"CUBLAS_STATUS_ALLOC_FAILED", r"cudaErrorMemoryAllocation"),
        "the GPU ran out of memory (CUDA out of memory)",
        "lower train_batch_size or resolution, turn on gradient_checkpointing and cache_latents, use a smaller "
        "network_dim, or mixed_precision bf16/fp16; `loratrain fit CONFIG` estimates what fits",
    ),
    (
        "nccl",
        (
            r"NCCL (?:error|Error|WARN)",
            r"ncclSystemError|ncclInternalError|ncclUnhandledCudaError|ncclInvalidUsage",
            r"ProcessGroupNCCL.*(?:error|Timeout|timed out)",
            r"Watchdog caught collective operation timeout",
        ),
        "the GPUs could not talk to each other (NCCL error in a multi-GPU run)",
        "run `NCCL_DEBUG=INFO` to see the failing link; on one machine try NCCL_P2P_DISABLE=1, across machines set "
        "NCCL_SOCKET_IFNAME to the interface that connects them (and NCCL_IB_DISABLE=1 without InfiniBand)",
    ),
    (
        "rendezvous",
        (
            r"Rendezvous(?:Timeout|Connection|Closed)Error",
            r"DistNetworkError",
            r"client socket has timed out.*connect",
            r"The server socket has failed to (?:listen|bind)",
            r"EADDRINUSE|Address already in use",
        ),
        "the processes of a distributed run never met (rendezvous with the main machine failed)",
        "check main_process_ip/main_process_port are reachable from every machine, that the port is free, and "
        "that every machine was started with the same num_machines and its own machine_rank",
    ),
    (
        "driver_too_old",
        (
            r"NVIDIA driver on your system is too old",
            r"CUDA driver version is insufficient for CUDA runtime version",
            r"no kernel image is available for execution on the device",
        ),
        "the NVIDIA driver is older than the CUDA build of torch (or torch lacks kernels for this GPU)",
        "update the NVIDIA driver, or install a torch build for the CUDA version `nvidia-smi` reports "
        "(pip install torch --index-url https://download.pytorch.org/whl/cuXXX)",
    ),
    (
        "disk_full",
        (r"No space left on device", r"\[Errno 28\]", r"os error 28", r"Disk quota exceeded", r"\[Errno 122\]"),
        "the disk is full (no space left on device)",
        "free space where output_dir, the latent cache and the temporary folder live (or point output_dir "
        "elsewhere); save_last_n_epochs/save_last_n_steps keep fewer checkpoints",
    ),
    (
        "tokenizer_offline",
        (
            r"Can't load tokenizer for '([^']+)'",
            r"We couldn't connect to 'https://huggingface\.co'",
            r"LocalEntryNotFoundError",
            r"offline mode is enabled",
            r"Max retries exceeded with url: .*huggingface",
        ),
        "the tokenizer could not be downloaded (no connection to huggingface.co, or offline mode)",
        "download it once with a connection and set model.tokenizer_cache_dir to that folder "
        "(`loratrain setup` can fetch the two SDXL tokenizers), or unset HF_HUB_OFFLINE",
    ),
    (
        "corrupt_model",
        (
            r"SafetensorError: Error while deserializing header",
            r"HeaderTooLarge",
            r"MetadataIncompleteBuffer",
            r"invalid load key",
            r"PytorchStreamReader failed reading zip archive",
            r"unexpected EOF, expected \d+ more bytes",
            r"Error\(s\) in loading state_dict",
        ),
        "a model file is damaged or is not what it claims to be (broken download, wrong format, or weights of "
        "a different model/shape)",
        "download the checkpoint again and compare its size/hash; check it is an SDXL model (`loratrain check` "
        "reads its header), and that network_weights/resume belong to this network",
    ),
    (
        "missing_package",
        (
            r"No module named '([\w.]+)'",
            r"ImportError: No (\w+) / ",
            r"ImportError: cannot import name '(\w+)'",
            r"undefined symbol: ",
            r"DLL load failed",
            r"CUDA Setup failed despite GPU being available",
            r"Could not find module '[^']*(?:bitsandbytes|xformers)",
        ),
        "a Python package is missing or broken in the training environment ({1})",
        "install it into the training python: `{python} -m pip install {pip}` (then `loratrain check CONFIG`)",
    ),
    (
        "sd_scripts_message",
        (
            r"(?:AssertionError|ValueError|RuntimeError|TypeError|KeyError|FileNotFoundError|ERROR)\b:?\s*(.+?)\s+/\s+"
            r"[^\n]*?[^\x00-\x7f]",
            r"No data found\. Please verify arguments",
        ),
        "sd-scripts stopped: {1}",
        "fix the setting it names in the config and run `loratrain check CONFIG` before launching again",
    ),
    (
        "host_killed",
        (
            r"died with <Signals\.SIGKILL: 9>",
            r"^\s*Killed\s*$",
            r"killed by signal: Killed",
            r"returned non-zero exit status -9",
            r"exit(?:s with)? (?:return )?code(?: =)? -9\b",
        ),
        "the operating system killed the training (usually the machine ran out of memory, not the GPU)",
        "close other programs or add swap; lower max_data_loader_n_workers, use cache_latents_to_disk, "
        "and avoid lowram/loading on CPU with too little RAM",
    ),
]

# Package module name -> what pip installs.
_PIP_NAMES = {
    "bitsandbytes": "bitsandbytes",
    "prodigyopt": "prodigyopt",
    "lycoris": "lycoris-lora",
    "xformers": "xformers",
    "toml": "toml",
    "voluptuous": "voluptuous",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "transformers": "transformers",
    "diffusers": "diffusers",
    "accelerate": "accelerate",
    "safetensors": "safetensors",
    "dadaptation": "dadaptation",
    "schedulefree": "schedulefree",
    "came_pytorch": "came-pytorch",
    "pytorch_optimizer": "pytorch-optimizer",
    "library": "",
    "networks": "",
    "imagesize": "imagesize",
    "einops": "einops",
    "wandb": "wandb",
    "tensorboard": "tensorboard",
    "open_clip": "open-clip-torch",
    "huggingface_hub": "huggingface_hub",
}

_COMPILED = [(cid, tuple(re.compile(p, re.MULTILINE) for p in pats), cause, fix) for cid, pats, cause, fix in CAUSES]

_NOISE = re.compile(
    r"^\s*(?:File \"|Traceback \(most recent call last\)|\^+$|~+|During handling of the above exception|"
    r"The above exception was the direct cause|subprocess\.CalledProcessError|raise |sys\.exit|args\.func|"
    r"simple_launcher|launch_command|multi_gpu_launcher|return \w+\(|[│╭╰|❱]|\[\w+\] |$)"
)
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(?:\w+Error|\w+Exception|Killed|AssertionError)\b.*")
_PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d+")


@dataclass
class Diagnosis:
    """What went wrong: `cause_id` is None when no known cause matched (then `lines` says the most)."""

    cause_id: str | None
    cause: str
    fix: str = ""
    evidence: str = ""  # the log line that gave it away
    lines: list[str] = field(default_factory=list)  # the last meaningful lines of the log

    def as_dict(self) -> dict[str, Any]:
        return {
            "cause_id": self.cause_id,
            "cause": self.cause,
            "fix": self.fix,
            "evidence": self.evidence,
            "last_lines": self.lines,
        }

    def render(self) -> list[str]:
        out = [f"cause: {self.cause}"]
        if self.fix:
            out.append(f"fix: {self.fix}")
        if self.cause_id is None and self.lines:
            out += ["last lines of the log:"] + [f"  {line}" for line in self.lines]
        return out


def tail_lines(text: str, limit: int = TAIL_LINES) -> list[str]:
    """The last `limit` lines, with tqdm's carriage-return redraws reduced to their final state."""
    lines = []
    for raw in text.splitlines()[-limit * 4 :]:
        parts = [p for p in raw.split("\r") if p.strip()]
        lines.append(parts[-1] if parts else "")
    return lines[-limit:]


def read_tail(path, limit_bytes: int = 256 * 1024) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit_bytes))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def meaningful_lines(lines: list[str], count: int = 6) -> list[str]:
    """The last lines that say something: the final real exception and what led to it, not the launcher's."""
    kept = [line.rstrip() for line in lines if not _NOISE.match(line) and not _PROGRESS.search(line)]
    kept = [line for line in kept if "CalledProcessError" not in line and "non-zero exit status" not in line]
    # End at the last exception line when there is one: what follows is the launcher's own traceback.
    last_exc = max((i for i, line in enumerate(kept) if _EXCEPTION_LINE.match(line.strip())), default=None)
    if last_exc is not None:
        kept = kept[: last_exc + 1]
    return [line[:300] for line in kept[-count:]]


def _fill(template: str, groups: tuple[str | None, ...], python: str) -> str:
    text = template
    first = next((g for g in groups if g), "") if groups else ""
    module = (first or "").split(".")[0]
    pip = _PIP_NAMES.get(module, module) or "-r requirements.txt (in the sd-scripts folder)"
    text = text.replace("{1}", first or "see the log").replace("{python}", python).replace("{pip}", pip)
    return text


def classify(
    log_text: str, exit_code: int | None = None, child_code: int | None = None, python: str = "python"
) -> Diagnosis | None:
    """The cause of a failure, or None for a run that did not fail (exit 0).

    With `exit_code` None the text alone decides (what the corpus tests use).
    """
    if exit_code == 0:
        return None
    lines = tail_lines(drop_launcher_echo(log_text))
    for cid, patterns, cause, fix in _COMPILED:
        for line in reversed(lines):  # the last occurrence: earlier ones may be warnings the run survived
            for pattern in patterns:
                m = pattern.search(line)
                if m is None:
                    continue
                groups = m.groups()
                if (
                    cid == "missing_package"
                    and groups
                    and groups[0]
                    and groups[0].split(".")[0] in ("library", "networks")
                ):
                    cause_text = f"sd-scripts' own module {groups[0]} was not found (the sd-scripts folder or its install is incomplete)"
                    fix_text = (
                        "point sd_scripts / --sd-scripts at a complete sd-scripts checkout and run `loratrain setup`"
                    )
                    return Diagnosis(cid, cause_text, fix_text, line.strip()[:300], meaningful_lines(lines))
                return Diagnosis(
                    cid,
                    _fill(cause, groups, python),
                    _fill(fix, groups, python),
                    line.strip()[:300],
                    meaningful_lines(lines),
                )
    killed = child_code == -9 or exit_code == 137
    if killed:
        cid, _, cause, fix = CAUSES[-1]
        return Diagnosis(cid, cause, fix, f"exit status {exit_code}", meaningful_lines(lines))
    if exit_code is None:
        return None
    last = meaningful_lines(lines)
    head = last[-1].strip() if last else f"exit status {exit_code} and no output"
    return Diagnosis(None, f"unknown failure: {head}", "", head, last)
