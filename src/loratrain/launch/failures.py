"""Name the cause of a failed training run from its log, with the fix: the same answer for `run` and `diagnose`.

The final exception decides. The log is read from its end: the launcher's own traceback (accelerate's
`CalledProcessError`, torch elastic's `ChildFailedError` summary) is stepped over, known harmless notices
(xformers' "A matching Triton is not available", bitsandbytes' banners, sd-scripts' `WARNING` lines and the
`ERROR` lines it logs and goes on from) are never candidates, and an exception the run survived (training
went on after it) is not the end. The last exception left is the final one; its message, and the exceptions
chained into it, are matched against `CAUSES`. Earlier lines only add detail. When the log has no exception
at all, the last lines that state a fatal condition in plain words ("Killed", a CUDA error printed by a
native library, a socket timeout) are read instead, and last the launcher's exit status (-9, a Windows
access violation). Nothing matched: the cause is "unknown" and shows the real final exception line.

Every step is one pass over the tail, so the time is linear in the log's length. Nothing here imports
anything heavy; `classify` and `judge_clean_exit` are pure functions of text and numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from loratrain.launch.launcher_echo import drop_launcher_echo

TAIL_LINES = 1500  # how many of the log's last lines are read
TAIL_BYTES = 512 * 1024
_NEAR_END = 15  # a fatal line without an exception must be among the last meaningful lines
_LINE_CHARS = 4000  # longer lines are cut: no pattern needs more, and it bounds the time per line

# (id, patterns, cause, fix). Tried in order against the final exception's text; the first match wins.
# `{1}` in cause/fix is the first group of the matching pattern; `{python}` and `{pip}` are filled for packages.
CAUSES: list[tuple[str, tuple[str, ...], str, str]] = [
    (
        "cuda_oom",
        (
            r"CUDA out of memory",
            r"OutOfMemoryError",
            r"CUDA error: out of memory",
            r"(?:HIP|MPS backend|XPU) out of memory",
            r"CUBLAS_STATUS_ALLOC_FAILED",
            r"cudaErrorMemoryAllocation",
        ),
        "the GPU ran out of memory (CUDA out of memory)",
        "lower train_batch_size or resolution, turn on gradient_checkpointing and cache_latents, use a smaller "
        "network_dim, or mixed_precision bf16/fp16; `loratrain fit CONFIG` estimates what fits",
    ),
    (
        "host_memory",
        (
            r"DefaultCPUAllocator: (?:can't allocate memory|not enough memory)",
            r"\[WinError 1455\]",
            r"paging file is too small",
            r"os error 1455",
            r"^(?:\w+\.)*MemoryError\b",
            r"Unable to allocate [\d.]+ [KMGTP]i?B",
            r"Cannot allocate memory",
        ),
        "the computer ran out of memory (RAM, or the Windows page file), not the GPU",
        "close other programs, enlarge the page file or add swap, lower max_data_loader_n_workers, and use "
        "cache_latents_to_disk; loading an SDXL checkpoint needs about 16 GB of RAM",
    ),
    (
        "host_killed",
        (
            r"died with <Signals\.SIGKILL: 9>",
            r"^\s*Killed\s*$",
            r"killed by signal: Killed",
            r"non-zero exit status -9\b",
            r"exit(?:code| with return code| code)\s*[=:]?\s*-9\b",
        ),
        "the operating system killed the training (usually the machine ran out of memory, not the GPU)",
        "close other programs or add swap; lower max_data_loader_n_workers, use cache_latents_to_disk, "
        "and avoid lowram/loading on CPU with too little RAM",
    ),
    (
        "nccl",
        (
            r"NCCL (?:error|Error|WARN)",
            r"nccl(?:System|Internal|UnhandledCuda|InvalidUsage|Remote)Error",
            r"ProcessGroupNCCL.*(?:error|Timeout|timed out)",
            r"Watchdog caught collective operation timeout",
            r"DistBackendError",
        ),
        "the GPUs could not talk to each other (NCCL error in a multi-GPU run)",
        "run with NCCL_DEBUG=INFO to see the failing link; on one machine try NCCL_P2P_DISABLE=1, across machines "
        "set NCCL_SOCKET_IFNAME to the interface that connects them (and NCCL_IB_DISABLE=1 without InfiniBand)",
    ),
    (
        "rendezvous",
        (
            r"Rendezvous(?:Timeout|Connection|Closed)Error",
            r"DistNetworkError",
            r"client socket has timed out",
            r"server socket has failed to (?:listen|bind)",
            r"EADDRINUSE|Address already in use",
            r"connect\(\) timed out",
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
            r"cudaErrorInsufficientDriver",
        ),
        "the NVIDIA driver is older than the CUDA version this torch was built for",
        "update the NVIDIA driver, or install a torch built for the CUDA version `nvidia-smi` reports "
        "(pip install torch --index-url https://download.pytorch.org/whl/cuXXX)",
    ),
    (
        "gpu_arch_unsupported",
        (r"no kernel image is available for execution", r"cudaErrorNoKernelImageForDevice"),
        "a GPU library (torch, xformers or bitsandbytes) has no kernels for this GPU: its build is too old for the "
        "card (e.g. an RTX 50xx needs CUDA 12.8 builds) or the card is too old for the build",
        "install torch, torchvision, xformers and bitsandbytes builds that support this GPU (for Blackwell cards: the "
        "cu128 wheels), or train without xformers (sdpa) and with a non-8-bit optimizer",
    ),
    (
        "no_gpu",
        (
            r"Torch not compiled with CUDA enabled",
            r"No CUDA GPUs are available",
            r"Found no NVIDIA driver on your system",
            r"CUDA unknown error - this may be due to an incorrectly set up environment",
        ),
        "torch cannot use a GPU here (a CPU-only torch build, no driver, or no visible GPU)",
        "install a CUDA build of torch (pip install torch --index-url https://download.pytorch.org/whl/cuXXX), check "
        "`nvidia-smi` works, and that CUDA_VISIBLE_DEVICES does not hide the GPU",
    ),
    (
        "native_crash",
        (
            r"exit status 3221225477\b",
            r"0xC0000005",
            r"<Signals\.SIGSEGV: 11>",
            r"non-zero exit status -11\b",
            r"^\s*Segmentation fault",
        ),
        "the training process crashed inside native code (an access violation / segmentation fault)",
        "usually a torch/xformers/bitsandbytes build that does not match the others or the GPU: reinstall them "
        "as one matching set, try without xformers (sdpa) and with a non-8-bit optimizer; a RAM shortage can "
        "also end this way",
    ),
    (
        "disk_full",
        (
            r"No space left on device",
            r"\[Errno 28\]",
            r"os error 28",
            r"code: 28, kind: StorageFull",
            r"Disk quota exceeded",
            r"\[Errno 122\]",
            r"PytorchStreamWriter failed writing file",
        ),
        "the disk is full (no space left on device, or the disk quota is used up)",
        "free space where output_dir, the latent cache and the temporary folder live (or point output_dir "
        "elsewhere); save_last_n_epochs/save_last_n_steps keep fewer checkpoints",
    ),
    (
        "hub_offline",
        (
            r"Can't load tokenizer for '([^']+)'",
            r"couldn't connect to 'https?://huggingface\.co",
            r"LocalEntryNotFoundError",
            r"offline mode is enabled",
            r"Max retries exceeded with url: .*huggingface",
            r"Cannot reach https://huggingface\.co",
        ),
        "a file could not be fetched from huggingface.co (no connection, offline mode, or the hub is down)",
        "download it once with a connection and point to the local copy (model.tokenizer_cache_dir for the "
        "tokenizers; `loratrain setup` fetches the two SDXL tokenizers), or unset HF_HUB_OFFLINE",
    ),
    (
        "corrupt_model",
        (
            r"SafetensorError: Error while deserializing header",
            r"HeaderTooLarge",
            r"header too large",
            r"MetadataIncompleteBuffer",
            r"invalid load key",
            r"PytorchStreamReader failed reading zip archive",
            r"unexpected EOF, expected \d+ more bytes",
            r"Error\(s\) in loading state_dict",
            r"^\s*size mismatch for\b",
            r"(?:Missing|Unexpected) key\(s\) in state_dict",
            r"UnpicklingError",
        ),
        "a model or state file is damaged or does not match (a broken download, a different format, or weights of "
        "another model, network_dim or architecture)",
        "download the checkpoint again and compare its size/hash; check it is an SDXL model (`loratrain check` "
        "reads its header), and that network_weights/resume were saved with this network's dim and module",
    ),
    (
        "bad_image",
        (
            r"cannot identify image file",
            r"image file is truncated",
            r"UnidentifiedImageError",
            r"DecompressionBombError",
            r"broken data stream when reading image file",
        ),
        "an image in the dataset cannot be read (damaged, truncated, or not an image)",
        "find the file named in the log (or run `loratrain plan CONFIG`, which opens every image), then re-save "
        "or remove it",
    ),
    (
        "bad_caption",
        (r"caption file is empty", r"illegal char in file \(not UTF-8\)"),
        "a caption file is empty or not UTF-8 text",
        "re-save the caption file named in the log as UTF-8 (or delete it to train that image without a caption)",
    ),
    (
        "system_library",
        (
            r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object file",
            r"DLL load failed",
            r"Could not load library (\S+)",
            r"Error loading \"([^\"]+\.dll)\" or one of its dependencies",
            r"undefined symbol: ",
            r"version `GLIBC",
        ),
        "a system library the Python packages need is missing ({1})",
        "{syslib}",
    ),
    (
        "missing_package",
        (
            r"No module named '([\w.]+)'",
            r"ImportError: No (\w+) / ",
            r"CUDA Setup failed despite GPU being available",
            r"Could not find module '[^']*(?:bitsandbytes|xformers)",
        ),
        "a Python package is missing or broken in the training environment ({1})",
        "install it into the training python: `{python} -m pip install {pip}` (then `loratrain check CONFIG`)",
    ),
    (
        "package_version",
        (
            r"cannot import name '(\w+)' from '([\w.]+)'",
            r"module '([\w.]+)' has no attribute '\w+'",
            r"xformers::\w+\(\) expected at most \d+ argument",
        ),
        "installed package versions do not fit together ({1} is not what the code importing it expects)",
        "install the versions sd-scripts pins: `{python} -m pip install -r requirements.txt` in the sd-scripts "
        "folder (xformers must be the build made for the installed torch)",
    ),
    (
        "precision",
        (
            r"Attempting to unscale FP16 gradients",
            r"not implemented for '(?:Half|BFloat16)'",
            r"expected scalar type (?:Half|Float|BFloat16) but found",
            r"Input type \([^)]*\) and (?:weight|bias) type \([^)]*\) should be the same",
            r"doesn't support bf16",
            r"full_fp16 requires mixed precision",
        ),
        "the precision settings do not fit together (fp16/bf16 weights, mixed precision and the GPU)",
        "use mixed_precision bf16 on cards that support it (else fp16), keep save_precision to match, and use "
        "full_fp16/full_bf16 only with the mixed_precision of the same name",
    ),
    (
        "bad_argument",
        (
            r": error: unrecognized arguments: (.*)",
            r": error: argument (--[\w-]+)",
            r": error: the following arguments are required: (.*)",
            r"TomlDecodeError",
        ),
        "the training script rejected its arguments ({1})",
        "remove or correct the argument; `loratrain check CONFIG --verify-parser` runs sd-scripts' own parser "
        "before launching",
    ),
    (
        "file_access",
        (
            r"FileNotFoundError: \[Errno 2\] No such file or directory: '([^']+)'",
            r"PermissionError: \[Errno 13\] Permission denied: '([^']+)'",
            r"\[WinError 5\] Access is denied: '([^']+)'",
        ),
        "a file the run needs is missing or cannot be opened ({1})",
        "check the path in the config and that the training user can read it (`loratrain check CONFIG` checks "
        "the model, dataset, output folder and prompt file before launching)",
    ),
    (
        "interrupted",
        (r"^(?:\w+\.)*KeyboardInterrupt\b",),
        "the run was interrupted (Ctrl-C, or the notebook/host stopped it)",
        "start it again; with save_state, `loratrain run CONFIG --resume` goes on from the last saved state",
    ),
    (
        "no_data",
        (r"No data found\. Please verify arguments",),
        "sd-scripts found no training images and stopped without training",
        "point the dataset at the parent of the `<repeats>_<name>` image folders (train_data_dir is that parent, "
        "not the image folder itself); `loratrain plan CONFIG` lists what it finds",
    ),
    (
        "sd_scripts_message",
        (
            r"(?:AssertionError|ValueError|RuntimeError|TypeError|KeyError|FileNotFoundError)\b:?\s*(.+?)\s+/\s+[^\n]*?[^\x00-\x7f]",
        ),
        "sd-scripts stopped: {1}",
        "fix the setting it names in the config and run `loratrain check CONFIG` before launching again",
    ),
]

# Package module name -> what pip installs ("" when the module is sd-scripts' own).
_PIP_NAMES = {
    "bitsandbytes": "bitsandbytes",
    "prodigyopt": "prodigyopt",
    "lycoris": "lycoris-lora",
    "xformers": "xformers",
    "toml": "toml",
    "voluptuous": "voluptuous",
    "cv2": "opencv-python-headless",
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
    "albumentations": "albumentations",
}

_COMPILED = [(cid, tuple(re.compile(p, re.MULTILINE) for p in pats), cause, fix) for cid, pats, cause, fix in CAUSES]
_BY_ID = {row[0]: row for row in _COMPILED}

# What a line looks like ----------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|←\[[0-9;]*m")
# Prefixes that loggers and hosts put before a line: GUI time stamps, rich's log level column, RunPod/
# ComfyUI brackets, torch elastic's rank prefix. They are removed before a line is read as an exception.
_PREFIX = re.compile(
    r"^(?:\[[^\]]{1,40}\]\s*(?:\[[A-Z]+\]\s*)?"  # [08:03:35] [STDERR]  /  [2024-12-21 06:01:08] [INFO]
    r"|\d{4}-\d\d-\d\d[ T][\d:,.]+\s*(?:\|\s*\w+\s*\|\s*\w+\s*\|)?\s*"  # 2024-01-01 12:00:00 | ERROR | stderr |
    r"|\d\d:\d\d:\d\d[-.,]\d+\s+"  # 17:52:57-693860 (the GUI)
    r"|\[(?:rank|default)\d+\]:\s*"
    r")+"
)
_LEVEL = re.compile(r"^\s*(INFO|WARNING|WARN|DEBUG|ERROR|CRITICAL)\b:?\s+")
_EXCEPTION = re.compile(
    r"^\s*(?:[A-Za-z_][\w]*\.)*"
    r"(?P<name>[A-Z]\w*(?:Error|Exception|Exit|Interrupt)|nccl\w+Error|Killed)"
    r"(?::(?P<msg>.*)|\s*$)"
)
_ELASTIC_JSON = re.compile(r'^\s*"message":\s*"(?P<msg>[A-Z]\w*(?:Error|Exception)\b.*?)",?\s*$')
_WHAT = re.compile(r"^\s*what\(\):\s+(?P<msg>.+)$")
_FRAME = re.compile(r'^\s*File "|^\s*[│|]\s?|^\s*[╭╰]|^\s*❱|^\s*[\^~]+\s*$')
_TRACEBACK_HEAD = re.compile(r"Traceback \(most recent call last\)|^\s*raceback \(most recent call last\)")
_CHAIN = re.compile(r"During handling of the above exception|The above exception was the direct cause")
_LAUNCHER_EXC = re.compile(r"CalledProcessError|ChildFailedError|SubprocessError")
_LAUNCHER_LINE = re.compile(
    r"CalledProcessError|ChildFailedError|simple_launcher|multi_gpu_launcher|launch_command|"
    r"elastic\.multiprocessing\.api:failed|sigkill_handler"
)
_PROGRESS = re.compile(r"(\d+)%\|.*?\|\s*(\d+)/(\d+)|(?:steps|epoch)[^|]*?\s(\d+)/(\d+)\s*\[")
_LIFE = re.compile(r"^\s*(?:saving checkpoint:|model saved\b|epoch \d+/\d+\s*$|Running on local URL)")
# Notices that never explain a failure: optional accelerators, banners, and sd-scripts' non-fatal ERROR lines.
_HARMLESS = re.compile(
    r"No module named '(?:triton|tensorflow|apex|deepspeed|flash_attn)\b|"
    r"A matching Triton is not available|_is_triton_available|"
    r"xFormers can't load C\+\+/CUDA extensions|"
    r"bitsandbytes was compiled without GPU support|"
    r"Exception in parsing / |No prompt file / |Could not load image path / "
)
_ECHO = re.compile(r"^\s*(?:negative_prompt|prompt|caption|captions|tags)\s*[:=]|\bcaption: \"")
_WARNING = re.compile(r"\b[A-Z]\w*Warning: ")  # Python's warnings: the run goes on
_LAUNCHER_FAILED = re.compile(r"CalledProcessError|ChildFailedError|api:failed \(exitcode|exits with return code")
_SD_FATAL_ERROR = re.compile(r"No data found\. Please verify arguments")


@dataclass
class Diagnosis:
    """What went wrong: `cause_id` is None when no known cause matched (then `final_exception` says the most)."""

    cause_id: str | None
    cause: str
    fix: str = ""
    evidence: str = ""  # the log line that gave it away
    lines: list[str] = field(default_factory=list)  # the last meaningful lines of the log
    final_exception: str = ""  # the last exception (or fatal line) before the exit

    def as_dict(self) -> dict[str, Any]:
        return {
            "cause_id": self.cause_id,
            "cause": self.cause,
            "fix": self.fix,
            "evidence": self.evidence,
            "final_exception": self.final_exception,
            "last_lines": self.lines,
        }

    def render(self) -> list[str]:
        out = [f"cause: {self.cause}"]
        if self.fix:
            out.append(f"fix: {self.fix}")
        if self.cause_id is None and self.lines:
            out += ["last lines of the log:"] + [f"  {line}" for line in self.lines]
        return out


def read_tail(path, limit_bytes: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit_bytes))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def tail_lines(text: str, limit: int = TAIL_LINES) -> list[str]:
    """The last `limit` lines, colour codes removed and tqdm's carriage-return redraws reduced to their last state."""
    if len(text) > TAIL_BYTES * 2:
        text = text[-TAIL_BYTES * 2 :]
    lines = []
    for raw in text.split("\n")[-limit * 2 :]:
        parts = [p for p in raw.split("\r") if p.strip()]
        lines.append(_ANSI.sub("", (parts[-1] if parts else "")[:_LINE_CHARS]).rstrip())
    return lines[-limit:]


