"""Import a kohya_ss GUI LoRA config (the JSON its "Save" button and `presets/lora/*.json` hold).

The aim is what the GUI itself passes to sd-scripts for that JSON, not the JSON's face value. Our reading of
the GUI (bmaltais/kohya_ss at kohya_gui_fields.GUI_COMMIT), in the order it happens there:
1. opening the file: a missing or null key keeps the widget's starting value (kohya_gui_fields.FIELD_DEFAULTS,
   e.g. max_bucket_reso 2048, caption_extension ".txt", xformers on); a few keys are converted
   (LOAD_CONVERSIONS: "" becomes 0 epochs, 1 scheduler cycle, ...); old keys are renamed;
2. pressing "Start training": the model checkboxes pick the script (`sdxl` off runs train_network.py, which
   loratrain refuses), LoRA_type builds network_module and network_args, the two learning rates pick what
   is trained, the warm-up percentage becomes a ratio (or steps), epochs become a step count when no step
   count is set, and every value that is "", False, None or 0 is dropped before the rest is written to a
   `--config_file` TOML (max_data_loader_n_workers is always kept);
3. additional_parameters go on the command line after it (quotes removed, split on spaces), so they win.
The result is what LyCORIS / sd-scripts then read: where LyCORIS 4.1.3 reads a GUI value differently from its
face (use_cp, decompose_both), the import carries what the run did, and the notes say so. Every value that is
not carried over is named in the notes.
"""

from __future__ import annotations

import json
from typing import Any

from loratrain import untrusted
from loratrain.errors import ConfigError, Problem
from loratrain.importers import FOREIGN, Imported
from loratrain.importers.kohya_gui_carry import (
    carry_accelerate,
    carry_additional,
    carry_paths,
    carry_sample_prompts,
    note_unused_keys,
)
from loratrain.importers.kohya_gui_fields import (
    BLOCK_FIELDS,
    GUI_COMMIT,
    GUI_FIELD,
    KOHYA_MODULES,
    LORAPLUS,
    LYCORIS,
    LYCORIS_UNREAD,
    NON_SDXL_LORA_TYPES,
    OTHER_MODEL_SCRIPTS,
    SAME_NAME,
)
from loratrain.importers.kohya_gui_read import Reader, as_text, check_tab, is_off, refuse
from loratrain.sdscripts import flags


def _model_family(r: Reader) -> None:
    f = r.fields
    lora_type = f["LoRA_type"]
    others = [k for k in OTHER_MODEL_SCRIPTS if f[k] is True]
    if f["sdxl"] is not True:
        script = OTHER_MODEL_SCRIPTS[others[0]] if others else "train_network.py"
        why = (
            "has no 'sdxl' key (the GUI's SDXL checkbox starts off)"
            if "sdxl" in r.defaulted
            else f"has sdxl = {r.data.get('sdxl')!r}"
        )
        family = "" if others else " (Stable Diffusion 1.x/2.x)"
        r.error(
            "sdxl",
            f"this GUI config {why}, so the GUI runs {script}{family} for it, not sdxl_train_network.py",
            'loratrain trains SDXL only; tick SDXL in the GUI and save again, or set "sdxl": true if the '
            "config really is for an SDXL model",
        )
        return
    if others:
        r.error(
            others[0],
            f"the config ticks SDXL and {', '.join(others)} at once; the GUI's checks do not let it train like that",
            "keep only the SDXL checkbox",
        )
    if lora_type in NON_SDXL_LORA_TYPES:
        r.error(
            "LoRA_type",
            f"LoRA_type {lora_type!r} is for another model family; the GUI refuses it with SDXL",
            "pick an SDXL LoRA type (Standard, LyCORIS/..., Kohya LoCon, ...)",
        )
    if f["v2"] is True:
        r.error("v2", "v2 (Stable Diffusion 2.x) with SDXL: sd-scripts' SDXL training stops on --v2", "set v2 to false")


