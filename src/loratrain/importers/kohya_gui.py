"""Import a kohya_ss GUI LoRA config (the JSON its "Save" button and `presets/lora/*.json` hold).

The aim is the flags the GUI would have passed to sdxl_train_network.py for that JSON. Our own mapping, from
reading the GUI's behaviour:
- numbers are often stored as strings ("12345"), and "" means "not set";
- the GUI drops every value that is "", false or 0 before writing its sd-scripts config (0 == False in
  Python), except max_data_loader_n_workers; we do the same, so a 0 here means "sd-scripts' default";
- GUI-level keys become sd-scripts arguments: LoRA_type (+ conv_dim, conv_alpha, algo fields, ...) ->
  network_module and network_args; optimizer -> optimizer_type; max_resolution -> resolution; lr_warmup (a
  percentage) -> lr_warmup_steps as a ratio; epoch -> max_train_epochs (the GUI turns it into a step count
  by scanning the image folders); noise_offset_type picks the noise keys; xformers picks the attention;
  sdxl_* keys; additional_parameters is parsed as extra command-line flags (they win, as on the GUI's
  command line); the accelerate fields go to [accelerate];
- keys with no sd-scripts meaning are reported, not dropped silently.
"""

from __future__ import annotations

import json
import math
import shlex
from typing import Any

from loratrain.importers.accelerate_argv import parse_accelerate
from loratrain import untrusted
from loratrain.errors import ConfigError, Problem
from loratrain.importers import Imported
from loratrain.importers.sd_argv import flag_table, parse_script_argv

# LyCORIS algorithms by GUI LoRA_type, and the GUI fields each one passes as network_args (in GUI order).
_LYCORIS: dict[str, tuple[str, tuple[str, ...]]] = {
    "LyCORIS/LoCon": ("locon", ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "bypass_mode",
                                "dora_wd", "module_dropout", "use_scalar", "rank_dropout_scale", "train_norm")),
    "LoCon": ("locon", ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "bypass_mode",
                        "dora_wd", "module_dropout", "use_scalar", "rank_dropout_scale", "train_norm")),
    "LyCORIS/LoHa": ("loha", ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "bypass_mode",
                              "dora_wd", "module_dropout", "use_scalar", "rank_dropout_scale", "train_norm")),
    "LyCORIS/LoKr": ("lokr", ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "bypass_mode",
                              "dora_wd", "module_dropout", "factor", "use_cp", "use_scalar", "decompose_both",
                              "rank_dropout_scale", "train_norm")),
    "LyCORIS/iA3": ("ia3", ("preset", "conv_dim", "conv_alpha", "train_on_input")),
    "LyCORIS/DyLoRA": ("dylora", ("preset", "conv_dim", "conv_alpha", "use_tucker", "block_size", "rank_dropout",
                                  "module_dropout", "train_norm")),
    "LyCORIS/GLoRA": ("glora", ("preset", "conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "module_dropout",
                                "rank_dropout_scale", "train_norm")),
    "LyCORIS/BOFT": ("boft", ("preset", "conv_dim", "conv_alpha", "module_dropout", "use_tucker", "rank_dropout",
                              "rank_dropout_scale", "train_norm")),
    "LyCORIS/Diag-OFT": ("diag-oft", ("preset", "conv_dim", "conv_alpha", "module_dropout", "use_tucker",
                                      "rank_dropout", "rank_dropout_scale", "constraint", "rescaled", "train_norm")),
    "LyCORIS/Native Fine-Tuning": ("full", ("preset", "rank_dropout", "module_dropout", "rank_dropout_scale",
                                            "train_norm")),
}
# GUI fields LyCORIS 4.1.3's create_network does not read (reported when they are on, never passed)
_LYCORIS_UNREAD = {
    "use_cp": "LyCORIS 4.1.3 replaced it with use_tucker; set network_args.use_tucker = true for the same effect",
    "train_on_input": "LyCORIS 4.1.3's create_network does not read it",
}
# network_args name -> GUI field, where they differ
_GUI_FIELD = {"preset": "LyCORIS_preset", "block_size": "unit", "constraint": "constrain"}
# the GUI's widget defaults, used when a (hand-written or older) JSON lacks a field
_GUI_DEFAULTS: dict[str, Any] = {
    "LyCORIS_preset": "full", "conv_dim": 1, "conv_alpha": 1, "use_tucker": False, "use_scalar": False,
    "rank_dropout": 0, "module_dropout": 0, "rank_dropout_scale": False, "train_norm": False,
    "bypass_mode": False, "dora_wd": False, "factor": -1, "use_cp": False, "decompose_both": False,
    "constrain": 0.0, "rescaled": False, "train_on_input": True, "unit": 1,
}
# kohya's own network modules; the block-weight fields they pass only when set
_KOHYA_BLOCK_FIELDS = ("down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_lr_zero_threshold", "block_dims",
                       "block_alphas", "conv_block_dims", "conv_block_alphas", "rank_dropout", "module_dropout")