def _content(line: str) -> tuple[str, str]:
    """(the line without time stamps and host prefixes, its log level or "")."""
    body = _PREFIX.sub("", line, count=1)
    level = _LEVEL.match(body)
    if level:
        return body[level.end() :], level.group(1)
    return body, ""


def _progress_step(line: str) -> int | None:
    m = _PROGRESS.search(line)
    if m is None:
        return None
    return int(m.group(2) if m.group(2) is not None else m.group(4))


def _is_noise(line: str) -> bool:
    body = _content(line)[0]
    return not body.strip() or bool(_FRAME.match(body)) or bool(_TRACEBACK_HEAD.search(body))


@dataclass
class _Found:
    index: int  # line index of the final exception (or fatal line)
    text: str  # the exception line with its continuation lines
    chained: list[str]  # earlier exceptions of the same traceback chain, latest first
    launcher: list[str]  # launcher lines after it (exit status, signals)


def _exception_at(lines: list[str], i: int) -> str | None:
    """The exception text on line i, or None: `Name: message`, torch elastic's JSON, or C++'s what()."""
    body, level = _content(lines[i])
    if level in ("INFO", "WARNING", "WARN", "DEBUG"):
        return None
    for pattern in (_EXCEPTION, _ELASTIC_JSON, _WHAT):
        if pattern.match(body) is None:
            continue
        # A source line shown under a `File "..."` frame is code, not the exception.
        if i > 0 and lines[i - 1].lstrip().startswith('File "') and body[:1].isspace():
            return None
        return body.strip()
    return None