def _network(r: Reader, config: dict[str, Any]) -> None:
    f = r.fields
    lora_type = f["LoRA_type"]
    items: list[str] = []
    if lora_type in LYCORIS:
        algo, names = LYCORIS[lora_type]
        config["network_module"] = "lycoris.kohya"
        passed = {name: f[GUI_FIELD.get(name, name)] for name in names}
        for name, value in passed.items():
            if name in LYCORIS_UNREAD:
                if value not in (False, None, ""):
                    r.drop(f"network_args.{name}", LYCORIS_UNREAD[name])
                continue
            if name == "use_cp":
                continue  # folded into use_tucker below
            if name == "use_tucker" and "use_cp" in passed:
                # LyCORIS 4.1.3 copies use_cp onto use_tucker (a deprecated spelling), so use_cp decides
                tucker = passed["use_cp"] is True
                if tucker != (value is True):
                    r.note(
                        f"the GUI passes use_cp={passed['use_cp']} and use_tucker={value}; LyCORIS 4.1.3 reads "
                        f"use_cp as use_tucker, so the run had Tucker {'on' if tucker else 'off'} for the convs: "
                        f"imported as use_tucker = {str(tucker).lower()}",
                        key="use_cp",
                    )
                items.append(f"use_tucker={tucker}")
                continue
            if name == "decompose_both":
                if value is not True:
                    r.note(
                        "the GUI passes decompose_both=False, which LyCORIS 4.1.3 reads as on (any text is on), "
                        "so the GUI's run had it on: imported as decompose_both = true",
                        key="decompose_both",
                        fix="set it to false to really turn it off",
                    )
                items.append("decompose_both=True")
                continue
            items.append(f"{name}={as_text(value)}")
        items.append(f"algo={algo}")
    elif lora_type in KOHYA_MODULES:
        config["network_module"] = KOHYA_MODULES[lora_type]
        if lora_type in ("Kohya LoHa", "Kohya LoKr"):
            conv_dim = r.num("conv_dim")
            if conv_dim > 0:
                items.append(f"conv_dim={int(conv_dim)}")
                alpha = r.num("conv_alpha")
                items.append(f"conv_alpha={int(alpha) if float(alpha) == int(alpha) else alpha}")
            if f["use_tucker"] is True:
                items.append("use_tucker=True")
            if lora_type == "Kohya LoKr" and int(r.num("factor")) != -1:
                items.append(f"factor={int(r.num('factor'))}")
            for name in ("rank_dropout", "module_dropout"):
                if r.num(name) > 0:
                    items.append(f"{name}={as_text(f[name])}")
        else:
            if lora_type == "Kohya LoCon":
                items += [f"conv_dim={as_text(f['conv_dim'])}", f"conv_alpha={as_text(f['conv_alpha'])}"]
            names = BLOCK_FIELDS
            if lora_type == "Kohya DyLoRA":
                names = ("conv_dim", "conv_alpha", *BLOCK_FIELDS, "unit")
            for name in names:
                if not is_off(f[name]):
                    items.append(f"{name}={as_text(f[name])}")
    else:
        r.error("LoRA_type", f"unknown LoRA_type {lora_type!r}", "use one of: " + ", ".join([*KOHYA_MODULES, *LYCORIS]))
        return
    for name in LORAPLUS:
        if not is_off(f[name]):
            items.append(f"{name}={as_text(f[name])}")
    # the GUI strips double quotes and splits on spaces: a value with a space becomes two items
    config["network_args"] = " ".join(items).replace('"', "").split() or None


def _rates(r: Reader, config: dict[str, Any]) -> None:
    te, unet, t5 = r.num("text_encoder_lr"), r.num("unet_lr"), r.num("t5xxl_lr")
    lr = r.num("learning_rate")
    if te == 0 and t5 > 0:
        r.error(
            "t5xxl_lr",
            "the GUI refuses a T5XXL learning rate without a text encoder rate",
            "set text_encoder_lr too, or t5xxl_lr to 0",
        )
    if lr == 0 and te == 0 and unet == 0:
        r.error("learning_rate", "all learning rates are 0; the GUI refuses to start", "set learning_rate")
    if te > 0:
        # one rate per SDXL text encoder; the GUI gives the second one t5xxl_lr when that is set
        config["text_encoder_lr"] = [float(te), float(t5 if t5 > 0 else te)]
        if t5 > 0:
            r.note(
                f"t5xxl_lr = {t5}: the GUI passes it as the second text encoder's rate (text_encoder_lr = "
                f"[{float(te)}, {float(t5)}])",
                key="t5xxl_lr",
            )
    config["unet_lr"] = float(unet) if unet else None
    config["learning_rate"] = float(lr)
    config["network_train_unet_only"] = te == 0 and unet != 0
    config["network_train_text_encoder_only"] = te != 0 and unet == 0