_KOHYA_MODULES = {"Standard": "networks.lora", "Kohya LoCon": "networks.lora", "LoRA-FA": "networks.lora_fa",
                  "Kohya DyLoRA": "networks.dylora", "Kohya LoHa": "networks.loha", "Kohya LoKr": "networks.lokr"}
_NOT_SDXL_TYPES = {"Flux1", "Flux1 OFT", "Anima", "Lumina", "HunyuanImage-2.1"}

# GUI fields used to build network_args or other values (not reported as unknown)
_CONSUMED = set(_GUI_DEFAULTS) | set(_KOHYA_BLOCK_FIELDS) | {
    "LoRA_type", "optimizer", "max_resolution", "lr_warmup", "lr_warmup_steps", "epoch", "noise_offset_type",
    "xformers", "sdxl", "sdxl_no_half_vae", "sdxl_cache_text_encoder_outputs", "lora_network_weights",
    "additional_parameters", "loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio",
    "num_cpu_threads_per_process", "num_processes", "num_machines", "multi_gpu", "gpu_ids", "main_process_port",
    "dynamo_backend", "dynamo_mode", "dynamo_use_fullgraph", "dynamo_use_dynamic", "extra_accelerate_launch_args",
    "conv_dims", "conv_alphas", "sample_prompts", "max_token_length", "lr_scheduler_num_cycles",
    "noise_offset", "adaptive_noise_scale", "noise_offset_random_strength", "multires_noise_iterations",
    "multires_noise_discount", "text_encoder_lr", "unet_lr", "mixed_precision", "optimizer_args",
    "lr_scheduler_args", "stop_text_encoder_training", "stop_text_encoder_training_pct", "v2",
}
# the GUI passes these only when true/non-zero anyway, or they are GUI bookkeeping with no sd-scripts meaning
_GUI_ONLY_NOTE = "GUI setting with no sd-scripts argument"


def _unset(value: Any) -> bool:
    """The GUI's filter: "", None, False and 0 are not passed."""
    return value is None or value == "" or value is False or (isinstance(value, (int, float)) and value == 0)


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None  # NaN, Infinity, 1e400: no setting takes them
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    return None