def _continuation(lines: list[str], i: int) -> str:
    """The exception line and the lines that continue its message (wrapped text, chained library messages)."""
    parts = [_content(lines[i])[0].strip()]
    for j in range(i + 1, min(len(lines), i + 8)):
        line = lines[j]
        if _is_noise(line) or _CHAIN.search(line) or _LAUNCHER_LINE.search(line):
            break
        if _progress_step(line) is not None or _exception_at(lines, j) is not None:
            break
        parts.append(_content(line)[0].strip())
    return "\n".join(parts)


def _chain_before(lines: list[str], i: int) -> list[str]:
    """Exceptions chained into the one on line i ("During handling of the above exception ..."), latest first."""
    out: list[str] = []
    j = i - 1
    while j >= 0 and i - j < 300:
        if not _TRACEBACK_HEAD.search(lines[j]):
            j -= 1
            continue
        k = j - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k < 0 or not _CHAIN.search(lines[k]):
            break  # this traceback is not chained to an earlier one
        k -= 1
        for m in range(k, max(-1, k - 8), -1):
            if _exception_at(lines, m) is not None:
                out.append(_continuation(lines, m))
                break
        j = k
    return out


def _harmless_block(lines: list[str], i: int, text: str) -> bool:
    """An exception that is a known notice (e.g. xformers probing for triton), judged with its traceback."""
    if _HARMLESS.search(text):
        return True
    for j in range(i - 1, max(-1, i - 40), -1):  # the frames of its own traceback only
        if "_is_triton_available" in lines[j]:
            return True
        line = lines[j]
        if _TRACEBACK_HEAD.search(line) or not (line.startswith((" ", "\t")) or _is_noise(line)):
            break
    return False