def _schedule(r: Reader, config: dict[str, Any]) -> None:
    f = r.fields
    epoch = int(r.num("epoch"))
    max_steps = int(r.num("max_train_steps"))
    max_epochs = int(r.num("max_train_epochs"))
    percent, steps = r.num("lr_warmup"), r.num("lr_warmup_steps")
    if f["lr_scheduler"] == "constant" and (percent or steps):
        r.drop(
            "lr_warmup" if percent else "lr_warmup_steps",
            "the GUI sets the warm-up to 0 when lr_scheduler is constant (sd-scripts refuses warm-up there)",
        )
        percent = steps = 0
    if f["stop_text_encoder_training"] not in (0, "", None):
        r.drop("stop_text_encoder_training", 'the GUI ignores it ("not yet supported")')
    config["max_train_epochs"] = max_epochs or None
    if max_epochs:
        r.note(
            f"max_train_epochs = {max_epochs}: sd-scripts trains that many epochs (it overrides any step count "
            "the GUI passes)",
            key="max_train_epochs",
        )
    if f["dataset_config"]:
        config["max_train_steps"] = max_steps or None
        if max_steps > 0 and steps <= 0 and percent:
            steps, percent = round(percent * max_steps / 100), 0  # the GUI turns the percentage into steps here
        elif max_steps <= 0:
            steps = 0
        if not max_epochs:
            r.note(
                ("the GUI passes max_train_steps = " + str(max_steps))
                if max_steps
                else "with a dataset_config the GUI passes no step count and ignores epoch, so sd-scripts trains "
                f"its default {flags.default('max_train_steps')} steps",
                key="max_train_steps",
            )
    elif max_steps > 0:
        config["max_train_steps"] = max_steps
        if not max_epochs:
            if "max_train_steps" in r.defaulted:
                r.note(
                    f"the JSON has no max_train_steps, so the GUI passes its field's default, {max_steps} steps; "
                    f"epoch = {epoch} is not used",
                    key="max_train_steps",
                    fix="set training.max_train_epochs instead to train by epochs",
                )
            else:
                r.note(
                    f"the GUI passes max_train_steps = {max_steps}; epoch = {epoch} is not used", key="max_train_steps"
                )
    elif not max_epochs:
        if epoch > 0:
            # the GUI counts images x repeats in train_data_dir's N_name folders and passes
            # ceil(images / batch / gradient accumulation * epoch * (2 with reg images)) steps;
            # sd-scripts derives the same step count from max_train_epochs over the same folders
            config["max_train_epochs"] = epoch
            r.note(
                f"max_train_steps is {'empty' if 'max_train_steps' not in r.defaulted else 'unset'}, so the GUI "
                f"counts the images in train_data_dir and passes {epoch} epoch(s) as a step count; imported "
                f"as max_train_epochs = {epoch}, which sd-scripts turns into steps from the same folders",
                key="epoch",
            )
        else:
            r.note(
                f"no step or epoch count: sd-scripts trains its default {flags.default('max_train_steps')} steps",
                key="epoch",
            )
    if steps > 0:
        config["lr_warmup_steps"] = int(steps)
        if percent > 0:
            r.drop("lr_warmup", "lr_warmup_steps is set too, and the GUI lets it win")
    elif percent != 0:
        if percent >= 100:
            r.error("lr_warmup", f"{percent}% warm-up is the whole run or more", "use a percentage below 100")
        else:
            config["lr_warmup_steps"] = percent / 100
    cycles = int(r.num("lr_scheduler_num_cycles"))
    config["lr_scheduler_num_cycles"] = cycles
    if r.data.get("lr_scheduler_num_cycles") == "":
        r.note("lr_scheduler_num_cycles is empty; the GUI reads that as 1 cycle", key="lr_scheduler_num_cycles")


