"""Carry-over of a kohya_ss GUI JSON: paths, sample prompts, additional_parameters, the accelerate launch
options, and a note for every key not carried (importers/kohya_gui.py calls these after the translation)."""

from __future__ import annotations

from typing import Any

from loratrain.errors import ConfigError
from loratrain.importers.accelerate_argv import parse_accelerate
from loratrain.importers.kohya_gui_fields import (
    BOOKKEEPING,
    FIELD_DEFAULTS,
    NOT_PASSED_FOR_SDXL,
    READ_ELSEWHERE,
    RENAMED_ON_LOAD,
    SAME_NAME,
)
from loratrain.importers.kohya_gui_read import Reader, is_off
from loratrain.importers.sd_argv import parse_script_argv

_PATH_KEYS = {
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
}


def carry_paths(r: Reader, config: dict[str, Any]) -> None:
    args = r.imported.script_args
    default_equal: list[str] = []
    for dest, value in config.items():
        if dest == "pretrained_model_name_or_path" and "pretrained_model_name_or_path" in r.defaulted:
            r.drop(
                dest,
                f"the JSON has none, so the GUI would pass its field's default {value!r} (an SD 1.5 "
                "model); set the SDXL model yourself",
            )
            continue
        if dest == "clip_skip":
            r.drop(
                "clip_skip", f"the GUI passes clip_skip = {value}, which SDXL training ignores (sd-scripts only warns)"
            )
            continue
        if dest == "max_token_length" and value == 75:
            continue  # the GUI's 75 tokens are sd-scripts' default length (and 75 is no valid flag value)
        if dest == "wandb_run_name" and r.fields["log_with"] not in ("wandb", "all"):
            continue  # always passed, but sd-scripts reads it only when logging to wandb
        if dest == "wandb_run_name" and not r.fields["wandb_run_name"]:
            r.note(f"logging to wandb: the GUI names the run after output_name ({value!r})", key="wandb_run_name")
        if dest in ("network_module", "network_args"):
            args[dest] = value
            continue
        spec = r.flags.get(dest)
        if spec is None:
            r.drop(dest, "the GUI passes it, but sd-scripts has no such argument")
            continue
        converted = r.typed(dest, value, dest)
        if converted is None:
            continue
        if converted == spec.default and dest not in _PATH_KEYS and spec.kind != "store_true":
            default_equal.append(dest)
            continue  # sd-scripts' own default: the run is the same without it
        args[dest] = converted
    if default_equal:
        r.note(
            "passed by the GUI with sd-scripts' own default value, so left out (the same run): "
            + ", ".join(default_equal)
        )


def carry_sample_prompts(r: Reader) -> None:
    text = r.fields["sample_prompts"]
    if isinstance(text, str) and text.strip():
        r.drop("sample_prompts", "prompt text, not a file (the GUI writes it to OUTPUT_DIR/sample/prompt.txt)")
        r.note(
            "the GUI stores sample prompts as text; loratrain needs a prompt file",
            key="sample_prompts",
            fix="save the prompts to a file and set sampling.sample_prompts to its path",
        )


def note_unused_keys(r: Reader) -> None:
    """Name every set value of the JSON that no step above carries."""
    consumed = set(SAME_NAME) | READ_ELSEWHERE | set(RENAMED_ON_LOAD) | BOOKKEEPING
    dropped_keys = {key.split(".")[-1] for key, _ in r.imported.dropped}
    bookkeeping, other = [], []
    for key, value in r.data.items():
        if key in dropped_keys:
            continue
        if key in BOOKKEEPING:
            bookkeeping.append(key)
        elif key not in FIELD_DEFAULTS and key not in consumed:
            other.append(key)  # not a LoRA-tab field at all: named whatever its value
        elif is_off(value) and not isinstance(value, list):
            continue
        elif key in NOT_PASSED_FOR_SDXL:
            r.drop(key, NOT_PASSED_FOR_SDXL[key])
        elif key not in consumed:
            other.append(key)
    for key in other:
        r.drop(key, "not a setting the GUI's LoRA tab passes to sdxl_train_network.py")
    if bookkeeping:
        r.note(f"not imported (the GUI's own bookkeeping): {', '.join(bookkeeping)}")


def carry_additional(r: Reader) -> None:
    extra = r.fields["additional_parameters"]
    if not isinstance(extra, str):
        r.error("additional_parameters", f"must be text, not {extra!r}")
        return
    if not extra.strip():
        return
    if "'" in extra:
        r.note(
            "additional_parameters holds single quotes; the GUI passes them on as part of the words",
            key="additional_parameters",
        )
    tokens = extra.replace('"', "").split()  # how the GUI splits it
    try:
        parsed = parse_script_argv(tokens, f"{r.source}: additional_parameters")
    except ConfigError as exc:
        r.errors.extend(exc.problems)
        return
    r.imported.notes.extend(parsed.notes)
    r.imported.script_args.update(parsed.values)  # on the command line after --config_file: they win


def carry_accelerate(r: Reader) -> None:
    f = r.fields
    acc = r.imported.accelerate
    for key in ("num_cpu_threads_per_process", "num_processes", "num_machines", "main_process_port"):
        number = r.num(key)
        if number > 0:
            acc[key] = int(number)
    if r.boolean("multi_gpu"):
        acc["multi_gpu"] = True
    if not isinstance(f["gpu_ids"], str):
        r.error("gpu_ids", f'must be text such as "0,1", not {f["gpu_ids"]!r}')
    elif f["gpu_ids"].strip():
        acc["gpu_ids"] = f["gpu_ids"].strip()
    if f["mixed_precision"]:
        acc["mixed_precision"] = f["mixed_precision"]
    if f["dynamo_backend"] not in ("", "no"):
        acc["dynamo_backend"] = f["dynamo_backend"]
    dropped = []
    if f["dynamo_mode"] not in ("", "default") and f["dynamo_backend"] not in ("", "no"):
        dropped.append("dynamo_mode")
    for key in ("dynamo_use_fullgraph", "dynamo_use_dynamic"):
        if f[key] is True:
            dropped.append(key)
    extra = f["extra_accelerate_launch_args"]
    if isinstance(extra, str) and extra.strip():
        values, problems = parse_accelerate(extra.replace('"', "").split(), r.source)
        acc.update(values)
        for p in problems:
            r.drop("extra_accelerate_launch_args", p.message)
    for key in dropped:
        r.drop(key, "an accelerate setting loratrain's [accelerate] table does not carry")