def find_final(lines: list[str]) -> _Found | None:
    """The final exception: the last one that is not the launcher's, not a harmless notice, and not followed by
    training that went on. Falls back to the last fatal line in plain words near the end."""
    before = [0] * (len(lines) + 1)  # before[i]: the furthest progress step on lines[:i]
    for i, line in enumerate(lines):
        step = _progress_step(line)
        before[i + 1] = max(before[i], step if step is not None else 0)
    launcher: list[str] = []
    furthest_after = -1  # the furthest progress step after the line being read
    life_after = False
    meaningful_seen = 0
    fallback: _Found | None = None
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if not line.strip():
            continue
        body, level = _content(line)
        if _LAUNCHER_LINE.search(line):
            launcher.append(line.strip())
            continue
        step = _progress_step(line)
        if step is not None:
            furthest_after = max(furthest_after, step)
            continue
        if _LIFE.match(body):
            life_after = True
            continue
        went_on = life_after or furthest_after > before[i]
        exc = _exception_at(lines, i)
        if exc is not None and not _LAUNCHER_EXC.search(exc):
            text = _continuation(lines, i)
            if _harmless_block(lines, i, text):
                continue
            if went_on:
                return None  # the run went on after this exception: it was survived
            return _Found(i, text, _chain_before(lines, i), launcher)
        if _is_noise(line):
            continue
        meaningful_seen += 1
        if fallback is not None or went_on or meaningful_seen > _NEAR_END:
            continue
        if level in ("INFO", "WARNING", "WARN", "DEBUG") or _HARMLESS.search(body) or _WARNING.search(body):
            continue
        if _ECHO.search(body):  # a prompt or caption echoed back: the user's words, not a message
            continue
        if level == "ERROR" and not _SD_FATAL_ERROR.search(body):
            continue
        if _match(body.strip()) is not None:
            fallback = _Found(i, body.strip(), [], launcher)
    return fallback


