"""Cross-flag rules: sd-scripts' runtime checks and the guide's traps, caught before anything runs."""

from __future__ import annotations

import pytest
from helpers import BASE, tomllib

from loratrain.config.loader import validate
from loratrain.errors import ConfigError


def _merge(extra: str) -> dict:
    data = tomllib.loads(BASE)
    for table, values in tomllib.loads(extra).items():
        if isinstance(values, dict):
            target = data.setdefault(table, {})
            for k, v in values.items():
                if isinstance(v, dict) and isinstance(target.get(k), dict):
                    target[k].update(v)
                else:
                    target[k] = v
        else:
            data[table] = values
    return data


def problems(extra: str):
    """(errors, warnings) as sets of (key, message) for BASE plus `extra`."""
    try:
        loaded = validate(_merge(extra), "run.toml")
        return set(), {(w.key, w.message) for w in loaded.warnings}
    except ConfigError as exc:
        errors = {(p.key, p.message) for p in exc.problems if p.severity == "error"}
        return errors, {(p.key, p.message) for p in exc.problems if p.severity == "warning"}


def keys(found) -> set[str]:
    return {k for k, _ in found}


LYCO = '[network]\nnetwork_module = "lycoris.kohya"\n'

ERRORS = [
    (
        "text-encoder cache with shuffled captions",
        "[dataset]\ncache_text_encoder_outputs = true\nshuffle_caption = true\n"
        "[network]\nnetwork_train_unet_only = true",
        "dataset.cache_text_encoder_outputs",
    ),
    (
        "text-encoder cache with caption dropout",
        "[dataset]\ncache_text_encoder_outputs_to_disk = true\n"
        "caption_dropout_rate = 0.1\n[network]\nnetwork_train_unet_only = true",
        "dataset.cache_text_encoder_outputs_to_disk",
    ),
    (
        "text-encoder cache with token warmup",
        "[dataset]\ncache_text_encoder_outputs = true\ntoken_warmup_step = 10.0\n"
        "[network]\nnetwork_train_unet_only = true",
        "dataset.cache_text_encoder_outputs",
    ),
    (
        "text-encoder cache while training the text encoder",
        "[dataset]\ncache_text_encoder_outputs = true",
        "dataset.cache_text_encoder_outputs",
    ),
    ("latent cache with color_aug", "[dataset]\ncache_latents = true\ncolor_aug = true", "dataset.cache_latents"),
    (
        "latent disk cache with random_crop",
        "[dataset]\ncache_latents_to_disk = true\nrandom_crop = true",
        "dataset.cache_latents_to_disk",
    ),
    (
        "SDXL bucket steps not a multiple of 32",
        "[buckets]\nenable_bucket = true\nbucket_reso_steps = 48",
        "buckets.bucket_reso_steps",
    ),
    (
        "resolution above max bucket",
        "[dataset]\nresolution = 1536\n[buckets]\nenable_bucket = true",
        "dataset.resolution",
    ),
    (
        "resolution below min bucket",
        '[dataset]\nresolution = "512,512"\n[buckets]\nenable_bucket = true\nmin_bucket_reso = 640',
        "dataset.resolution",
    ),
    ("adafactor scheduler without Adafactor", '[optimizer]\nlr_scheduler = "adafactor"', "optimizer.lr_scheduler"),
    ("constant scheduler with warm-up", "[optimizer]\nlr_warmup_steps = 100", "optimizer.lr_warmup_steps"),
    ("full_fp16 without fp16", '[precision]\nfull_fp16 = true\nmixed_precision = "bf16"', "precision.full_fp16"),
    ("full_bf16 without bf16", "[precision]\nfull_bf16 = true", "precision.full_bf16"),
    ("tensorboard without logging_dir", '[logging]\nlog_with = "tensorboard"', "logging.log_with"),
    ("v2 flag on the SDXL script", "[extra]\nv2 = true", "extra.v2"),
    ("noise scale without offset", "[noise]\nadaptive_noise_scale = 0.1", "noise.adaptive_noise_scale"),
    (
        "resolution above max bucket even with no_upscale",
        "[dataset]\nresolution = 1536\n[buckets]\nenable_bucket = true\nbucket_no_upscale = true",
        "dataset.resolution",
    ),
    ("preset ia3 trains nothing", LYCO + '[network.network_args]\npreset = "ia3"', "network.network_args.preset"),
    (
        "dylora dim not a multiple of block_size",
        LYCO + 'network_dim = 6\n[network.network_args]\nalgo = "dylora"',
        "network.network_dim",
    ),
    (
        "full algo in bypass mode",
        LYCO + '[network.network_args]\nalgo = "full"\nbypass_mode = true',
        "network.network_args.bypass_mode",
    ),
    (
        "multi-node without an address",
        "[accelerate]\nnum_machines = 2\nnum_processes = 4",
        "accelerate.main_process_ip",
    ),
    ("fewer GPU ids than processes", '[accelerate]\nnum_processes = 2\ngpu_ids = "0"', "accelerate.gpu_ids"),
    ("sampling period without a prompt file", "[sampling]\nsample_every_n_steps = 100", "sampling.sample_prompts"),
    (
        "8-bit adam switch with an optimizer",
        '[optimizer]\noptimizer_type = "Lion"\n[extra]\nuse_8bit_adam = true',
        "optimizer.optimizer_type",
    ),
]


