"""Checks run before a launch: everything that would make sd-scripts fail late, or lose a user's file.

Each check reads the resolved sd-scripts arguments (`TrainConfig.script_args()`: dest -> value, only
what the user set) and the accelerate settings, and returns `Problem`s: errors stop the launch,
warnings are shown. They touch the filesystem, the GPUs and the training interpreter (through
subprocesses), never loratrain's own imports of torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from loratrain import safetensors_header
from loratrain.effective import Effective, gpu_id_list
from loratrain.errors import ConfigError, Problem, Severity
from loratrain.launch import gpus as gpu_mod
from loratrain.launch.gpus import local_process_count
from loratrain.schema.accelerate import launch_default
from loratrain.sdscripts import flags

TOKENIZER_FOLDERS = ("openai_clip-vit-large-patch14", "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class PreflightInput:
    args: Mapping[str, Any]  # sd-scripts dest -> value, only those the user set
    accelerate: Mapping[str, Any] = field(default_factory=dict)
    python: str = "python3"
    sd_scripts: Path | None = None
    force: bool = False
    replaces: frozenset[Path] = frozenset()  # a resumed run's own earlier outputs: replacing them is expected
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=Path.cwd)  # relative paths are resolved as sd-scripts will: from here
    config_file: str = ""
    gpu_scanner: Callable[[], gpu_mod.GpuScan] | None = None
    _gpu_scan: gpu_mod.GpuScan | None = None
    _doctor: Any = None
    dataset_folders: dict[str, int] | None = None  # image folder -> readable images, filled by check_dataset

    def path(self, value: Any) -> Path:
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else self.cwd / p

    def gpu_scan(self) -> gpu_mod.GpuScan:
        if self._gpu_scan is None:
            scanner = self.gpu_scanner or (lambda: gpu_mod.scan(self.python, self.env))
            self._gpu_scan = scanner()
        return self._gpu_scan

    def view(self, count_gpus: bool = True) -> Effective:
        """The effective view of these arguments; with `count_gpus`, "auto" processes counted from the GPU scan."""
        return Effective.from_args(self.args, self.accelerate, self.gpu_scan().count if count_gpus else None)

    def start_doctor(self) -> None:
        """Start `loratrain doctor`'s probe of the training interpreter; it runs while the files are checked."""
        from loratrain.launch import doctor

        if self._doctor is None:
            self._doctor = doctor.start(self._doctor_input())

    def doctor(self):
        """`loratrain doctor`'s report on the training interpreter for these arguments (one probe run)."""
        from loratrain.launch import doctor

        if not isinstance(self._doctor, doctor.Report):
            self._doctor = doctor.diagnose(self._doctor_input(), self._doctor)
        return self._doctor

    def doctor_answer(self) -> dict[str, Any] | None:
        """The doctor probe's raw answer (interpreter, package versions) once preflight judged it, else None."""
        from loratrain.launch import doctor

        return self._doctor.probe if isinstance(self._doctor, doctor.Report) else None

    def _doctor_input(self):
        from loratrain.launch import doctor

        scan = self.gpu_scan()
        return doctor.DoctorInput(
            args=self.args,
            python=self.python,
            sd_scripts=self.sd_scripts,
            env=self.env,
            config_file=self.config_file,
            gpus_listed=scan.count if scan.source == "nvidia-smi" else None,
            view=self.view(),
        )

    def problem(
        self, message: str, key: str = "", fix: str = "", value: Any = None, severity: Severity = "error"
    ) -> Problem:
        return Problem(message=message, key=key, file=self.config_file, fix=fix, value=value, severity=severity)


# ---------------------------------------------------------------- model