def _match(text: str) -> tuple[str, re.Match[str]] | None:
    for cid, patterns, _, _ in _COMPILED:
        for pattern in patterns:
            m = pattern.search(text)
            if m is not None:
                return cid, m
    return None


def _fill(cid: str, m: re.Match[str] | None, python: str) -> tuple[str, str]:
    _, _, cause, fix = _BY_ID[cid]
    groups = m.groups() if m is not None else ()
    first = next((g for g in groups if g), "")
    if cid == "missing_package":
        module = first.split(".")[0]
        if module in ("library", "networks"):
            if module == "networks" and first != "networks":
                return (
                    f"network_module names {first}, which sd-scripts does not have",
                    "use networks.lora for LoRA, or lycoris.kohya for LyCORIS (pip install lycoris-lora)",
                )
            return (
                f"sd-scripts' own module {first} was not found (the sd-scripts folder or its install is incomplete)",
                "point sd_scripts / --sd-scripts at a complete sd-scripts checkout and run `loratrain setup`",
            )
        pip = _PIP_NAMES.get(module, module) or "-r requirements.txt (in the sd-scripts folder)"
        fix = fix.replace("{pip}", pip or module)
    if cid == "system_library":
        if "libGL" in first or "libgthread" in first:
            fix = (
                "OpenCV needs libGL: `apt-get install -y libgl1 libglib2.0-0`, or replace opencv-python with "
                "opencv-python-headless (same version) in the training environment"
            )
        elif first.lower().startswith(("libcu", "cudnn", "libcudnn", "cublas")) or "cuda" in first.lower():
            fix = "the CUDA runtime libraries torch expects are missing: reinstall torch from its CUDA wheel index"
        else:
            fix = (
                "reinstall the package that fails to load (on Windows: install the Microsoft Visual C++ "
                "Redistributable); `loratrain doctor` names the broken one"
            )
    if cid == "sd_scripts_message" and not first:
        first = "see the log"
    filled_cause = cause.replace("{1}", first or "see the log")
    filled_fix = fix.replace("{python}", python).replace("{pip}", first or "")
    return filled_cause, filled_fix


