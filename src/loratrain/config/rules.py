"""Rules that span several keys: sd-scripts' runtime checks and the guide's advice, checked up front.

Each rule reads a validated TrainConfig and yields Problems; errors are what sd-scripts would reject (or
silently get wrong), warnings are legal but probably not what the user meant. Rules never change the config.
"""

from __future__ import annotations

from typing import Iterator

from loratrain.config.rule_kit import collect, error, warning
from loratrain.effective import Effective
from loratrain.errors import Problem
from loratrain.plan.buckets import resolution_bucket_problem, rounded_min_max
from loratrain.schema.accelerate import launch_default
from loratrain.schema.choices import LORA_MODULE, LYCORIS_MODULE
from loratrain.schema.network_args import LoraArgs, LycorisArgs, OtherArgs
from loratrain.schema.root import TrainConfig
from loratrain.sdscripts import flags

RULES, rule = collect()


@rule
def required_keys(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    if not cfg.model.pretrained_model_name_or_path:
        yield error(
            "model.pretrained_model_name_or_path",
            "no base model is set",
            "give the SDXL checkpoint file or diffusers folder",
        )
    if not cfg.network.network_module:
        yield error("network.network_module", "no network module is set", 'use "networks.lora" or "lycoris.kohya"')
    module = cfg.network.network_module
    if module and module.startswith("lycoris") and module != LYCORIS_MODULE:
        yield error(
            "network.network_module",
            f"{module!r} is not LyCORIS' network module for sd-scripts",
            f"did you mean {LYCORIS_MODULE!r}?",
        )
    name = cfg.saving.output_name or ""
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in name.split("/")), default=0)
    if longest + len(".safetensors") > 255:
        yield error(
            "saving.output_name",
            f"{longest} bytes is too long for a file name (255 at most with the "
            "extension): sd-scripts would train and then fail to save",
            "use a shorter output_name",
        )
    if not cfg.saving.output_dir:
        yield error("saving.output_dir", "no output folder is set", "sd-scripts needs it to save anything")
    d = cfg.dataset
    if not (d.train_data_dir or d.dataset_config or cfg.extra.in_json):
        yield error(
            "dataset.train_data_dir",
            "no training data is set",
            "set dataset.train_data_dir (folders named N_name) or dataset.dataset_config",
        )
    if d.train_data_dir and not d.dataset_config and not d.resolution:
        yield error(
            "dataset.resolution",
            "no resolution is set; sd-scripts requires one for folder datasets",
            'set resolution = "1024,1024" for SDXL',
        )


