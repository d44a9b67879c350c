"""Every preset and test config shipped with the kohya_ss GUI, imported as a new user would.

For each file under tests/data/kohya_ss (copied from bmaltais/kohya_ss, see its README) either
- it is an SDXL LoRA/LyCORIS config, and the command `loratrain run --dry-run` renders for its import, parsed by
  sd-scripts' own parser (tests/sdparser.py, from the flag table), holds the same values as what the GUI passes
  for that JSON (its --config_file TOML, then additional_parameters on the command line), paths aside and up
  to the differences DOCUMENTED below; or
- it is refused with exit code 2 and the reason (which tab/script it belongs to, non-SDXL, empty, foreign).

`gui_passes` is this test's own reading of kohya_gui/lora_gui.py train_model at the GUI commit (written apart
from the importer); only the widget defaults come from the importer's table, the one place that fact lives.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
from pathlib import Path

import pytest
from helpers import reference_parser_cached, run_cli

from loratrain.config.loader import validate
from loratrain.errors import ConfigError
from loratrain.importers import import_text
from loratrain.importers.finish import finish
from loratrain.importers.kohya_gui_fields import FIELD_DEFAULTS
from loratrain.importers.output import typed_network_value
from loratrain.render import build_command

DATA = Path(__file__).resolve().parents[1] / "data" / "kohya_ss"
ALL = sorted(p for p in DATA.rglob("*") if p.suffix in (".json", ".toml"))

# What each shipped file is. "import" = an SDXL LoRA/LyCORIS config that must import equal to the GUI's run;
# anything else is a substring of the refusal message.
SD15 = "runs train_network.py"
DREAMBOOTH = "Dreambooth config"
FINETUNE = "Finetuning config"
TI = "Textual Inversion config"
FOREIGN = "not an sd-scripts config / kohya_ss JSON / command"
DATASET = "dataset config"
REAL_ERROR = "bucket_reso_steps: SDXL needs a multiple of 32, got 1"  # sd-scripts' SDXL LoRA stops on it too
EXPECTED = {
    "presets/dreambooth/sd3_bdsqlsz_v1.json": DREAMBOOTH,
    "presets/dreambooth/sd3_bdsqlsz_v2.json": DREAMBOOTH,
    "presets/finetune/SDXL - AI_Now PagedAdamW8bit v1.0.json": FINETUNE,
    "presets/finetune/SDXL - Essenz series by AI_Characters_Training v1.0.json": FINETUNE,
    "presets/finetune/adafactor.json": FINETUNE,
    "presets/finetune/lion.json": FINETUNE,
    "presets/lora/flux1D - adamw8bit fp8.json": "runs flux_train_network.py",
    "presets/lora/iA3-Prodigy-sd15.json": SD15,
    "presets/lora/locon-dadaptation-sdxl.json": REAL_ERROR,
    "presets/lora/ia3-sd15.json": SD15,
    "presets/lora/loha-sd15.json": SD15,
    "presets/lora/lokr-sd15.json": SD15,
    "presets/lora/sd15 - EDG_LoConOptiSettings.json": SD15,
    "presets/lora/sd15 - EDG_LoHaOptiSettings.json": SD15,
    "presets/lora/sd15 - EDG_LoraOptiSettings.json": SD15,
    "presets/lora/sd15 - GLoRA v1.0.json": SD15,
    "presets/lora/sd15 - LoKR v1.0.json": SD15,
    "presets/lora/sd15 - LoKr v1.1.json": SD15,
    "presets/lora/sd15 - LoKr v2.0.json": SD15,
    "test/config/Diag-OFT-AdamW8bit-toml.json": SD15,
    "test/config/DyLoRA-Adafactor-toml.json": SD15,
    "test/config/LoKR-AdamW8bit-toml.json": SD15,
    "test/config/SDXL-Standard-AdamW.json": DREAMBOOTH,
    "test/config/SDXL-Standard-AdamW8bit.json": REAL_ERROR,
    "test/config/Standard-AdamW.json": DREAMBOOTH,
    "test/config/Standard-AdamW8bit.json": DREAMBOOTH,
    "test/config/TI-AdamW8bit-SDXL.json": TI,
    "test/config/TI-AdamW8bit-toml.json": TI,
    "test/config/TI-AdamW8bit.json": TI,
    "test/config/dataset-finetune.toml": DATASET,
    "test/config/dataset-masked_loss.toml": DATASET,
    "test/config/dataset-multires.toml": DATASET,
    "test/config/dataset.toml": DATASET,
    "test/config/dreambooth-Adafactor.json": DREAMBOOTH,
    "test/config/dreambooth-AdamW.json": DREAMBOOTH,
    "test/config/dreambooth-AdamW8bit-masked_loss-toml.json": DREAMBOOTH,
    "test/config/dreambooth-AdamW8bit-toml.json": DREAMBOOTH,
    "test/config/dreambooth-AdamW8bit.json": DREAMBOOTH,
    "test/config/dreambooth-DAdaptAdam.json": DREAMBOOTH,
    "test/config/dreambooth-Prodigy-SDXL.json": DREAMBOOTH,
    "test/config/dreambooth-Prodigy.json": DREAMBOOTH,
    "test/config/dreambooth.json": DREAMBOOTH,
    "test/config/finetune-AdamW-toml.json": FINETUNE,
    "test/config/finetune-AdamW.json": FINETUNE,
    "test/config/iA3-Prodigy.json": SD15,
    "test/config/leco_prompts.toml": FOREIGN,
    "test/config/locon-Adafactor.json": SD15,
    "test/config/locon-AdamW.json": SD15,
    "test/config/locon-AdamW8bit-masked_loss-toml.json": SD15,
    "test/config/locon-AdamW8bit-toml.json": SD15,
    "test/config/locon-AdamW8bit.json": SD15,
    "test/config/locon-Prodigy.json": SD15,
    "test/config/meta-1_lat.json": FOREIGN,
}

# Values the GUI passes that the import carries differently, each with why the run is the same or why it
# cannot be carried. Applied to the GUI's side before comparing.
DOCUMENTED = {
    "max_train_steps (from folders)": "with max_train_steps 0 and no dataset_config the GUI counts the images in "
    "train_data_dir and passes ceil(images/batch/grad_acc*epoch*reg) steps; the import passes max_train_epochs = "
    "epoch and sd-scripts counts the same folders (per bucket)",
    "max_train_steps (epochs win)": "with max_train_epochs set sd-scripts ignores max_train_steps",
    "clip_skip": "SDXL training ignores clip_skip (sd-scripts only warns)",
    "max_token_length": "the GUI passes 75, which sd-scripts reads like its default (75 + 2 = 77 tokens)",
    "wandb_run_name": "passed always, read by sd-scripts only when logging to wandb",
    "dynamo_backend": "the GUI also writes it into the TOML; sd-scripts reads it only with --torch_compile",
    "secrets": "wandb_api_key / huggingface_token reach sd-scripts through the environment, not argv",
    "lycoris unread keys": "rank_dropout_scale / train_on_input: LyCORIS 4.1.3 never reads them",
}
PATHS = {
    "pretrained_model_name_or_path",
    "train_data_dir",
    "output_dir",
    "logging_dir",
    "reg_data_dir",
    "vae",
    "network_weights",
    "resume",
    "dataset_config",
    "log_tracker_config",
    "sample_prompts",
    "config_file",
}
SECRETS = {"wandb_api_key", "huggingface_token"}


def _rel(path: Path) -> str:
    return path.relative_to(DATA).as_posix()


def test_every_shipped_file_is_classified():
    assert sorted(_rel(p) for p in ALL if _rel(p) not in EXPECTED) == sorted(
        _rel(p) for p in ALL if json_is_sdxl_lora(p) and EXPECTED.get(_rel(p)) != REAL_ERROR
    )
    assert len(ALL) == 74


def json_is_sdxl_lora(path: Path) -> bool:
    if path.suffix != ".json":
        return False
    data = json.loads(path.read_text(encoding="utf-8"))
    return data.get("sdxl") is True and "LoRA_type" in data


SDXL_LORA = [p for p in ALL if _rel(p) not in EXPECTED]


# -- the GUI's side ------------------------------------------------------------------------------------------


def _num(value, fallback, kind=float):
    try:
        return kind(value)
    except (TypeError, ValueError):
        return fallback


def gui_passes(data: dict) -> tuple[dict, list[str]]:
    """(the GUI's --config_file TOML for this JSON, the additional_parameters words) — our reading of the GUI."""
    g = dict(FIELD_DEFAULTS)
    g.update({k: v for k, v in data.items() if v is not None})
    if data.get("lora_network_weights") is not None:
        g["network_weights"] = data["lora_network_weights"]
    if "optimizer" not in data:
        g["optimizer"] = "AdamW8bit" if data.get("use_8bit_adam") else "AdamW"
    for key in (
        "clip_skip",
        "epoch",
        "gradient_accumulation_steps",
        "keep_tokens",
        "lr_warmup",
        "max_train_epochs",
        "max_data_loader_n_workers",
        "save_every_n_epochs",
        "seed",
        "max_train_steps",
        "caption_dropout_every_n_epochs",
    ):
        if key in data:
            g[key] = _num(g[key], 0, int)
    if "lr_scheduler_num_cycles" in data:
        g["lr_scheduler_num_cycles"] = _num(g["lr_scheduler_num_cycles"], 1, int)
    if "max_token_length" in data:
        g["max_token_length"] = _num(g["max_token_length"], 75, int)
    for key in ("adaptive_noise_scale", "noise_offset", "learning_rate", "text_encoder_lr", "unet_lr"):
        g[key] = _num(g[key], 0.0)
    if isinstance(g["xformers"], bool):
        g["xformers"] = "xformers" if g["xformers"] else "none"
    t = g["LoRA_type"]
    if g["lr_scheduler"] == "constant":  # the scheduler's change event zeroes the warm-up
        g["lr_warmup"], g["lr_warmup_steps"] = 0, 0

    # network
    args = ""
    lyco = {
        "LyCORIS/LoCon": "locon",
        "LyCORIS/LoHa": "loha",
        "LyCORIS/LoKr": "lokr",
        "LyCORIS/iA3": "ia3",
        "LyCORIS/GLoRA": "glora",
        "LyCORIS/DyLoRA": "dylora",
    }
    if t in lyco:
        module = "lycoris.kohya"
        head = f" preset={g['LyCORIS_preset']} conv_dim={g['conv_dim']} conv_alpha={g['conv_alpha']}"
        if t == "LyCORIS/iA3":
            args = head + f" train_on_input={g['train_on_input']} algo=ia3"
        elif t == "LyCORIS/LoKr":
            args = head + (
                f" use_tucker={g['use_tucker']} rank_dropout={g['rank_dropout']} bypass_mode="
                f"{g['bypass_mode']} dora_wd={g['dora_wd']} module_dropout={g['module_dropout']} factor="
                f"{g['factor']} use_cp={g['use_cp']} use_scalar={g['use_scalar']} decompose_both="
                f"{g['decompose_both']} rank_dropout_scale={g['rank_dropout_scale']} algo=lokr "
                f"train_norm={g['train_norm']}"
            )
        else:
            args = head + (
                f" use_tucker={g['use_tucker']} rank_dropout={g['rank_dropout']} bypass_mode="
                f"{g['bypass_mode']} dora_wd={g['dora_wd']} module_dropout={g['module_dropout']} "
                f"use_scalar={g['use_scalar']} rank_dropout_scale={g['rank_dropout_scale']} "
                f"algo={lyco[t]} train_norm={g['train_norm']}"
            )
    else:
        assert t in ("Standard", "Kohya LoCon"), t  # the only kohya types among the shipped SDXL files
        module = "networks.lora"
        if t == "Kohya LoCon":
            args += f" conv_dim={g['conv_dim']} conv_alpha={g['conv_alpha']}"
        for key in (
            "down_lr_weight",
            "mid_lr_weight",
            "up_lr_weight",
            "block_lr_zero_threshold",
            "block_dims",
            "block_alphas",
            "conv_block_dims",
            "conv_block_alphas",
            "rank_dropout",
            "module_dropout",
        ):
            if g[key]:
                args += f" {key}={g[key]}"
    for key in ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio"):
        if g[key]:
            args += f" {key}={g[key]}"

    te, unet, t5 = g["text_encoder_lr"], g["unet_lr"], float(g["t5xxl_lr"] or 0)
    te_list = [float(te), float(t5)] if te > 0 and t5 > 0 else [float(te), float(te)] if te > 0 else []

    # steps: the GUI counts images when max_train_steps is 0 (marked here, see DOCUMENTED)
    max_steps = g["max_train_steps"]
    warm_pct, warm_steps = float(g["lr_warmup"] or 0), float(g["lr_warmup_steps"] or 0)
    if g["dataset_config"]:
        if max_steps > 0 and warm_steps <= 0 and warm_pct:
            warm_steps, warm_pct = round(warm_pct * max_steps / 100), 0
        elif max_steps <= 0:
            warm_steps = 0
    elif max_steps == 0:
        max_steps = "FROM_FOLDERS"
    warmup = int(warm_steps) if warm_steps > 0 else warm_pct / 100 if warm_pct else 0

    original, multires = g["noise_offset_type"] == "Original", g["noise_offset_type"] == "Multires"
    toml = {
        "adaptive_noise_scale": g["adaptive_noise_scale"] if original else None,
        "noise_offset": g["noise_offset"] if original else None,
        "noise_offset_random_strength": g["noise_offset_random_strength"] if original else None,
        "multires_noise_iterations": g["multires_noise_iterations"] if multires else None,
        "multires_noise_discount": g["multires_noise_discount"] if multires else None,
        "cache_text_encoder_outputs": True if g["sdxl_cache_text_encoder_outputs"] else None,
        "no_half_vae": True if g["sdxl_no_half_vae"] else None,
        "clip_skip": g["clip_skip"],
        "epoch": int(g["epoch"]),
        "learning_rate": float(g["learning_rate"]),
        "lr_scheduler_args": str(g["lr_scheduler_args"]).replace('"', "").split(),
        "optimizer_args": str(g["optimizer_args"]).replace('"', "").split(),
        "lr_scheduler_num_cycles": int(g["lr_scheduler_num_cycles"]),
        "lr_warmup_steps": warmup,
        "max_token_length": int(g["max_token_length"]),
        "max_train_epochs": int(g["max_train_epochs"]) or None,
        "max_train_steps": max_steps or None,
        "network_args": str(args).replace('"', "").split(),
        "network_module": module,
        "network_train_unet_only": te == 0 and unet != 0,
        "network_train_text_encoder_only": te != 0 and unet == 0,
        "optimizer_type": g["optimizer"],
        "resolution": g["max_resolution"],
        "sdpa": True if g["xformers"] == "sdpa" else None,
        "xformers": True if g["xformers"] == "xformers" else None,
        "text_encoder_lr": te_list or None,
        "unet_lr": float(unet) or None,
        "wandb_run_name": g["wandb_run_name"] or g["output_name"],
        "persistent_data_loader_workers": int(g["persistent_data_loader_workers"]),
    }
    for key in (
        "async_upload",
        "bucket_no_upscale",
        "bucket_reso_steps",
        "cache_latents",
        "cache_latents_to_disk",
        "caption_dropout_rate",
        "caption_extension",
        "color_aug",
        "debiased_estimation_loss",
        "dim_from_weights",
        "dynamo_backend",
        "enable_bucket",
        "flip_aug",
        "fp8_base",
        "full_bf16",
        "full_fp16",
        "gradient_checkpointing",
        "highvram",
        "huber_c",
        "huber_scale",
        "huber_schedule",
        "ip_noise_gamma",
        "ip_noise_gamma_random_strength",
        "log_config",
        "log_tracker_name",
        "loss_type",
        "lr_scheduler",
        "lr_scheduler_power",
        "masked_loss",
        "max_bucket_reso",
        "max_grad_norm",
        "max_timestep",
        "mem_eff_attn",
        "min_snr_gamma",
        "min_timestep",
        "mixed_precision",
        "network_alpha",
        "network_dim",
        "network_dropout",
        "output_name",
        "prior_loss_weight",
        "random_crop",
        "sample_every_n_epochs",
        "sample_every_n_steps",
        "sample_sampler",
        "save_every_n_epochs",
        "save_every_n_steps",
        "save_last_n_steps",
        "save_last_n_steps_state",
        "save_last_n_epochs",
        "save_last_n_epochs_state",
        "save_model_as",
        "save_precision",
        "save_state",
        "save_state_on_train_end",
        "scale_v_pred_loss_like_noise_pred",
        "scale_weight_norms",
        "shuffle_caption",
        "skip_cache_check",
        "train_batch_size",
        "training_comment",
        "log_with",
        "v_parameterization",
        "v_pred_like_loss",
        "vae_batch_size",
        "weighted_captions",
        "huggingface_repo_id",
        "huggingface_repo_type",
        "huggingface_repo_visibility",
        "huggingface_path_in_repo",
        "save_state_to_huggingface",
        "resume_from_huggingface",
        "metadata_author",
        "metadata_description",
        "metadata_license",
        "metadata_tags",
        "metadata_title",
        *PATHS - {"sample_prompts", "config_file"},
        *SECRETS,
    ):
        toml[key] = g[key]
    for key in ("gradient_accumulation_steps", "keep_tokens", "caption_dropout_every_n_epochs", "min_bucket_reso"):
        toml[key] = int(g[key])
    toml["lr_scheduler_type"] = g["lr_scheduler_type"] or None
    toml["seed"] = int(g["seed"]) or None
    toml = {k: v for k, v in toml.items() if v not in ["", False, None]}
    toml["max_data_loader_n_workers"] = int(g["max_data_loader_n_workers"])
    words = str(g["additional_parameters"]).replace('"', "").split()
    return toml, words


def sd_scripts_reads(toml: dict, words: list[str]) -> dict:
    """sd-scripts' namespace for `--config_file TOML WORDS`: the file's keys, then the command line on top."""
    parser = reference_parser_cached()
    known = {a.dest for a in parser._actions}
    ns = parser.parse_args(words, namespace=argparse.Namespace(**{k: v for k, v in toml.items() if k in known}))
    return vars(ns)


# -- LyCORIS' and sd-scripts' own reading of network_args -----------------------------------------------------


def lycoris_reads(items: list[str], network_dim, network_alpha) -> dict:
    """What LyCORIS 4.1.3 kohya.create_network takes from these key=value strings (its deprecations and
    string-to-bool rules included)."""
    kw = dict(item.split("=", 1) for item in items)
    for old, new in (
        ("disable_conv_cp", "use_tucker"),
        ("use_cp", "use_tucker"),
        ("use_conv_cp", "use_tucker"),
        ("constrain", "constraint"),
    ):
        if old in kw:
            kw[new] = kw[old]

    def on(text) -> bool:
        return str(text).lower() != "false"

    tucker = (
        (not kw.get("disable_conv_cp", True))
        or kw.get("use_conv_cp", False)
        or kw.get("use_cp", False)
        or kw.get("use_tucker", False)
    )
    return {
        "algo": (kw.get("algo") or "lora").lower(),
        "preset": kw.get("preset", "full"),
        "conv_dim": int(kw.get("conv_dim", network_dim) or network_dim),
        "conv_alpha": float(kw.get("conv_alpha", network_alpha) or network_alpha),
        "dropout": float(kw.get("dropout", 0) or 0),
        "rank_dropout": float(kw.get("rank_dropout", 0) or 0),
        "module_dropout": float(kw.get("module_dropout", 0) or 0),
        "use_tucker": on(tucker),
        "use_scalar": on(kw.get("use_scalar", False)),
        "block_size": int(kw.get("block_size") or 4),
        "train_norm": on(kw.get("train_norm", False)),
        "constraint": float(kw.get("constraint") or 0),
        "rescaled": on(kw.get("rescaled", False)),
        "dora_wd": on(kw.get("dora_wd", False)),
        "bypass_mode": on(kw.get("bypass_mode", False)),
        "decompose_both": bool(kw.get("decompose_both", False)),  # passed through raw: any text is on
        "factor": int(kw.get("factor", -1)),
        **{
            k: float(kw[k])
            for k in ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")
            if k in kw
        },
    }


def comparable(ns: dict) -> dict:
    out = {k: v for k, v in ns.items() if k not in PATHS | SECRETS}
    items = out.get("network_args") or []
    if out.get("network_module") == "lycoris.kohya":
        out["network_args"] = lycoris_reads(items, out.get("network_dim"), out.get("network_alpha"))
    else:
        out["network_args"] = {k: typed_network_value(v) for k, _, v in (i.partition("=") for i in items)} or None
    for key in ("optimizer_args", "lr_scheduler_args"):
        # sd-scripts splits each item at "=" and reads the value with ast.literal_eval (get_optimizer,
        # get_scheduler_fix): "eta_min=0e-0" and "eta_min=0.0" are the same argument.
        items = out.get(key) or []
        out[key] = {k: ast.literal_eval(v) for k, _, v in (i.partition("=") for i in items)} or None
    for key, value in list(out.items()):
        if value == []:
            out[key] = None  # sd-scripts reads an empty list like an unset one
        if isinstance(value, bool) is False and key in STORE_TRUE and value is not None:
            out[key] = bool(value)
    return out


STORE_TRUE = {a.dest for a in reference_parser_cached()._actions if a.nargs == 0}


def gui_side(data: dict) -> tuple[dict, list[str]]:
    """The GUI's namespace with the DOCUMENTED differences applied; returns the ones that applied."""
    toml, words = gui_passes(data)
    applied = []
    if toml.get("max_train_epochs"):
        if "max_train_steps" in toml:
            applied.append("max_train_steps (epochs win)")
        toml.pop("max_train_steps", None)
    elif toml.get("max_train_steps") == "FROM_FOLDERS":
        applied.append("max_train_steps (from folders)")
        del toml["max_train_steps"]
        toml["max_train_epochs"] = toml["epoch"]
    if toml.pop("clip_skip", None) is not None:
        applied.append("clip_skip")
    if toml.get("max_token_length") == 75:
        applied.append("max_token_length")
        del toml["max_token_length"]
    if toml.get("log_with") not in ("wandb", "all") and toml.pop("wandb_run_name", None):
        applied.append("wandb_run_name")
    if toml.pop("dynamo_backend", None):
        applied.append("dynamo_backend")
    if toml.get("network_module") == "lycoris.kohya":
        kept = [i for i in toml["network_args"] if i.split("=")[0] not in ("rank_dropout_scale", "train_on_input")]
        if len(kept) != len(toml["network_args"]):
            applied.append("lycoris unread keys")
    ns = sd_scripts_reads(toml, words)
    return comparable(ns), applied


# -- loratrain's side ---------------------------------------------------------------------------------------


def loratrain_side(path: Path) -> dict:
    """import, fill in the paths the preset leaves to the user, render the dry-run command, parse it."""
    done = finish(import_text(path.read_text(encoding="utf-8"), str(path), "kohya-json"))
    doc = done.doc
    doc.setdefault("model", {}).setdefault("pretrained_model_name_or_path", "/models/sdxl.safetensors")
    if "dataset_config" not in doc.get("dataset", {}):
        doc.setdefault("dataset", {}).setdefault("train_data_dir", "/data")
    doc.setdefault("saving", {}).setdefault("output_dir", "/out")
    cfg = validate(doc, "<imported>").config
    argv = build_command(cfg, sd_scripts_dir="/sd").argv
    script_at = next(i for i, tok in enumerate(argv) if tok.endswith("sdxl_train_network.py"))
    return comparable(vars(reference_parser_cached().parse_args(argv[script_at + 1 :])))


def differences(a: dict, b: dict) -> dict:
    def same(x, y):
        if isinstance(x, float) or isinstance(y, float):
            return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9)
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(same(p, q) for p, q in zip(x, y))
        return x == y

    return {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if not same(a.get(k), b.get(k))}