def meaningful_lines(lines: list[str], count: int = 6, end: int | None = None) -> list[str]:
    """The last lines that say something, up to line `end`: not frames, progress bars or the launcher's traceback."""
    window = lines if end is None else lines[: end + 1]
    kept = [
        line.rstrip()
        for line in window
        if not _is_noise(line)
        and _progress_step(line) is None
        and not _LAUNCHER_LINE.search(line)
        and "non-zero exit status" not in line
        and not line.lstrip().startswith(("raise ", "sys.exit", "args.func", "return ", "exec("))
    ]
    return [line[:300] for line in kept[-count:]]


def _launcher_signal(launcher: list[str], exit_code: int | None, child_code: int | None) -> str | None:
    """A cause the launcher's own lines or the exit status give when the log has nothing better."""
    text = "\n".join(launcher)
    for cid in ("host_killed", "native_crash"):
        for pattern in _BY_ID[cid][1]:
            if pattern.search(text):
                return cid
    if child_code == -9 or exit_code in (137, -9):
        return "host_killed"
    if child_code == -11 or exit_code in (139, -11, 3221225477):
        return "native_crash"
    return None


def classify(
    log_text: str, exit_code: int | None = None, child_code: int | None = None, python: str = "python"
) -> Diagnosis | None:
    """The cause of a failure, or None for a run that did not fail.

    `exit_code` 0 means the process succeeded (see `judge_clean_exit` for runs that exit 0 without training).
    With `exit_code` None (a pasted log) the text alone decides, and a log with no failure in it gives None.
    """
    if exit_code == 0:
        return None
    lines = tail_lines(drop_launcher_echo(log_text))  # accelerate >= 1.16 prints the stderr tail twice
    found = find_final(lines)
    if found is not None:
        final_line = found.text.splitlines()[0][:300]
        context = meaningful_lines(lines, end=found.index)
        for text in [found.text, *found.chained]:
            hit = _match(text)
            if hit is None:
                continue
            cid, m = hit
            if cid == "sd_scripts_message" and text is not found.text:
                continue  # an earlier message in the chain is detail, not the cause
            cause, fix = _fill(cid, m, python)
            evidence = next((ln for ln in text.splitlines() if m.group(0) in ln), text.splitlines()[0])
            return Diagnosis(cid, cause, fix, evidence.strip()[:300], context, final_line)
        asserted = _ASSERT.match(found.text)
        if asserted and _ARG_CHECK.search("\n".join(lines[max(0, found.index - 4) : found.index])):
            cause = f"sd-scripts stopped: {asserted.group(1).split(' / ')[0].strip()}"
            fix = _fill("sd_scripts_message", None, python)[1]
            return Diagnosis("sd_scripts_message", cause, fix, final_line, context, final_line)
        if found.text and _UNICODE.search(found.text) and _earlier(lines, found.index, _CAPTION_DETAIL):
            cause, fix = _fill("bad_caption", None, python)
            return Diagnosis("bad_caption", cause, fix, final_line, context, final_line)
        signal = _launcher_signal(found.launcher, exit_code, child_code)
        if signal == "host_killed":
            cause, fix = _fill(signal, None, python)
            return Diagnosis(signal, cause, fix, final_line, context, final_line)
        return Diagnosis(None, f"unknown failure: {final_line}", "", final_line, context, final_line)
    # No exception and no fatal line: the launcher's report and the exit status are all there is.
    launcher = [ln.strip() for ln in lines if _LAUNCHER_LINE.search(ln)]
    signal = _launcher_signal(launcher[-6:], exit_code, child_code)
    context = meaningful_lines(lines)
    if signal is not None:
        cause, fix = _fill(signal, None, python)
        evidence = next((ln for ln in reversed(launcher) if _match(ln)), f"exit status {exit_code}")
        return Diagnosis(signal, cause, fix, evidence[:300], context, evidence[:300])
    last_launch = next((ln for ln in reversed(launcher) if _LAUNCHER_FAILED.search(ln)), "")
    if exit_code is None and not last_launch:
        return None
    head = (context[-1].strip() if context else "") or last_launch or f"exit status {exit_code} and no output"
    final = last_launch or head
    return Diagnosis(None, f"unknown failure: {final[:300]}", "", final[:300], context, final[:300])