@rule
def sdxl_only(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    if cfg.extra.v2:
        yield error("extra.v2", "v2 is for Stable Diffusion 2.x; sdxl_train_network.py refuses it", "remove it")
    if cfg.extra.clip_skip is not None:
        yield warning(
            "extra.clip_skip", "SDXL training ignores clip_skip (sd-scripts warns and carries on)", "remove it"
        )


@rule
def text_encoder_cache(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    if view.text_encoder_outputs_cache == "none":
        return
    key = (
        "dataset.cache_text_encoder_outputs"
        if cfg.dataset.cache_text_encoder_outputs
        else "dataset.cache_text_encoder_outputs_to_disk"
    )
    clashes = view.text_cache_clashes()
    for other in clashes:
        yield error(
            key,
            f"cached text-encoder outputs cannot follow captions that change each step ({other})",
            f"remove either {key.split('.')[1]} or dataset.{other}",
        )
    if not cfg.network.network_train_unet_only:
        yield error(
            key,
            "cached text-encoder outputs need network.network_train_unet_only = true",
            "set network.network_train_unet_only = true, or stop caching text-encoder outputs",
        )


@rule
def latent_cache(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    d = cfg.dataset
    if view.latents_cache == "none":
        return
    key = "dataset.cache_latents" if d.cache_latents else "dataset.cache_latents_to_disk"
    for aug in ("color_aug", "random_crop"):
        if getattr(d, aug):
            yield error(
                key,
                f"cached latents cannot be combined with dataset.{aug} (it changes pixels each epoch)",
                f"remove dataset.{aug} or stop caching latents",
            )


@rule
def buckets(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    b = cfg.buckets
    steps = view.buckets.reso_steps
    if b.enable_bucket and steps % 32:
        yield error("buckets.bucket_reso_steps", f"SDXL needs a multiple of 32, got {steps}", "use 32 or 64")
    if not b.enable_bucket:
        for name in ("min_bucket_reso", "max_bucket_reso", "bucket_reso_steps", "bucket_no_upscale"):
            if getattr(b, name) not in (None, False):
                yield warning(
                    f"buckets.{name}",
                    "has no effect without buckets.enable_bucket",
                    "set enable_bucket = true or remove it",
                )
        return
    if b.bucket_no_upscale:
        for name in ("min_bucket_reso", "max_bucket_reso"):
            if getattr(b, name) is not None:
                yield warning(
                    f"buckets.{name}",
                    "does not shape the buckets when bucket_no_upscale is set (image "
                    "sizes do); sd-scripts still requires the resolution to lie within it",
                )
    lo, hi = view.buckets.min_reso, view.buckets.max_reso
    lo_r, hi_r = rounded_min_max(lo, hi, steps)
    if lo_r > hi_r:
        yield error("buckets.min_bucket_reso", f"min_bucket_reso {lo} is above max_bucket_reso {hi}")
    if view.resolution:
        w, h = view.resolution
        why = resolution_bucket_problem(w, h, True, bool(b.bucket_no_upscale), lo, hi, steps)
        if why:
            yield error(
                "dataset.resolution",
                f"{w}x{h}: {why}",
                "keep the resolution between buckets.min_bucket_reso and buckets.max_bucket_reso",
            )


# schedulers sd-scripts' get_scheduler_fix hands lr_scheduler_num_cycles to (the last two as cycles / 2)
CYCLE_SCHEDULERS = ("cosine_with_restarts", "cosine_with_min_lr", "warmup_stable_decay")


@rule
def schedule(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    o = cfg.optimizer
    scheduler = o.lr_scheduler or flags.default("lr_scheduler")
    optimizer = view.optimizer_type.lower()
    if scheduler == "adafactor" and not optimizer.endswith("adafactor"):
        yield error(
            "optimizer.lr_scheduler",
            "the adafactor scheduler only works with the Adafactor optimizer",
            'set optimizer_type = "Adafactor" or pick another scheduler',
        )
    if scheduler == "constant" and o.lr_warmup_steps:
        yield error(
            "optimizer.lr_warmup_steps",
            "the constant scheduler takes no warm-up; sd-scripts stops with an error",
            'use lr_scheduler = "constant_with_warmup" or remove the warm-up',
        )
    custom = getattr(cfg.extra, "lr_scheduler_type", None)
    if o.lr_warmup_steps and (custom or scheduler == "adafactor"):
        what = f"lr_scheduler_type {custom}" if custom else "the adafactor scheduler"
        yield error(
            "optimizer.lr_warmup_steps",
            f"{what} takes no warm-up; sd-scripts stops with an error",
            "remove the warm-up",
        )
    if o.lr_scheduler_num_cycles is not None and scheduler not in CYCLE_SCHEDULERS:
        yield warning(
            "optimizer.lr_scheduler_num_cycles", f"only {', '.join(CYCLE_SCHEDULERS)} read it; {scheduler} ignores it"
        )
    if o.lr_scheduler_power is not None and scheduler != "polynomial":
        yield warning("optimizer.lr_scheduler_power", f"only the polynomial scheduler reads it; {scheduler} ignores it")
    if optimizer.startswith(("dadapt", "prodigy")):
        for name in ("learning_rate", "unet_lr"):
            lr = getattr(o, name)
            if lr is not None and lr <= 0.1:
                yield warning(
                    f"optimizer.{name}",
                    f"{o.optimizer_type} adapts the step size itself and expects a learning rate near 1.0, got {lr}",
                )
    if (cfg.extra.use_8bit_adam or cfg.extra.use_lion_optimizer) and o.optimizer_type:
        yield error(
            "optimizer.optimizer_type",
            "cannot be combined with extra.use_8bit_adam / use_lion_optimizer",
            "keep optimizer_type and remove the old switches",
        )
    if cfg.extra.fused_backward_pass:
        if optimizer != "adafactor":
            yield error(
                "extra.fused_backward_pass",
                "needs the Adafactor optimizer",
                'set optimizer_type = "Adafactor" or remove fused_backward_pass',
            )
        if view.gradient_accumulation_steps != 1:
            yield error("extra.fused_backward_pass", "cannot be used with gradient accumulation")
    if cfg.network.network_train_unet_only and o.text_encoder_lr is not None:
        yield warning("optimizer.text_encoder_lr", "is ignored: network_train_unet_only trains no text encoder")


@rule
def precision(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    p = cfg.precision
    mp = view.precision.mixed
    if p.full_fp16 and mp != "fp16":
        yield error("precision.full_fp16", f'needs mixed_precision = "fp16", got "{mp}"')
    if p.full_bf16 and mp != "bf16":
        yield error("precision.full_bf16", f'needs mixed_precision = "bf16", got "{mp}"')
    if p.full_fp16 and p.full_bf16:
        yield error("precision.full_bf16", "full_fp16 and full_bf16 exclude each other")
    if p.fp8_base and mp == "no":
        yield error("precision.fp8_base", "needs mixed precision (fp16 or bf16)")
    acc = cfg.accelerate.mixed_precision
    if acc is not None and acc != mp:
        yield warning(
            "accelerate.mixed_precision",
            f'is "{acc}" but training runs at precision.mixed_precision '
            f'"{mp}": sd-scripts passes its own value to accelerate',
            f'set precision.mixed_precision = "{acc}" and remove accelerate.mixed_precision'
            if acc in flags.choices("mixed_precision")
            else "remove accelerate.mixed_precision",
        )


@rule
def logging(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    lg = cfg.logging
    if lg.log_with in ("tensorboard", "all") and not lg.logging_dir:
        yield error(
            "logging.log_with",
            f"{lg.log_with} logging needs logging.logging_dir",
            'set logging_dir, e.g. "/output_dir/logs"',
        )
    if lg.log_prefix and not lg.logging_dir:
        yield warning("logging.log_prefix", "does nothing without logging.logging_dir", "set logging_dir or remove it")
    if lg.wandb_api_key:
        yield warning(
            "logging.wandb_api_key",
            "a secret in the config file; loratrain passes it through the "
            "environment, but the file itself may be shared",
            "export WANDB_API_KEY instead",
        )


@rule
def noise(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    n = cfg.noise
    if n.multires_noise_discount is not None and n.multires_noise_iterations is None:
        yield warning(
            "noise.multires_noise_discount",
            "has no effect without noise.multires_noise_iterations",
            "set multires_noise_iterations (6-10) or remove it",
        )
    if n.adaptive_noise_scale is not None and n.noise_offset is None:
        yield error("noise.adaptive_noise_scale", "requires noise.noise_offset")


@rule
def run_length(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    t = cfg.training
    if t.max_train_epochs is not None and t.max_train_steps is not None:
        yield warning(
            "training.max_train_steps",
            f"is ignored: max_train_epochs ({t.max_train_epochs}) takes precedence",
            "remove one of them",
        )


@rule
def sampling(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    s = cfg.sampling
    if s.sample_every_n_epochs is not None and s.sample_every_n_steps is not None:
        yield warning(
            "sampling.sample_every_n_steps", "is ignored: sample_every_n_epochs takes precedence", "remove one of them"
        )
    if (s.sample_every_n_epochs or s.sample_every_n_steps or s.sample_at_first) and not s.sample_prompts:
        yield error(
            "sampling.sample_prompts",
            "sampling is scheduled but no prompt file is set; sd-scripts crashes at the first sample",
            "set sample_prompts or remove the sampling period",
        )
    if s.sample_prompts and not (s.sample_every_n_epochs or s.sample_every_n_steps or s.sample_at_first):
        yield warning(
            "sampling.sample_prompts",
            "a prompt file is set but no sampling period; no images are drawn",
            "set sample_every_n_steps or sample_every_n_epochs",
        )


@rule
def attention(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    t = cfg.training
    chosen = [name for name in ("mem_eff_attn", "xformers", "sdpa") if getattr(t, name)]
    if len(chosen) > 1:
        yield warning(
            f"training.{chosen[1]}",
            f"several attention options are set ({', '.join(chosen)}); sd-scripts uses {view.attention}",
            "keep only one",
        )


@rule
def dataset_mode(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    d = cfg.dataset
    if d.dataset_config and (d.train_data_dir or d.reg_data_dir):
        yield warning("dataset.train_data_dir", "is ignored because dataset_config is set")
    if d.dataset_repeats is not None:
        if d.dataset_config:
            if d.dataset_repeats == 0:
                yield warning(
                    "dataset.dataset_repeats",
                    "0 makes sd-scripts skip every subset that sets no num_repeats",
                    "remove it or set num_repeats in the dataset config",
                )
        elif not cfg.extra.in_json:
            yield warning(
                "dataset.dataset_repeats",
                "has no effect in folder mode: repeats come from the N_ prefix of each folder name",
                "remove it",
            )
    if d.keep_tokens and not (d.shuffle_caption or d.caption_tag_dropout_rate):
        yield warning("dataset.keep_tokens", "only matters with shuffle_caption or caption tag dropout")


@rule
def network(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    n = cfg.network
    if n.network_train_unet_only and n.network_train_text_encoder_only:
        yield error("network.network_train_text_encoder_only", "cannot be combined with network_train_unet_only")
    args = n.network_args
    if isinstance(args, LycorisArgs):
        yield from _lycoris(cfg, args)
    elif isinstance(args, LoraArgs):
        if args.conv_alpha is not None and args.conv_dim is None and args.conv_block_dims is None:
            yield warning("network.network_args.conv_alpha", "has no effect without conv_dim")
        if args.block_alphas is not None and args.block_dims is None:
            yield warning("network.network_args.block_alphas", "networks.lora ignores it without block_dims")
    elif isinstance(args, OtherArgs) and n.network_module and n.network_module not in (LYCORIS_MODULE, LORA_MODULE):
        yield warning("network.network_args", f"keys for {n.network_module!r} are passed on unchecked")


LYCORIS_TUCKER = {"lora", "locon", "loha", "lokr"}
LYCORIS_LORAPLUS = {"lora", "locon"}


def _lycoris(cfg: TrainConfig, a: LycorisArgs) -> Iterator[Problem]:
    key = "network.network_args"
    algo = a.algo or "lora"
    for name in ("block_dims", "block_alphas", "rank_dropout_scale", "use_reentrant"):
        if getattr(a, name) is not None:
            yield warning(
                f"{key}.{name}",
                "LyCORIS never reads this key, so it does nothing (it still lands in the file's metadata)",
                'remove it; per-block ranks need network_module = "networks.lora"',
            )
    if a.use_tucker and algo not in LYCORIS_TUCKER:
        yield warning(
            f"{key}.use_tucker",
            f"algo {algo} has no Tucker decomposition; LyCORIS ignores it",
            "use it with lora/locon, loha or lokr, or remove it",
        )
    if a.train_norm and algo == "ia3":
        yield warning(f"{key}.train_norm", "LyCORIS documents train_norm as unsupported with ia3")
    if a.preset == "ia3":
        yield error(
            f"{key}.preset",
            "preset ia3 matches no SDXL layer in LyCORIS 4.1.3: nothing would be trained",
            'use algo = "ia3" with preset = "full"',
        )
    if algo == "dylora":
        block = a.block_size or 4
        dim = cfg.network.network_dim
        if dim is not None and dim % block:
            yield error(
                "network.network_dim", f"dylora needs network_dim to be a multiple of block_size ({block}), got {dim}"
            )
        if a.conv_dim and a.conv_dim % block:
            yield error(
                f"{key}.conv_dim", f"dylora needs conv_dim to be a multiple of block_size ({block}), got {a.conv_dim}"
            )
    elif a.block_size is not None:
        yield warning(f"{key}.block_size", f"only dylora reads it; {algo} ignores it")
    if algo == "full" and a.bypass_mode:
        yield error(f"{key}.bypass_mode", "algo full does not support bypass mode (LyCORIS raises an error)")
    if algo != "lokr":
        for name in ("factor", "decompose_both", "full_matrix", "unbalanced_factorization"):
            if getattr(a, name) not in (None, False):
                yield warning(f"{key}.{name}", f"only lokr reads it; {algo} ignores it")
    if algo not in ("diag-oft", "boft"):
        for name in ("constraint", "rescaled"):
            if getattr(a, name) not in (None, False):
                yield warning(f"{key}.{name}", f"only diag-oft and boft read it; {algo} ignores it")
    if algo not in LYCORIS_LORAPLUS:
        for name in ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio"):
            if getattr(a, name) is not None:
                yield warning(f"{key}.{name}", f"LoRA+ only acts on lora/locon modules; with {algo} it does nothing")
    if algo == "tlora":
        yield warning(f"{key}.algo", "tlora needs a per-step timestep mask that sd-scripts never sets")
    if a.dora_wd and cfg.network.network_dropout:
        yield warning("network.network_dropout", "DoRA (dora_wd) ignores neuron dropout")


@rule
def accelerate(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    acc = cfg.accelerate
    machines = acc.num_machines or launch_default("num_machines")
    if machines > 1:
        for name in ("main_process_ip", "main_process_port"):
            if getattr(acc, name) is None:
                yield error(
                    f"accelerate.{name}",
                    f"multi-node training ({machines} machines) needs the main node's address and port",
                )
    if acc.machine_rank is not None and acc.machine_rank >= machines:
        yield error(
            "accelerate.machine_rank",
            f"is {acc.machine_rank} but only {machines} machine(s) take part",
            f"use 0..{machines - 1}",
        )
    if acc.gpu_ids and acc.gpu_ids != "all" and isinstance(acc.num_processes, int):
        ids = acc.gpu_ids.split(",")
        per_machine = acc.num_processes // machines
        if len(ids) < per_machine:
            yield error(
                "accelerate.gpu_ids",
                f"lists {len(ids)} GPU(s) for {per_machine} process(es) per machine",
                "list one GPU per process",
            )
        elif len(ids) > per_machine:
            yield warning(
                "accelerate.gpu_ids",
                f"lists {len(ids)} GPUs but only {per_machine} process(es) per machine use them",
                f"set num_processes = {len(ids) * machines}",
            )
    if machines > 1 and isinstance(acc.num_processes, int) and acc.num_processes < machines:
        yield error(
            "accelerate.num_processes", "counts processes on all machines together and must be at least num_machines"
        )
