"""The effective view: what sd-scripts 48d368f will really do with a validated config, derived once.

Every verb that needs a fact beyond "what the user wrote" reads it here: fit, plan, check (preflight and the
rules), run, slurm, doctor and report. A fact is derived in exactly one function below, and each cites the sd-scripts line it
follows (paths relative to the sd-scripts checkout, at commit 48d368f). Unset values are sd-scripts' own
defaults, read from its flag table (`sdscripts.flags.default`), never restated.

Build it with `Effective.from_config(cfg, visible_gpus)` or, where only sd-scripts arguments exist (fit's advice
search re-estimates variants), `Effective.from_args(args, accelerate, visible_gpus)`. `visible_gpus` is the
number of GPUs this machine's training processes will see (CUDA_VISIBLE_DEVICES applied): the caller counts
them (`launch.gpus.visible_count`), this module does no I/O. It matters only for `num_processes = "auto"`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Mapping

from loratrain.schema.accelerate import launch_default
from loratrain.sdscripts import flags
from loratrain.sdscripts.optimizers import effective_optimizer_type, resolve_optimizer

# SDXL's native training size; fit and preflight size a run without any resolution at it.
NATIVE_RESOLUTION = (1024, 1024)

# Caption options that change a caption from step to step; cached text-encoder outputs cannot follow them.
# library/train_util.py:1102 (BaseDataset.is_text_encoder_output_cacheable), asserted in
# sdxl_train_network.py:34-37. caption_dropout_rate, shuffle_caption, caption_tag_dropout_rate are enabled by
# any true value; token_warmup_step by a positive one.
TEXT_CACHE_FORBIDS = ("shuffle_caption", "caption_dropout_rate", "caption_tag_dropout_rate", "token_warmup_step")

# Tokens per text-encoder pass (CLIP's model_max_length 77 less BOS and EOS): library/train_util.py:5627-5632
# encodes max_token_length in chunks of this many.
TOKENS_PER_CHUNK = 75


def parse_resolution(value: Any) -> tuple[int, int] | None:
    """sd-scripts' reading of a resolution: "W,H" or "S" text (library/train_util.py:5409-5412,
    prepare_dataset_args), or an int / [W, H] in a dataset_config file (library/config_util.py's schema takes
    int or a sequence). None stays None. ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"resolution must be 'size' or 'width,height', got {value!r}")
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"resolution must be 'size' or 'width,height', got {value!r}")
        return int(value[0]), int(value[1])
    if isinstance(value, int):
        return value, value
    parts = [int(p) for p in str(value).split(",")]
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) != 2:
        raise ValueError(f"resolution must be 'size' or 'width,height', got {value!r}")
    return parts[0], parts[1]


@dataclass(frozen=True)
class Processes:
    """accelerate's process count: `total` over all machines (its --num_processes), `per_machine` started here.
    None where "auto" meets a machine whose GPUs could not be counted."""

    requested: int | str | None  # what the config says: a number, "auto" or unset
    machines: int
    per_machine: int | None
    total: int | None

    @property
    def auto(self) -> bool:
        return self.requested == "auto"

    def total_or_one(self) -> int:
        return self.total if self.total is not None else 1