_UNICODE = re.compile(r"UnicodeDecodeError")
# sd-scripts' argument checks: an assertion raised in one of them is a message about the settings.
_ARG_CHECK = re.compile(
    r"in (?:assert_extra_args|verify_training_args|verify_command_line_training_args|prepare_dataset_args)\b"
)
_ASSERT = re.compile(r"(?:AssertionError|ValueError):\s*(\S.*)")
_CAPTION_DETAIL = re.compile(r"illegal char in file \(not UTF-8\)|caption")


def _earlier(lines: list[str], end: int, pattern: re.Pattern[str]) -> bool:
    return any(pattern.search(line) for line in lines[max(0, end - 60) : end])


# A run that exits 0 without training -------------------------------------------------------------------


def judge_clean_exit(
    log_text: str, steps_done: int, steps_total: int | None, model_expected: bool, model_saved: bool
) -> Diagnosis | None:
    """A run that ended with exit status 0 but did not train: sd-scripts' own reason when the log has one.

    `steps_done` is what the progress bar reached in this launch; `model_expected`/`model_saved` say whether
    a final model file was due and is there. None when the run really trained and saved.
    """
    lines = tail_lines(log_text)
    for i in range(len(lines) - 1, -1, -1):
        body, _ = _content(lines[i])
        if _SD_FATAL_ERROR.search(body):
            cause, fix = _fill("no_data", None, "python")
            reason = body.split(" / ")[0].strip()
            return Diagnosis(
                "no_data",
                f"{cause} (exit status 0): {reason}",
                fix,
                lines[i].strip()[:300],
                meaningful_lines(lines, end=i),
                body.strip()[:300],
            )
    if steps_done <= 0 and steps_total != 0:
        reason = _last_error(lines)
        cause = "the run ended with exit status 0 but trained no step"
        return Diagnosis(
            "no_steps",
            f"{cause}: {reason}" if reason else cause,
            "read the log's last lines for sd-scripts' reason; `loratrain check CONFIG` and `loratrain plan CONFIG` "
            "show the dataset and steps it would train",
            reason,
            meaningful_lines(lines),
            reason,
        )
    if model_expected and not model_saved:
        reason = _last_error(lines)
        cause = f"the run ended with exit status 0 after {steps_done} step(s) but saved no model"
        return Diagnosis(
            "no_model_saved",
            f"{cause}: {reason}" if reason else cause,
            "check that output_dir is writable and has space, and read the log's last lines",
            reason,
            meaningful_lines(lines),
            reason,
        )
    return None


def _last_error(lines: list[str]) -> str:
    """sd-scripts' last ERROR line, else the last exception line, else nothing."""
    for i in range(len(lines) - 1, -1, -1):
        body, level = _content(lines[i])
        if level == "ERROR" and not _HARMLESS.search(body):
            return body.strip()[:300]
        exc = _exception_at(lines, i)
        if exc is not None and not _LAUNCHER_EXC.search(exc) and not _HARMLESS.search(exc):
            return exc[:300]
    return ""