@pytest.mark.parametrize("path", SDXL_LORA, ids=_rel)
def test_an_sdxl_lora_preset_imports_to_what_the_gui_passes(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    expected, applied = gui_side(data)
    assert set(applied) <= set(DOCUMENTED)
    assert differences(loratrain_side(path), expected) == {}


@pytest.mark.parametrize("path", [p for p in ALL if _rel(p) in EXPECTED], ids=_rel)
def test_a_file_that_is_not_an_sdxl_lora_config_is_refused_with_the_reason(path):
    with pytest.raises(ConfigError) as caught:
        finish(import_text(path.read_text(encoding="utf-8"), str(path)))
    text = " ".join(p.render() for p in caught.value.problems)
    assert EXPECTED[_rel(path)] in text, text
    assert len(caught.value.problems) == 1, text  # one reason; unset paths are not reported on top of it


def test_the_counts():
    refused = {}
    for reason in EXPECTED.values():
        refused[reason] = refused.get(reason, 0) + 1
    assert len(SDXL_LORA) == 21
    assert refused == {
        DREAMBOOTH: 14,
        FINETUNE: 6,
        SD15: 21,
        "runs flux_train_network.py": 1,
        TI: 3,
        DATASET: 4,
        FOREIGN: 2,
        REAL_ERROR: 2,
    }


def test_a_refused_preset_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "run.toml"
    result = run_cli("import", str(DATA / "presets/lora/lokr-sd15.json"), "-o", str(out))
    assert result.returncode == 2
    assert "runs train_network.py" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


MIRROR = Path("/work/.mirror/bmaltais+kohya_ss/repo")


@pytest.mark.skipif(not MIRROR.exists(), reason="needs the kohya_ss GUI's git mirror (reads its widget code)")
def test_the_field_defaults_table_matches_the_gui_widgets_at_the_recorded_commit():
    """Every widget of the LoRA tab whose starting value is a literal (or config.get(key, literal)) in the GUI
    source at GUI_COMMIT has that value in FIELD_DEFAULTS."""
    import ast
    import subprocess

    from loratrain.importers.kohya_gui_fields import GUI_COMMIT

    names = {"sdxl_checkbox": "sdxl"}
    checked, wrong = 0, {}
    for module in (
        "lora_gui",
        "class_basic_training",
        "class_advanced_training",
        "class_source_model",
        "class_folders",
        "class_accelerate_launch",
        "class_sdxl_parameters",
        "class_sample_images",
        "class_huggingface",
        "class_metadata",
    ):
        source = subprocess.run(
            ["git", "-C", str(MIRROR), "show", f"{GUI_COMMIT}:kohya_gui/{module}.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                continue
            target = node.targets[0]
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            name = names.get(name, name)
            value = next((k.value for k in node.value.keywords if k.arg == "value"), None)
            if name not in FIELD_DEFAULTS or value is None:
                continue
            if isinstance(value, ast.Call) and getattr(value.func, "attr", "") == "get" and len(value.args) == 2:
                value = value.args[1]
            try:
                literal = ast.literal_eval(value)
            except ValueError:
                continue  # a constructor argument or a constant: checked by the preset tests' expectations
            checked += 1
            if literal != FIELD_DEFAULTS[name]:
                wrong[name] = (literal, FIELD_DEFAULTS[name])
    assert wrong == {}
    assert checked > 120
