"""Turn an `Imported` into a loratrain config: nested tables, typed network_args, TOML text with comments."""

from __future__ import annotations

import re
from typing import Any

from loratrain.errors import ConfigError, Problem
from loratrain.importers import Imported

TABLE_ORDER = (
    "model", "dataset", "buckets", "network", "optimizer", "training", "noise", "sampling", "saving",
    "precision", "logging", "accelerate", "extra",
)

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$|^[+-]?\d+[eE][+-]?\d+$")


def group_of(dest: str) -> str:
    try:
        from loratrain.schema import group_of as core_group_of
    except ImportError:  # TEMPORARY until the core lands
        return _LAYOUT_GROUPS.get(dest, "extra")
    return core_group_of(dest)


_LAYOUT = {
    "model": "pretrained_model_name_or_path tokenizer_cache_dir vae lowram disable_mmap_load_safetensors",
    "dataset": "train_data_dir reg_data_dir dataset_config resolution caption_extension caption_separator "
    "shuffle_caption keep_tokens dataset_repeats max_token_length cache_latents cache_latents_to_disk "
    "cache_text_encoder_outputs cache_text_encoder_outputs_to_disk color_aug flip_aug random_crop "
    "caption_dropout_rate caption_tag_dropout_rate caption_dropout_every_n_epochs token_warmup_step "
    "token_warmup_min max_data_loader_n_workers persistent_data_loader_workers",
    "buckets": "enable_bucket min_bucket_reso max_bucket_reso bucket_reso_steps bucket_no_upscale",
    "network": "network_module network_dim network_alpha network_dropout network_train_unet_only "
    "network_train_text_encoder_only network_weights dim_from_weights scale_weight_norms",
    "optimizer": "optimizer_type learning_rate unet_lr text_encoder_lr max_grad_norm optimizer_args lr_scheduler "
    "lr_scheduler_num_cycles lr_warmup_steps lr_scheduler_power lr_scheduler_args",
    "training": "max_train_steps max_train_epochs train_batch_size gradient_accumulation_steps "
    "gradient_checkpointing seed sdpa xformers mem_eff_attn",
    "noise": "noise_offset multires_noise_iterations multires_noise_discount adaptive_noise_scale",
    "sampling": "sample_prompts sample_sampler sample_every_n_steps sample_every_n_epochs sample_at_first",
    "saving": "output_dir output_name save_model_as save_precision save_every_n_epochs save_last_n_epochs "
    "save_every_n_steps save_last_n_steps save_state",
    "precision": "mixed_precision full_fp16 full_bf16 no_half_vae fp8_base",
    "logging": "logging_dir log_with log_prefix log_tracker_name wandb_run_name wandb_api_key",
}
_LAYOUT_GROUPS = {dest: group for group, dests in _LAYOUT.items() for dest in dests.split()}


def _number(text: str) -> int | float | None:
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return None


def typed_network_value(text: str) -> Any:
    """A network_args value string as a TOML value: "True"/"False" -> bool, numbers -> numbers,
    "8,8,8" -> [8, 8, 8] (only when every part is a number); anything else stays a string."""
    if text in ("True", "False", "true", "false"):
        return text.lower() == "true"
    number = _number(text)
    if number is not None:
        return number
    if "," in text:
        parts = [_number(p.strip()) for p in text.split(",")]
        if all(p is not None for p in parts):
            return parts
    return text


def network_args_table(items: list[str], source: str, notes: list[Problem]) -> dict[str, Any]:
    """sd-scripts' `key=value` items as typed keys. An item without '=' is an error (sd-scripts fails on it)."""
    table: dict[str, Any] = {}
    errors = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append(
                Problem(
                    f"network_args item {item!r} has no key=value form; sd-scripts stops on it",
                    key="network.network_args",
                    file=source,
                    fix="write it as name=value",
                )
            )
            continue
        if key in table:
            notes.append(
                Problem(
                    f"network_args sets {key} twice; sd-scripts keeps the last ({value})",
                    key=f"network.network_args.{key}",
                    file=source,
                    severity="warning",
                )
            )
            del table[key]  # keep the position of the value that counts
        table[key] = typed_network_value(value)
    if errors:
        raise ConfigError(errors)
    return table


def config_dict(imported: Imported) -> dict[str, Any]:
    """The loratrain config as nested plain values (root keys, then tables in render order)."""
    doc: dict[str, Any] = {}
    for key in ("sd_scripts", "python"):
        if key in imported.root:
            doc[key] = imported.root[key]
    tables: dict[str, dict[str, Any]] = {}
    for dest, value in imported.script_args.items():
        if dest == "network_args":
            table = network_args_table(list(value), imported.source, imported.notes)
            tables.setdefault("network", {})["network_args"] = table
            continue
        if dest == "text_encoder_lr" and isinstance(value, list) and len(value) == 1:
            value = value[0]  # one rate for both text encoders reads better as a number; renders the same
        tables.setdefault(group_of(dest), {})[dest] = value
    if imported.accelerate:
        tables["accelerate"] = dict(imported.accelerate)
    for name in TABLE_ORDER:
        if name in tables:
            doc[name] = _scalars_first(tables.pop(name))
    for name, table in tables.items():  # a group the core added later
        doc[name] = _scalars_first(table)
    return doc


def _scalars_first(table: dict[str, Any]) -> dict[str, Any]:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    scalars.update({k: v for k, v in table.items() if isinstance(v, dict)})
    return scalars


def header_lines(imported: Imported) -> list[str]:
    lines = [f"Imported by `loratrain import` from the {imported.kind} {imported.source}."]
    if imported.dropped:
        lines.append("Not imported:")
        lines.extend(f"  {key}: {why}" for key, why in imported.dropped)
    return lines


def toml_text(doc: dict[str, Any], imported: Imported, warnings: list[Problem]) -> str:
    """The config as TOML: header comment, and each validation warning as a comment above its key."""
    from loratrain.toml_text import dumps

    comments: dict[str, list[str]] = {}
    header = header_lines(imported)
    loose: list[str] = []
    for w in warnings:
        text = f"warning: {w.message}" + (f" ({w.fix})" if w.fix else "")
        key = w.key
        while key and not _has_key(doc, key):
            key = key.rpartition(".")[0]  # fall back to the table that holds it
        if key:
            comments.setdefault(key, []).append(text)
        else:
            loose.append(text)
    if loose:
        header.extend(loose)
    return dumps(doc, header=header, comments=comments)


def _has_key(doc: dict[str, Any], dotted: str) -> bool:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