def gpu_id_list(value: Any) -> list[int] | None:
    """accelerate's gpu_ids as a list of ints; None for "all" or unset."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text == "all":
        return None
    return [int(part) for part in text.split(",") if part.strip()]


def processes(accelerate: Mapping[str, Any], visible_gpus: int | None) -> Processes:
    """accelerate launch's arithmetic (accelerate/commands/launch.py, `_validate_launch_command`): unset is 1; a
    number is the total over all machines, each starting total // machines; "auto" is loratrain's word for one
    per usable GPU on each machine (the listed gpu_ids, else every visible GPU)."""
    requested = accelerate.get("num_processes")
    machines = int(accelerate.get("num_machines") or launch_default("num_machines"))
    if requested is None:
        one = int(launch_default("num_processes"))
        return Processes(None, machines, one, one)
    if requested == "auto":
        try:
            ids = gpu_id_list(accelerate.get("gpu_ids"))
        except ValueError:  # not a list of numbers: preflight says so; count the visible GPUs meanwhile
            ids = None
        local = len(ids) if ids is not None else visible_gpus
        return Processes("auto", machines, local, None if local is None else local * machines)
    total = int(requested)
    return Processes(total, machines, total // machines, total)


@dataclass(frozen=True)
class Buckets:
    """Aspect-ratio bucketing as sd-scripts reads it (library/train_util.py:747-770, BaseDataset.
    adjust_min_max_bucket_reso_by_steps; defaults from the flag table). plan/buckets.py does the arithmetic."""

    enabled: bool
    min_reso: int
    max_reso: int
    reso_steps: int
    no_upscale: bool


@dataclass(frozen=True)
class Precision:
    """The dtype each part of the model is held in."""

    mixed: str  # "no", "fp16" or "bf16" (train_network's --mixed_precision)
    full_16: bool  # full_fp16 / full_bf16: adapter, gradients and optimizer state in 16 bit
    unet: str  # fp32, fp16, bf16 or fp8
    text_encoders: str
    vae: str
    adapter: str  # fp32 or 16-bit
    activations: str  # autocast's dtype for activations: fp16/bf16, fp32 without mixed precision
    fp8: bool  # the U-Net in fp8 (fp8_base or fp8_base_unet)


def _dtype(mixed: str) -> str:
    # library/train_util.py:5507-5512 (prepare_dtype): fp16 -> float16, bf16 -> bfloat16, else float32.
    return mixed if mixed in ("fp16", "bf16") else "fp32"


def _precision(args: Mapping[str, Any]) -> Precision:
    mixed = str(args.get("mixed_precision") or flags.default("mixed_precision"))
    weight = _dtype(mixed)
    fp8_unet = bool(args.get("fp8_base") or args.get("fp8_base_unet"))
    # train_network.py:826-839: fp8_base puts the U-Net and the text encoders in fp8; fp8_base_unet only the U-Net.
    te = "fp8" if args.get("fp8_base") and not args.get("fp8_base_unet") else weight
    # train_network.py:599: the VAE in fp32 with no_half_vae, else the weight dtype.
    vae = "fp32" if args.get("no_half_vae") else weight
    # train_network.py:814-823: full_fp16 / full_bf16 cast the network itself to 16 bit.
    full_16 = bool(args.get("full_fp16") or args.get("full_bf16"))
    return Precision(
        mixed=mixed,
        full_16=full_16,
        unet="fp8" if fp8_unet else weight,
        text_encoders=te,
        vae=vae,
        adapter="16-bit" if full_16 else "fp32",
        activations=weight,
        fp8=fp8_unet,
    )


def _attention(args: Mapping[str, Any]) -> str:
    # library/train_util.py:3362-3372 (replace_unet_modules): mem_eff_attn, then xformers, then sdpa.
    for name in ("mem_eff_attn", "xformers", "sdpa"):
        if args.get(name):
            return name
    return "none"


def _cache_mode(args: Mapping[str, Any], memory: str, disk: str) -> str:
    # library/train_util.py:4424 (cache_latents_to_disk turns cache_latents on) and
    # library/sdxl_train_util.py:372 (the same for cache_text_encoder_outputs_to_disk).
    if args.get(disk):
        return "disk"
    return "memory" if args.get(memory) else "none"


def _int(args: Mapping[str, Any], dest: str) -> int:
    value = args.get(dest)
    return int(value if value is not None else flags.default(dest))


def _buckets(args: Mapping[str, Any]) -> Buckets:
    return Buckets(
        enabled=bool(args.get("enable_bucket")),
        min_reso=_int(args, "min_bucket_reso"),
        max_reso=_int(args, "max_bucket_reso"),
        reso_steps=_int(args, "bucket_reso_steps"),
        no_upscale=bool(args.get("bucket_no_upscale")),
    )


def _optimizer(args: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    # library/train_util.py:4825-4847 (get_optimizer): use_8bit_adam -> AdamW8bit, use_lion_optimizer -> Lion,
    # empty -> AdamW; the class and the distribution that provides it come from the optimizer table
    # (sdscripts/optimizers.py). A dotted path the table has not read is imported as written
    # (train_util.py:5126-5133): its class is the path, its distribution unknown here.
    name = effective_optimizer_type(
        args.get("optimizer_type"), bool(args.get("use_8bit_adam")), bool(args.get("use_lion_optimizer"))
    )
    try:
        target = resolve_optimizer(name)
    except KeyError:
        return name, None, None
    if target is None:
        return name, name, None
    return name, target.target, target.package


def _trackers(args: Mapping[str, Any]) -> tuple[str, ...]:
    # library/train_util.py:5443-5458 (prepare_accelerator): log_with unset logs to tensorboard when logging_dir
    # is set; "tensorboard" and "all" write tensorboard events into logging_dir (without one sd-scripts stops);
    # "wandb" and "all" import wandb.
    log_with = args.get("log_with")
    out = []
    if args.get("logging_dir") and log_with in (None, "tensorboard", "all"):
        out.append("tensorboard")
    if log_with in ("wandb", "all"):
        out.append("wandb")
    return tuple(out)


def _samples(args: Mapping[str, Any]) -> bool:
    # library/train_util.py:6378-6392 (sample_images_common): sample_at_first draws at step 0; otherwise a period
    # (sample_every_n_steps or _epochs) is needed; a prompt file is needed in every case.
    scheduled = args.get("sample_every_n_steps") or args.get("sample_every_n_epochs") or args.get("sample_at_first")
    return bool(args.get("sample_prompts") and scheduled)


@dataclass(frozen=True)
class Effective:
    """What sdxl_train_network.py and accelerate will do. Read-only; rebuild with `with_args` for a variant."""

    args: Mapping[str, Any]  # sd-scripts dest -> value for every set flag (read-only)
    accelerate: Mapping[str, Any]  # the [accelerate] table as written (read-only)
    visible_gpus: int | None
    optimizer_type: str  # the name get_optimizer ends up with
    optimizer_class: str | None  # the dotted class it constructs (None: a name sd-scripts cannot resolve)
    optimizer_package: str | None  # the distribution providing that class ("torch"; None: not in the table)
    processes: Processes
    resolution: tuple[int, int] | None  # None: unset (sd-scripts asserts for folder datasets)
    buckets: Buckets
    train_batch_size: int
    gradient_accumulation_steps: int
    unet_trained: bool
    text_encoders_trained: bool
    latents_cache: str  # "none", "memory" or "disk"
    text_encoder_outputs_cache: str  # "none", "memory" or "disk"
    precision: Precision
    attention: str  # the U-Net's attention: mem_eff_attn, xformers, sdpa or none
    xformers_loaded: bool  # xformers is imported (U-Net attention or the VAE's)
    dynamo_backend: str  # torch.compile's backend accelerate gets; "NO" without torch_compile
    trackers: tuple[str, ...]  # what accelerate logs to: tensorboard, wandb
    gradient_checkpointing: bool
    token_chunks: int  # 75-token chunks each caption is encoded in
    samples: bool  # sample images are drawn during training

    @classmethod
    def from_config(cls, cfg: Any, visible_gpus: int | None = None) -> "Effective":
        """The view of a validated TrainConfig."""
        return cls.from_args(cfg.script_args(), cfg.accelerate.model_dump(), visible_gpus)

    @classmethod
    def from_args(
        cls, args: Mapping[str, Any], accelerate: Mapping[str, Any] | None = None, visible_gpus: int | None = None
    ) -> "Effective":
        """The view of sd-scripts arguments (`TrainConfig.script_args()`: dest -> value, unset = absent)."""
        args = dict(args)
        accelerate = dict(accelerate or {})
        optimizer_type, optimizer_class, optimizer_package = _optimizer(args)
        max_tokens = args.get("max_token_length")
        return cls(
            args=MappingProxyType(args),
            accelerate=MappingProxyType(accelerate),
            visible_gpus=visible_gpus,
            optimizer_type=optimizer_type,
            optimizer_class=optimizer_class,
            optimizer_package=optimizer_package,
            processes=processes(accelerate, visible_gpus),
            resolution=parse_resolution(args.get("resolution")),
            buckets=_buckets(args),
            train_batch_size=_int(args, "train_batch_size"),
            gradient_accumulation_steps=_int(args, "gradient_accumulation_steps"),
            # train_network.py:221 (is_train_text_encoder): not network_train_unet_only; caching the encoders'
            # outputs while training them is an assert (sdxl_train_network.py:39-41), so cached means frozen.
            # network_train_text_encoder_only leaves the U-Net untrained (train_network.py:707).
            unet_trained=not args.get("network_train_text_encoder_only"),
            text_encoders_trained=not args.get("network_train_unet_only")
            and _cache_mode(args, "cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk") == "none",
            latents_cache=_cache_mode(args, "cache_latents", "cache_latents_to_disk"),
            text_encoder_outputs_cache=_cache_mode(
                args, "cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk"
            ),
            precision=_precision(args),
            attention=_attention(args),
            # sdxl_train_network.py:63-65: the VAE gets xformers attention whenever xformers is set, even where
            # mem_eff_attn wins the U-Net (library/train_util.py:3362-3370).
            xformers_loaded=bool(args.get("xformers")),
            # library/train_util.py:5467-5469: dynamo_backend only with torch_compile, else "NO".
            dynamo_backend=str(args.get("dynamo_backend") or flags.default("dynamo_backend"))
            if args.get("torch_compile")
            else "NO",
            trackers=_trackers(args),
            gradient_checkpointing=bool(args.get("gradient_checkpointing")),
            token_chunks=1 if not max_tokens else max(1, int(max_tokens) // TOKENS_PER_CHUNK),
            samples=_samples(args),
        )

    def with_args(self, changes: Mapping[str, Any]) -> "Effective":
        """The view of the same run with some sd-scripts arguments changed (a value of None unsets one)."""
        args = {**self.args, **changes}
        return Effective.from_args({k: v for k, v in args.items() if v is not None}, self.accelerate, self.visible_gpus)

    @property
    def resolution_or_native(self) -> tuple[int, int]:
        """The training resolution, SDXL's native 1024x1024 where none is set (for sizing only)."""
        return self.resolution or NATIVE_RESOLUTION

    @property
    def effective_batch(self) -> int:
        """Samples per optimizer step over all processes (1 process where "auto" could not be counted)."""
        return self.train_batch_size * self.gradient_accumulation_steps * self.processes.total_or_one()

    def text_cache_clashes(self) -> list[str]:
        """The caption options set here that cached text-encoder outputs cannot follow (TEXT_CACHE_FORBIDS)."""
        return [k for k in TEXT_CACHE_FORBIDS if self.args.get(k)]

    def facts(self) -> dict[str, Any]:
        """The derived facts as plain JSON data (what `fit --json` and `plan --json` print under "effective")."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name in ("args", "accelerate", "visible_gpus"):
                continue
            value = getattr(self, name)
            out[name] = asdict(value) if hasattr(value, "__dataclass_fields__") else value
        out["resolution"] = list(self.resolution) if self.resolution else None
        out["trackers"] = list(self.trackers)
        return out