def check_model(inp: PreflightInput) -> list[Problem]:
    key = "pretrained_model_name_or_path"
    value = inp.args.get(key)
    if not value:
        return [
            inp.problem(
                "no base model given",
                key,
                "set pretrained_model_name_or_path to an SDXL .safetensors file or diffusers folder",
            )
        ]
    path = inp.path(value)
    problems = []
    if not path.exists():
        text = str(value)
        if _REPO_ID.match(text) and not text.endswith((".safetensors", ".ckpt")) and not text.startswith("."):
            return [
                inp.problem(
                    f"{text} is not a local path; sd-scripts will try to download it as a Hugging Face repo",
                    key,
                    "download the model once and point at the file for offline runs",
                    value,
                    "warning",
                )
            ]
        return [
            inp.problem(
                f"model {path} does not exist",
                key,
                "check the path (relative paths start from the folder you run loratrain in)",
                str(value),
            )
        ]
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            return [
                inp.problem(
                    f"model folder {path} has no model_index.json; it is not a diffusers model",
                    key,
                    "point at a .safetensors checkpoint or a diffusers SDXL folder",
                    str(value),
                )
            ]
        try:
            pipeline = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
        except (OSError, ValueError):
            pipeline = ""
        if pipeline and "XL" not in pipeline:
            problems.append(
                inp.problem(
                    f"diffusers model {path} is a {pipeline}, not an SDXL pipeline",
                    key,
                    "sdxl_train_network.py needs an SDXL base model",
                    str(value),
                )
            )
        return problems
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            family = safetensors_header.model_family(
                safetensors_header.tensor_names(safetensors_header.read_header(path))
            )
        except (safetensors_header.HeaderError, OSError) as exc:
            return [
                inp.problem(
                    f"{path} is not a readable safetensors file: {exc}", key, "re-download the model", str(value)
                )
            ]
        names = {"sd1": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x", "lora": "LoRA/LyCORIS adapter"}
        if family in names:
            problems.append(
                inp.problem(
                    f"{path} is a {names[family]} file, not an SDXL checkpoint",
                    key,
                    "sdxl_train_network.py trains on SDXL base models; pick an SDXL checkpoint",
                    str(value),
                )
            )
    elif suffix != ".ckpt":
        problems.append(
            inp.problem(
                f"model {path} is neither .safetensors nor .ckpt",
                key,
                "use a .safetensors/.ckpt checkpoint or a diffusers folder",
                str(value),
            )
        )
    return problems


def check_vae(inp: PreflightInput) -> list[Problem]:
    value = inp.args.get("vae")
    if value and not inp.path(value).exists() and not _REPO_ID.match(str(value)):
        return [inp.problem(f"VAE {inp.path(value)} does not exist", "vae", "check the path or remove vae", str(value))]
    return []


# ---------------------------------------------------------------- dataset and sample prompts

# Paths sd-scripts reads relative to the folder it is started in.
_PATH_ARGS = ("train_data_dir", "reg_data_dir", "dataset_config", "in_json", "sample_prompts")


def _plan_args(inp: PreflightInput) -> dict[str, Any]:
    args = dict(inp.args)
    for key in _PATH_ARGS:
        if args.get(key):
            args[key] = str(inp.path(args[key]))
    return args


def check_dataset(inp: PreflightInput) -> list[Problem]:
    """The dataset and sample-prompt findings of `loratrain plan` (one scanner for both commands).

    It reads the folders or dataset_config as sd-scripts does: repeat-count folders, images, captions
    (empty or non-UTF-8 files stop sd-scripts), dataset_config keys and types, buckets, prompt files,
    and an empty dataset (sd-scripts would log "No data found" and exit 0 without training).
    """
    from loratrain.plan.planner import build_plan

    processes = inp.view().processes.total_or_one()  # for the prompts-per-GPU advice
    report = build_plan(_plan_args(inp), num_processes=processes, config_file=inp.config_file)
    inp.dataset_folders = {entry["dir"]: entry["readable_images"] for entry in report.data.get("datasets", [])}
    problems = []
    for p in report.problems:
        if p.message.startswith("token counts unavailable"):
            continue  # check_tokenizers says what is missing and what it costs
        problems.append(p if p.file else dataclasses.replace(p, file=inp.config_file))
    return problems


# ---------------------------------------------------------------- outputs, prompts, logs


def _writable_target(path: Path) -> tuple[bool, str]:
    """Whether `path` is (or can be created as) a writable folder, and why not."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False, "no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return False, f"{probe} is a file"
    if not os.access(probe, os.W_OK | os.X_OK):
        return False, f"{probe} is not writable"
    return True, ""


def output_file(inp: PreflightInput) -> Path | None:
    if not inp.args.get("output_dir"):
        return None
    name = inp.args.get("output_name") or flags.LAST_OUTPUT_NAME
    ext = inp.args.get("save_model_as") or flags.default("save_model_as")
    return inp.path(inp.args["output_dir"]) / f"{name}.{ext}"


def would_overwrite(target: Path | None, force: bool, replaces: frozenset[Path] = frozenset()) -> bool:
    """The overwrite guard: an existing output file that neither --force nor a resume of its own run may replace."""
    try:
        exists = target is not None and target.exists()
    except OSError:  # a name the file system cannot hold: sd-scripts could not save there either
        return False
    return exists and not force and target is not None and target.resolve() not in replaces


def check_output(inp: PreflightInput) -> list[Problem]:
    value = inp.args.get("output_dir")
    if not value:
        return [
            inp.problem("no output_dir given; sd-scripts needs one to save the LoRA", "output_dir", "set output_dir")
        ]
    ok, why = _writable_target(inp.path(value))
    if not ok:
        return [
            inp.problem(
                f"output_dir {inp.path(value)} cannot be written: {why}",
                "output_dir",
                "pick a folder you can write to",
                str(value),
            )
        ]
    target = output_file(inp)
    if would_overwrite(target, inp.force, inp.replaces):
        return [
            inp.problem(
                f"{target} already exists and the run would overwrite it",
                "output_name",
                "change output_name, move the file away, or pass --force to overwrite it",
                str(target),
            )
        ]
    return []


def check_logging_dir(inp: PreflightInput) -> list[Problem]:
    value = inp.args.get("logging_dir")
    if not value:
        return []
    ok, why = _writable_target(inp.path(value))
    if not ok:
        return [
            inp.problem(
                f"logging_dir {inp.path(value)} cannot be written: {why}",
                "logging_dir",
                "pick a folder you can write to",
                str(value),
            )
        ]
    return []


def check_tokenizers(inp: PreflightInput) -> list[Problem]:
    value = inp.args.get("tokenizer_cache_dir")
    offline = inp.env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    severity: Severity = "error" if offline else "warning"
    if not value:
        return [
            inp.problem(
                "no tokenizer_cache_dir: the first run downloads the two SDXL tokenizers from the Hugging Face Hub"
                + (" but HF_HUB_OFFLINE is set, so it will fail" if offline else ""),
                "tokenizer_cache_dir",
                "set tokenizer_cache_dir to a folder; it is filled on the first online run",
                severity=severity,
            )
        ]
    folder = inp.path(value)
    missing = [name for name in TOKENIZER_FOLDERS if not (folder / name).is_dir()]
    if missing:
        return [
            inp.problem(
                f"tokenizer_cache_dir {folder} lacks {', '.join(missing)}: the first run downloads them"
                + (" but HF_HUB_OFFLINE is set, so it will fail" if offline else ""),
                "tokenizer_cache_dir",
                "run once with network access to fill it",
                str(value),
                severity,
            )
        ]
    return []


# ---------------------------------------------------------------- training environment


def check_training_env(inp: PreflightInput) -> list[Problem]:
    """What `loratrain doctor` finds: the training interpreter's torch, accelerate, network module, optimizer
    package, xformers/triton/loggers as this config uses them, sd-scripts' pins, and a matmul on each GPU."""
    return inp.doctor().problems


def check_network_module(inp: PreflightInput) -> list[Problem]:
    if inp.args.get("network_module"):
        return []  # whether the interpreter finds it is check_training_env's
    return [
        inp.problem(
            "no network_module given", "network_module", 'set network_module = "networks.lora" or "lycoris.kohya"'
        )
    ]


def uses_bf16(inp: PreflightInput) -> bool:
    """Whether training computes in bf16: the view's precision. Only the script's own values count: sd-scripts
    passes its --mixed_precision (default "no") to Accelerator, which overrides accelerate launch's setting."""
    return inp.view(count_gpus=False).precision.activations == "bf16"


def check_gpus(inp: PreflightInput) -> list[Problem]:
    acc = inp.accelerate
    scan = inp.gpu_scan()
    problems: list[Problem] = []
    machines = acc.get("num_machines") or launch_default("num_machines")
    value = acc.get("num_processes")
    ids = None
    try:
        ids = gpu_id_list(acc.get("gpu_ids"))
    except ValueError:
        return [
            inp.problem(
                f"gpu_ids {acc.get('gpu_ids')!r} is not a comma-separated list of GPU numbers",
                "accelerate.gpu_ids",
                'write e.g. "0,1" or "all"',
            )
        ]
    if machines > 1 and isinstance(value, int) and value % machines:
        problems.append(
            inp.problem(
                f"num_processes {value} (the total over all machines) does not divide by num_machines {machines}",
                "accelerate.num_processes",
                "use the same number of processes on every machine",
            )
        )
    if machines > 1 and not acc.get("main_process_ip"):
        problems.append(
            inp.problem(
                "a multi-machine run needs main_process_ip (the address of the machine with rank 0)",
                "accelerate.main_process_ip",
                "set accelerate.main_process_ip, or use `loratrain slurm` which fills it in",
            )
        )
    if scan.gpus is None:
        if (isinstance(value, int) and value > 1) or ids or value == "auto" or uses_bf16(inp):
            problems.append(
                inp.problem(
                    f"could not count the GPUs ({scan.note}); the GPU settings are not checked",
                    "accelerate",
                    severity="warning",
                )
            )
        return problems
    count = len(scan.gpus)
    if count == 0:
        problems.append(
            inp.problem(
                "no CUDA GPU is visible; training would run on the CPU",
                "accelerate",
                "check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES",
                severity="warning",
            )
        )
    if ids is not None:
        bad = [i for i in ids if i >= count]
        if bad:
            problems.append(
                inp.problem(
                    f"gpu_ids {acc.get('gpu_ids')} names GPU {', '.join(map(str, bad))}, but this machine shows {count} GPU(s) (0..{count - 1})"
                    if count
                    else f"gpu_ids {acc.get('gpu_ids')} names GPUs, but none is visible",
                    "accelerate.gpu_ids",
                    "list only GPUs that exist (nvidia-smi -L)",
                    acc.get("gpu_ids"),
                )
            )
    local = local_process_count(acc, scan)
    available = len(ids) if ids is not None else count
    # One process without any GPU is a CPU run (warned about above); more is never right.
    if local is not None and local > available and not (count == 0 and local == 1):
        where = f"gpu_ids {acc.get('gpu_ids')}" if ids is not None else f"{count} visible GPU(s)"
        problems.append(
            inp.problem(
                f"{local} training process(es) per machine but only {where}; accelerate would start more processes than GPUs",
                "accelerate.num_processes",
                f"set num_processes to at most {available}" + (" per machine" if machines > 1 else "") + ' or "auto"',
                value,
            )
        )
    if uses_bf16(inp) and count:
        chosen = [g for g in scan.gpus if ids is None or g.index in ids]
        chosen = chosen[: local or len(chosen)] if ids is None else chosen
        old = [g for g in chosen if g.bf16 is False]
        if old:
            names = ", ".join(f"{g.index}: {g.name} (compute {g.compute_cap})" for g in old)
            problems.append(
                inp.problem(
                    f"bf16 needs a GPU of compute capability 8.0 or newer; GPU {names} is older",
                    "mixed_precision",
                    'use mixed_precision = "fp16" on this GPU',
                    "bf16",
                )
            )
    return problems


# ---------------------------------------------------------------- disk


def cache_estimate(inp: PreflightInput, images: int) -> int:
    """Bytes the disk caches will take: float32 SDXL latents (4 x H/8 x W/8), text-encoder outputs."""
    per_image = 0
    if inp.args.get("cache_latents_to_disk"):
        width, height = inp.view(count_gpus=False).resolution_or_native
        latent = 4 * (width * height // 64) * 4
        per_image += latent * (2 if inp.args.get("flip_aug") else 1) + 4096  # + npz overhead, size keys
    if inp.args.get("cache_text_encoder_outputs_to_disk"):
        per_image += (77 * 768 + 77 * 1280 + 1280) * 4 + 4096
    return per_image * images


def check_disk(inp: PreflightInput) -> list[Problem]:
    if not (inp.args.get("cache_latents_to_disk") or inp.args.get("cache_text_encoder_outputs_to_disk")):
        return []
    if inp.dataset_folders is None:
        check_dataset(inp)
    problems = []
    # The caches are written next to the images.
    for folder, n in (inp.dataset_folders or {}).items():
        if not n or not os.path.isdir(folder):
            continue
        need = cache_estimate(inp, n)
        free = shutil.disk_usage(folder).free
        if free < need:
            problems.append(
                inp.problem(
                    f"the disk caches for {folder} need about {_size(need)} but only {_size(free)} is free there",
                    "cache_latents_to_disk",
                    "free some space, or cache in memory (cache_latents without _to_disk)",
                    severity="warning",
                )
            )
        if not os.access(folder, os.W_OK):
            problems.append(
                inp.problem(
                    f"{folder} is not writable, but the disk caches are written next to the images",
                    "cache_latents_to_disk",
                    "make the image folders writable or cache in memory",
                )
            )
    return problems


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


CHECKS: list[Callable[[PreflightInput], list[Problem]]] = [
    check_model,
    check_vae,
    check_dataset,
    check_output,
    check_logging_dir,
    check_tokenizers,
    check_training_env,
    check_network_module,
    check_gpus,
    check_disk,
]


def run_preflight(inp: PreflightInput) -> list[Problem]:
    """Every check's problems, errors and warnings together, in the order a user fixes them."""
    problems: list[Problem] = []
    if check_training_env in CHECKS:
        inp.start_doctor()  # the slowest check runs in another process while the others read files
    for check in CHECKS:
        try:
            found = check(inp)
        except ConfigError as exc:  # e.g. an interpreter that cannot run: report it and go on with the rest
            found = exc.problems
        problems += [p for p in found if p not in problems]
    return problems


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity != "warning"]