def _noise(r: Reader, config: dict[str, Any]) -> None:
    f = r.fields
    kind = f["noise_offset_type"]
    original = kind == "Original"
    multires = kind == "Multires"
    if original and not 0 <= r.num("noise_offset") <= 1:
        r.error("noise_offset", "the GUI refuses a noise offset outside 0..1", "use a value between 0 and 1")
    config["noise_offset"] = f["noise_offset"] if original else None
    config["adaptive_noise_scale"] = f["adaptive_noise_scale"] if original else None
    config["noise_offset_random_strength"] = f["noise_offset_random_strength"] if original else None
    config["multires_noise_iterations"] = f["multires_noise_iterations"] if multires else None
    config["multires_noise_discount"] = f["multires_noise_discount"] if multires else None
    unused = ("multires_noise_iterations",) if original else ("noise_offset", "adaptive_noise_scale")
    for key in unused:
        if not is_off(f[key]):
            r.drop(key, f"the GUI does not pass it with noise_offset_type = {kind!r}")


def gui_config(r: Reader) -> dict[str, Any]:
    """The sd-scripts config the GUI writes for this JSON (dest -> value), after its filter."""
    f = r.fields
    config: dict[str, Any] = {key: f[key] for key in SAME_NAME}
    config["resolution"] = f["max_resolution"]
    config["optimizer_type"] = f["optimizer"]
    for dest in ("optimizer_args", "lr_scheduler_args"):
        config[dest] = str(f[dest]).replace('"', "").split() or None  # [] and None read the same in sd-scripts
    config["cache_text_encoder_outputs"] = f["sdxl_cache_text_encoder_outputs"] is True or None
    config["no_half_vae"] = f["sdxl_no_half_vae"] is True or None
    config["xformers"] = f["xformers"] == "xformers" or None
    config["sdpa"] = f["xformers"] == "sdpa" or None
    config["clip_skip"] = f["clip_skip"]
    config["max_token_length"] = int(r.num("max_token_length"))
    config["wandb_run_name"] = f["wandb_run_name"] or f["output_name"]
    if f["train_inpainting"] is True:
        r.drop("train_inpainting", "sdxl_train_network.py at sd-scripts 48d368f has no --train_inpainting")
        config["cache_latents"] = config["cache_latents_to_disk"] = None  # the GUI turns caching off with it
    if f["color_aug"] is True and "cache_latents" not in r.defaulted and f["cache_latents"] is True:
        # ticking color_aug in the GUI unticks cache_latents (they cannot work together)
        config["cache_latents"] = None
        r.note("color_aug is on, and the GUI turns cache_latents off with it", key="cache_latents")
    _network(r, config)
    _rates(r, config)
    _schedule(r, config)
    _noise(r, config)
    out = {k: v for k, v in config.items() if not is_off(v)}
    out["max_data_loader_n_workers"] = int(r.num("max_data_loader_n_workers"))  # passed even when 0
    return out


# -- step 3: into loratrain's terms ---------------------------------------------------------------------------


# what becomes of values the GUI passes that loratrain does not carry as they are
def from_kohya_json(text: str, source: str) -> Imported:
    try:
        data = untrusted.json_loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [Problem(f"not valid JSON: {exc.msg} (column {exc.colno})", file=source, line=exc.lineno)]
        ) from None
    hostile = list(untrusted.hostile_values(data, finite=False))
    if hostile:  # too deep, NUL bytes (non-finite numbers are reported per key below)
        raise ConfigError([Problem(message, key=key, file=source, fix=fix) for key, message, fix in hostile])
    if not isinstance(data, dict):
        raise refuse(source, f"{FOREIGN}: expected a JSON object ({{...}}) of GUI settings")
    check_tab(data, source)
    r = Reader(data, source)
    _model_family(r)
    if r.errors:
        raise ConfigError(r.errors)
    config = gui_config(r)
    carry_paths(r, config)
    carry_sample_prompts(r)
    carry_additional(r)
    carry_accelerate(r)
    note_unused_keys(r)
    if r.errors:
        raise ConfigError(r.errors)
    r.imported.notes.insert(
        0,
        Problem(
            f"read as the kohya_ss GUI (LoRA tab, commit {GUI_COMMIT[:8]}) passes it to "
            "sdxl_train_network.py; keys the JSON lacks take the GUI's field defaults",
            file=source,
            severity="warning",
        ),
    )
    return r.imported