class _Reader:
    def __init__(self, data: dict[str, Any], source: str):
        self.data = data
        self.source = source
        self.errors: list[Problem] = []
        self.imported = Imported(source=source, kind="kohya_ss GUI config")
        self.flags = flag_table()

    def get(self, key: str) -> Any:
        return self.data.get(key, _GUI_DEFAULTS.get(key))

    def error(self, key: str, message: str, fix: str = "") -> None:
        self.errors.append(Problem(message, key=key, file=self.source, fix=fix, value=self.data.get(key)))

    def note(self, message: str, key: str = "", fix: str = "") -> None:
        self.imported.notes.append(Problem(message, key=key, file=self.source, fix=fix, severity="warning"))

    def typed(self, dest: str, value: Any, gui_key: str | None = None) -> Any:
        """A GUI value converted to the type of sd-scripts' `dest`, or None when unset or wrong (error noted)."""
        gui_key = gui_key or dest
        spec = self.flags[dest]
        if _unset(value):
            return None
        if spec.kind == "store_true":
            if isinstance(value, bool) or isinstance(value, (int, float)):
                return True if value else None
            self.error(gui_key, f"must be true or false, not {value!r}")
            return None
        if spec.kind == "list":
            items = value if isinstance(value, list) else str(value).replace('"', "").split()
            out = []
            for item in items:
                converted = self._scalar(spec, item, gui_key)
                if converted is None:
                    return None
                out.append(converted)
            return out or None
        converted = self._scalar(spec, value, gui_key)
        # the GUI filters after its own int()/float() conversions, so "0" is dropped like 0
        return None if _unset(converted) else converted

    def _scalar(self, spec: Any, value: Any, gui_key: str) -> Any:
        if spec.type in ("int", "float", "int_or_float"):
            number = _number(value)
            if number is None:
                self.error(gui_key, f"must be a number, not {value!r}")
                return None
            if spec.type == "int":
                if float(number) != int(number):
                    self.error(gui_key, f"must be a whole number, not {value!r}")
                    return None
                number = int(number)
            elif spec.type == "float":
                number = float(number)
            elif isinstance(number, float) and number >= 1:
                if number != int(number):
                    self.error(gui_key, f"{value!r}: a float here must be a ratio below 1")
                    return None
                number = int(number)
            value = number
        else:
            value = str(value)
        if spec.choices and value not in spec.choices:
            allowed = ", ".join(str(c) for c in spec.choices if c is not None)
            self.error(gui_key, f"{value!r} is not one of: {allowed}")
            return None
        return value

    def put(self, dest: str, value: Any, gui_key: str | None = None) -> None:
        converted = self.typed(dest, value, gui_key)
        if converted is not None:
            self.imported.script_args[dest] = converted