@pytest.mark.parametrize("why, extra, key", ERRORS, ids=[e[0] for e in ERRORS])
def test_rule_reports_an_error(why, extra, key):
    errors, _ = problems(extra)
    assert key in keys(errors), errors


WARNINGS = [
    ("multires discount without iterations", "[noise]\nmultires_noise_discount = 0.1", "noise.multires_noise_discount"),
    (
        "num_cycles without restarts",
        '[optimizer]\nlr_scheduler = "cosine"\nlr_scheduler_num_cycles = 3',
        "optimizer.lr_scheduler_num_cycles",
    ),
    ("log_prefix without logging_dir", '[logging]\nlog_prefix = "x"', "logging.log_prefix"),
    ("dataset_repeats in folder mode", "[dataset]\ndataset_repeats = 0", "dataset.dataset_repeats"),
    ("both epochs and steps", "[training]\nmax_train_epochs = 3\nmax_train_steps = 100", "training.max_train_steps"),
    (
        "both sample periods",
        '[sampling]\nsample_prompts = "p.txt"\nsample_every_n_epochs = 1\nsample_every_n_steps = 100',
        "sampling.sample_every_n_steps",
    ),
    ("several attention options", "[training]\nsdpa = true\nxformers = true", "training.sdpa"),
    (
        "block_dims under lycoris",
        LYCO + '[network.network_args]\nblock_dims = "8,8,8"',
        "network.network_args.block_dims",
    ),
    (
        "rank_dropout_scale under lycoris",
        LYCO + "[network.network_args]\nrank_dropout_scale = false",
        "network.network_args.rank_dropout_scale",
    ),
    (
        "LoRA+ with loha",
        LYCO + '[network.network_args]\nalgo = "loha"\nloraplus_lr_ratio = 16.0',
        "network.network_args.loraplus_lr_ratio",
    ),
    (
        "tucker with an algo without it",
        LYCO + '[network.network_args]\nalgo = "full"\nuse_tucker = true',
        "network.network_args.use_tucker",
    ),
    (
        "accelerate precision alone does not reach sd-scripts",
        '[accelerate]\nmixed_precision = "bf16"',
        "accelerate.mixed_precision",
    ),
    (
        "lokr options with locon",
        LYCO + '[network.network_args]\nalgo = "locon"\nfactor = 8',
        "network.network_args.factor",
    ),
]


@pytest.mark.parametrize("why, extra, key", WARNINGS, ids=[w[0] for w in WARNINGS])
def test_rule_reports_a_warning(why, extra, key):
    errors, warnings = problems(extra)
    assert not errors, errors
    assert key in keys(warnings), warnings


def test_attention_warning_says_which_option_wins():
    _, warnings = problems("[training]\nsdpa = true\nxformers = true\nmem_eff_attn = true")
    assert any("uses mem_eff_attn" in m for _, m in warnings)


def test_networks_lora_block_dims_need_23_values_on_sdxl():
    errors, _ = problems('[network.network_args]\nblock_dims = "' + ",".join(["8"] * 25) + '"')
    assert any(k == "network.network_args.block_dims" and "25 values" in m for k, m in errors), errors
    errors, _ = problems("[network.network_args]\nblock_dims = " + str([8] * 23))
    assert not errors


def test_weight_decompose_points_to_dora_wd():
    errors, _ = problems(LYCO + "[network.network_args]\nweight_decompose = true")
    assert any("dora_wd" in m or k.endswith("weight_decompose") for k, m in errors)


def test_a_clean_config_has_no_problems():
    assert problems("") == (set(), set())


def test_algo_is_case_insensitive_as_in_lycoris():
    data = _merge(LYCO + '[network.network_args]\nalgo = "LoKr"')
    assert validate(data, "run.toml").config.network.network_args.algo == "lokr"


def test_unchecked_module_args_must_be_plain_values():
    errors, _ = problems('[network]\nnetwork_module = "my.module"\n[network.network_args]\nb = { c = 1 }')
    assert "network.network_args" in keys(errors)
    errors, warnings = problems('[network]\nnetwork_module = "my.module"\n[network.network_args]\nb = [1, 2]')
    assert not errors and "network.network_args" in keys(warnings)