def _format_arg(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
        raise ConfigError([Problem("expected a JSON object ({...}) of GUI settings", file=source)])
    r = _Reader(data, source)
    args = r.imported.script_args

    # the model family: loratrain runs sdxl_train_network.py only
    lora_type = data.get("LoRA_type", "Standard")
    if data.get("sdxl") is False or lora_type in _NOT_SDXL_TYPES or data.get("v2") is True:
        r.error(
            "sdxl",
            f"this GUI config is not for SDXL (sdxl={data.get('sdxl')!r}, LoRA_type={lora_type!r})",
            fix="loratrain trains SDXL; import an SDXL LoRA config",
        )
    elif "sdxl" not in data:
        r.note("the config has no 'sdxl' key; imported as an SDXL config", key="sdxl")

    # plain keys that are sd-scripts arguments under the same name
    gui_only: list[str] = []
    for key, value in data.items():
        if key in _CONSUMED:
            continue
        if key in r.flags and r.flags[key].kind != "help":
            r.put(key, value)
        else:
            gui_only.append(key)
    # the GUI always passes the worker count, even 0
    if "max_data_loader_n_workers" in data:
        workers = _number(data["max_data_loader_n_workers"])
        if workers is not None:
            args["max_data_loader_n_workers"] = int(workers)

    _network(r, lora_type)
    _renamed(r)
    _learning_rates(r)
    _schedule(r)
    _noise(r)
    _accelerate(r)

    if gui_only:
        for key in gui_only:
            r.imported.dropped.append((key, _GUI_ONLY_NOTE))
        r.note(f"not imported ({_GUI_ONLY_NOTE}): {', '.join(gui_only)}")

    extra = data.get("additional_parameters") or ""
    if isinstance(extra, str) and extra.strip():
        try:
            parsed = parse_script_argv(shlex.split(extra), f"{source}: additional_parameters")
        except (ConfigError, ValueError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [Problem(str(exc), key="additional_parameters")]
            r.errors.extend(problems)
        else:
            r.imported.notes.extend(parsed.notes)
            args.update(parsed.values)

    if r.errors:
        raise ConfigError(r.errors)
    return r.imported


def _network(r: _Reader, lora_type: str) -> None:
    items: list[str] = []
    if lora_type in _LYCORIS:
        algo, fields = _LYCORIS[lora_type]
        r.imported.script_args["network_module"] = "lycoris.kohya"
        for name in fields:
            value = r.get(_GUI_FIELD.get(name, name))
            if name in _LYCORIS_UNREAD:
                if value is True:
                    r.imported.dropped.append((name, _LYCORIS_UNREAD[name]))
                continue
            if name == "decompose_both" and value is not True:
                r.note(
                    "the GUI passes decompose_both=False, which LyCORIS 4.1.3 reads as on (any text is on); "
                    "imported as off, as the setting says",
                    key="decompose_both",
                )
            items.append(f"{name}={_format_arg(value)}")
        items.append(f"algo={algo}")
    elif lora_type in _KOHYA_MODULES:
        r.imported.script_args["network_module"] = _KOHYA_MODULES[lora_type]
        if lora_type in ("Kohya LoHa", "Kohya LoKr"):
            conv_dim = _number(r.get("conv_dim")) or 0
            if conv_dim > 0:
                items.append(f"conv_dim={int(conv_dim)}")
                items.append(f"conv_alpha={_format_arg(_number(r.get('conv_alpha')))}")
            if r.get("use_tucker") is True:
                items.append("use_tucker=True")
            factor = _number(r.get("factor"))
            if lora_type == "Kohya LoKr" and factor is not None and int(factor) != -1:
                items.append(f"factor={int(factor)}")
            for name in ("rank_dropout", "module_dropout"):
                if (_number(r.get(name)) or 0) > 0:
                    items.append(f"{name}={_format_arg(r.get(name))}")
        else:
            if lora_type == "Kohya LoCon":
                items += [f"conv_dim={_format_arg(r.get('conv_dim'))}", f"conv_alpha={_format_arg(r.get('conv_alpha'))}"]
            fields = _KOHYA_BLOCK_FIELDS
            if lora_type == "Kohya DyLoRA":
                fields = ("conv_dim", "conv_alpha") + fields + ("unit",)
            for name in fields:
                value = r.data.get(name)
                if not _unset(value):
                    items.append(f"{name}={_format_arg(value)}")
    else:
        r.error("LoRA_type", f"unknown LoRA_type {lora_type!r}", fix="use one of: " + ", ".join([*_KOHYA_MODULES, *_LYCORIS]))
        return
    for name in ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio"):
        if not _unset(r.data.get(name)):
            items.append(f"{name}={_format_arg(r.data[name])}")
    if items:
        r.imported.script_args["network_args"] = items


def _renamed(r: _Reader) -> None:
    """GUI keys that are one sd-scripts argument under another name."""
    d = r.data
    r.put("optimizer_type", d.get("optimizer"), "optimizer")
    r.put("resolution", d.get("max_resolution"), "max_resolution")
    r.put("network_weights", d.get("lora_network_weights"), "lora_network_weights")
    if d.get("sdxl_no_half_vae"):
        r.imported.script_args["no_half_vae"] = True
    if d.get("sdxl_cache_text_encoder_outputs"):
        r.imported.script_args["cache_text_encoder_outputs"] = True
    attention = d.get("xformers")
    if attention is True or attention == "xformers":
        r.imported.script_args["xformers"] = True
    elif attention == "sdpa":
        r.imported.script_args["sdpa"] = True
    r.put("mixed_precision", d.get("mixed_precision"))
    r.put("optimizer_args", d.get("optimizer_args"))
    r.put("lr_scheduler_args", d.get("lr_scheduler_args"))
    token_length = _number(d.get("max_token_length"))
    if token_length == 75:
        pass  # the GUI's default; sd-scripts' default is the same 75 tokens (and 75 is not a valid flag value)
    else:
        r.put("max_token_length", d.get("max_token_length"))
    if not _unset(d.get("sample_prompts")):
        r.imported.dropped.append(("sample_prompts", "prompt text, not a file"))
        r.note(
            "the GUI stores sample prompts as text; loratrain needs a prompt file",
            key="sample_prompts",
            fix="save the prompts to a file and set sampling.sample_prompts to its path",
        )
    for key in ("stop_text_encoder_training", "stop_text_encoder_training_pct"):
        if not _unset(d.get(key)):
            r.imported.dropped.append((key, "not supported by the GUI either"))
            r.note("not imported: the GUI ignores it too", key=key)


def _learning_rates(r: _Reader) -> None:
    d = r.data
    args = r.imported.script_args
    te = _number(d.get("text_encoder_lr")) or 0
    unet = _number(d.get("unet_lr")) or 0
    if te:
        args["text_encoder_lr"] = float(te)
    if unet:
        args["unet_lr"] = float(unet)
    # the GUI decides what to train from the two rates
    if te == 0 and unet != 0:
        args["network_train_unet_only"] = True
    elif te != 0 and unet == 0:
        args["network_train_text_encoder_only"] = True


def _schedule(r: _Reader) -> None:
    d = r.data
    args = r.imported.script_args
    epoch = _number(d.get("epoch")) or 0
    if "max_train_epochs" not in args and "max_train_steps" not in args and epoch:
        args["max_train_epochs"] = int(epoch)
        r.note(
            f"epoch = {int(epoch)} became max_train_epochs (the GUI turns it into a step count from the image folders)",
            key="epoch",
        )
    cycles = d.get("lr_scheduler_num_cycles")
    r.put("lr_scheduler_num_cycles", epoch if cycles in ("", None) else cycles, "lr_scheduler_num_cycles")
    steps = _number(d.get("lr_warmup_steps")) or 0
    percent = _number(d.get("lr_warmup")) or 0
    if steps > 0:
        args["lr_warmup_steps"] = int(steps)
        if percent:
            r.note("both lr_warmup and lr_warmup_steps are set; lr_warmup_steps wins, as in the GUI", key="lr_warmup")
    elif percent:
        ratio = percent / 100
        if ratio >= 1:
            r.error("lr_warmup", f"{percent}% warmup is the whole run or more", fix="use a percentage below 100")
        else:
            args["lr_warmup_steps"] = ratio


def _noise(r: _Reader) -> None:
    d = r.data
    kind = d.get("noise_offset_type", "Original")
    unused = ("noise_offset", "adaptive_noise_scale") if kind == "Multires" else ("multires_noise_iterations",)
    for key in unused:
        if not _unset(_number(d.get(key)) or 0):
            r.imported.dropped.append((key, f"the GUI does not pass it with noise_offset_type = {kind!r}"))
    if kind == "Multires":
        r.put("multires_noise_iterations", d.get("multires_noise_iterations"))
        r.put("multires_noise_discount", d.get("multires_noise_discount"))
    else:
        r.put("noise_offset", d.get("noise_offset"))
        r.put("adaptive_noise_scale", d.get("adaptive_noise_scale"))
        r.put("noise_offset_random_strength", d.get("noise_offset_random_strength"))


def _accelerate(r: _Reader) -> None:
    d = r.data
    acc = r.imported.accelerate
    for key in ("num_cpu_threads_per_process", "num_processes", "num_machines", "main_process_port"):
        number = _number(d.get(key))
        if number is not None and number > 0:
            acc[key] = int(number)
    if d.get("multi_gpu") is True:
        acc["multi_gpu"] = True
    if isinstance(d.get("gpu_ids"), str) and d["gpu_ids"].strip():
        acc["gpu_ids"] = d["gpu_ids"].strip()
    if d.get("mixed_precision") in ("no", "fp16", "bf16", "fp8"):
        acc["mixed_precision"] = d["mixed_precision"]
    if d.get("dynamo_backend") not in (None, "", "no"):
        acc["dynamo_backend"] = d["dynamo_backend"]
    dropped = []
    if d.get("dynamo_mode") not in (None, "", "default"):
        dropped.append("dynamo_mode")
    for key in ("dynamo_use_fullgraph", "dynamo_use_dynamic"):
        if d.get(key) is True:
            dropped.append(key)
    extra = d.get("extra_accelerate_launch_args") or ""
    if isinstance(extra, str) and extra.strip():
        values, problems = parse_accelerate(extra.replace('"', "").split(), r.source)
        acc.update(values)
        if problems:
            dropped.append("extra_accelerate_launch_args (partly)")
            for p in problems:
                r.note(p.message, key="extra_accelerate_launch_args")
    for key in dropped:
        r.imported.dropped.append((key, "accelerate setting loratrain's [accelerate] table does not carry"))
    if dropped:
        r.note(f"not imported (accelerate settings the [accelerate] table does not carry): {', '.join(dropped)}")
