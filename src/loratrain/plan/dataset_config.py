"""Which folders sd-scripts will train on, with which settings: folder mode or a `dataset_config` file.

Folder mode: every immediate subfolder `N_name` of `train_data_dir` / `reg_data_dir` is a subset with
N repeats and class tokens `name` (no numeric prefix: ignored with a warning; N < 1: ignored).
`dataset_config` (.toml or .json): `[general]`, `[[datasets]]`, `[[datasets.subsets]]`, validated like
sd-scripts' voluptuous schema (unknown keys and wrong types are errors; `float` rejects integers), and
each value looked up subset -> dataset -> general -> command-line argument -> sd-scripts default.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain import untrusted
from loratrain.effective import parse_resolution
from loratrain.errors import Problem, did_you_mean
from loratrain.plan.buckets import BucketSettings
from loratrain.sdscripts import flags

# Value kinds, named as voluptuous would report them.
BOOL, INT, FLOAT, STR, NUM, DICT, FLOAT2, RESO = "bool", "int", "float", "str", "int|float", "dict", "float2", "reso"
# Stricter than sd-scripts' schema, which takes any int (booleans too): zero or negative sizes, steps and batch
# sizes pass it and then crash or silently misbehave inside sd-scripts, so they are rejected here.
POS_INT = "positive int"

_SUBSET_ASCENDABLE = {
    "color_aug": BOOL,
    "face_crop_aug_range": FLOAT2,
    "flip_aug": BOOL,
    "num_repeats": INT,
    "random_crop": BOOL,
    "shuffle_caption": BOOL,
    "keep_tokens": INT,
    "keep_tokens_separator": STR,
    "secondary_separator": STR,
    "caption_separator": STR,
    "enable_wildcard": BOOL,
    "token_warmup_min": INT,
    "token_warmup_step": NUM,
    "caption_prefix": STR,
    "caption_suffix": STR,
    "custom_attributes": DICT,
    "resize_interpolation": STR,
}
_DROPOUT_ASCENDABLE = {
    "caption_dropout_every_n_epochs": INT,
    "caption_dropout_rate": NUM,
    "caption_tag_dropout_rate": NUM,
}
_DREAMBOOTH_ASCENDABLE = {"caption_extension": STR, "class_tokens": STR, "cache_info": BOOL}
_DREAMBOOTH_SUBSET_ONLY = {"image_dir": STR, "is_reg": BOOL, "alpha_mask": BOOL}
_FINETUNE_SUBSET_ONLY = {"metadata_file": STR, "image_dir": STR, "alpha_mask": BOOL}
_CONTROLNET_ASCENDABLE = {"caption_extension": STR, "cache_info": BOOL}
_CONTROLNET_SUBSET_ONLY = {"image_dir": STR, "conditioning_data_dir": STR}
_DATASET_ASCENDABLE = {
    "batch_size": POS_INT,
    "bucket_no_upscale": BOOL,
    "bucket_reso_steps": POS_INT,
    "enable_bucket": BOOL,
    "max_bucket_reso": POS_INT,
    "min_bucket_reso": POS_INT,
    "validation_seed": INT,
    "validation_split": FLOAT,
    "resolution": RESO,
    "network_multiplier": FLOAT,
    "resize_interpolation": STR,
}

# Command-line names that differ from the dataset-config names.
_ARG_NAMES = {"batch_size": "train_batch_size", "num_repeats": "dataset_repeats"}
# The dataset-config keys the scan needs that have a command-line flag: their default is the flag's.
_FLAG_BACKED = (
    "num_repeats",
    "caption_extension",
    "enable_wildcard",
    "caption_prefix",
    "caption_suffix",
    "batch_size",
    "enable_bucket",
    "min_bucket_reso",
    "max_bucket_reso",
    "bucket_reso_steps",
    "bucket_no_upscale",
    "resolution",
    "validation_split",
    "shuffle_caption",
    "keep_tokens",
    "keep_tokens_separator",
    "caption_separator",
    "flip_aug",
    "alpha_mask",
)
# Keys with no flag: sd-scripts' Params dataclass defaults.
_PARAM_DEFAULTS: dict[str, Any] = {"is_reg": False, "class_tokens": None, "cache_info": False}


def _default(name: str) -> Any:
    """sd-scripts' default for a dataset-config key: the flag table's, else its Params dataclass's."""
    if name in _FLAG_BACKED:
        return flags.default(_ARG_NAMES.get(name, name))
    return _PARAM_DEFAULTS.get(name)


@dataclass(frozen=True)
class Subset:
    """One image folder as sd-scripts will read it."""

    image_dir: str
    num_repeats: int
    is_reg: bool = False
    class_tokens: str | None = None
    caption_extension: str = field(default_factory=lambda: flags.default("caption_extension"))
    enable_wildcard: bool = False
    caption_prefix: str | None = None
    caption_suffix: str | None = None
    # How sd-scripts treats the caption and the latents (what `loratrain audit` checks captions and caches against).
    shuffle_caption: bool = False
    keep_tokens: int = 0
    keep_tokens_separator: str = ""
    caption_separator: str = ","
    flip_aug: bool = False
    alpha_mask: bool = False
    cache_info: bool = False
    where: str = ""  # where it came from: a config key path or the parent folder


@dataclass
class Dataset:
    """One sd-scripts dataset: its subsets share batch size and bucket settings."""

    subsets: list[Subset]
    batch_size: int
    buckets: BucketSettings | None  # None when no resolution is set anywhere (sd-scripts asserts)
    where: str = ""
    validation_split: float = 0.0
    # Where a dataset-config file set a bucket/batch value: name -> (file, key path, line or None).
    # Names missing here come from the main config (or sd-scripts' defaults).
    sources: dict[str, tuple[str, str, int | None]] = field(default_factory=dict)


@dataclass
class DatasetPlan:
    datasets: list[Dataset] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    mode: str = "folders"  # "folders", "dataset_config" or "in_json" (fine-tuning metadata, not scanned)
    # Fine-tuning datasets left out of the scan: their images are listed in metadata loratrain does not read,
    # so an empty scan says nothing about whether there is anything to train on.
    unscanned: list[str] = field(default_factory=list)


def plan_datasets(args: dict[str, Any]) -> DatasetPlan:
    """The datasets sd-scripts builds from these arguments (sd-scripts dests; unset = absent)."""
    if args.get("dataset_config"):
        plan = _from_dataset_config(args)
        ignored = [k for k in ("train_data_dir", "reg_data_dir", "in_json") if args.get(k) is not None]
        if ignored:
            plan.problems.append(
                Problem(
                    f"ignored because dataset_config is set: {', '.join(ignored)}",
                    key="dataset_config",
                    severity="warning",
                    fix="remove them or drop dataset_config",
                )
            )
        return plan
    return _from_folders(args)


def _arg(args: dict[str, Any], name: str) -> Any:
    value = args.get(_ARG_NAMES.get(name, name))
    if name == "caption_extension" and args.get("caption_extention") is not None:
        value = args["caption_extention"]  # sd-scripts' misspelled alias wins when given
    if name == "resolution" and value is not None:
        value = parse_resolution(value)
    return value


def _lookup(name: str, levels: list[dict[str, Any]], args: dict[str, Any]) -> Any:
    """sd-scripts' fallback: the first non-None value of subset, dataset, general, CLI, default."""
    for level in levels:
        value = level.get(name)
        if value is not None:
            return parse_resolution(value) if name == "resolution" else value
    value = _arg(args, name)
    return value if value is not None else _default(name)


def _bucket_settings(levels: list[dict[str, Any]], args: dict[str, Any]) -> BucketSettings | None:
    resolution = _lookup("resolution", levels, args)
    if resolution is None:
        return None
    return BucketSettings(
        resolution=resolution,
        enable_bucket=bool(_lookup("enable_bucket", levels, args)),
        min_bucket_reso=_lookup("min_bucket_reso", levels, args),
        max_bucket_reso=_lookup("max_bucket_reso", levels, args),
        bucket_reso_steps=_lookup("bucket_reso_steps", levels, args),
        bucket_no_upscale=bool(_lookup("bucket_no_upscale", levels, args)),
    )


def _subset(config: dict[str, Any], levels: list[dict[str, Any]], args: dict[str, Any], where: str) -> Subset:
    chain = [config, *levels]
    return Subset(
        image_dir=str(config.get("image_dir")),
        num_repeats=_lookup("num_repeats", chain, args),
        is_reg=bool(config.get("is_reg", False)),
        class_tokens=_lookup("class_tokens", chain, args),
        caption_extension=_lookup("caption_extension", chain, args),
        enable_wildcard=bool(_lookup("enable_wildcard", chain, args)),
        caption_prefix=_lookup("caption_prefix", chain, args),
        caption_suffix=_lookup("caption_suffix", chain, args),
        shuffle_caption=bool(_lookup("shuffle_caption", chain, args)),
        keep_tokens=int(_lookup("keep_tokens", chain, args) or 0),
        keep_tokens_separator=_lookup("keep_tokens_separator", chain, args) or "",
        caption_separator=_lookup("caption_separator", chain, args) or ",",
        flip_aug=bool(_lookup("flip_aug", chain, args)),
        alpha_mask=bool(_lookup("alpha_mask", chain, args)),
        cache_info=bool(_lookup("cache_info", chain, args)),
        where=where,
    )


# ---- folder mode -------------------------------------------------------------------------------


def _from_folders(args: dict[str, Any]) -> DatasetPlan:
    if args.get("in_json"):
        plan = DatasetPlan(mode="in_json", unscanned=["in_json"])
        plan.problems.append(
            Problem(
                "fine-tuning datasets (in_json metadata) are not scanned by loratrain plan",
                key="in_json",
                severity="warning",
            )
        )
        return plan
    plan = DatasetPlan(mode="folders")
    subsets: list[Subset] = []
    for key, is_reg in (("train_data_dir", False), ("reg_data_dir", True)):
        parent = args.get(key)
        if parent is None:
            continue
        if not os.path.isdir(parent):
            what = "does not exist" if not os.path.exists(parent) else "is not a folder"
            plan.problems.append(
                Problem(f"{parent} {what}", key=key, fix="point it at the parent of your N_name image folders")
            )
            continue
        subsets.extend(_folder_subsets(parent, is_reg, key, args, plan.problems))
    if args.get("train_data_dir") is None:
        plan.problems.append(
            Problem(
                "no train_data_dir and no dataset_config: there is nothing to train on",
                key="train_data_dir",
                fix="set train_data_dir or dataset_config",
            )
        )
    levels: list[dict[str, Any]] = []
    plan.datasets.append(
        Dataset(
            subsets=subsets,
            batch_size=_lookup("batch_size", levels, args),
            buckets=_bucket_settings(levels, args),
            where="train_data_dir",
            validation_split=_lookup("validation_split", levels, args),
        )
    )
    return plan


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop
        return False


def _folder_subsets(parent: str, is_reg: bool, key: str, args: dict[str, Any], problems: list[Problem]) -> list[Subset]:
    found: list[Subset] = []
    try:
        with os.scandir(parent) as entries:
            # Directory order, as sd-scripts' Path.iterdir() gives it: it decides which regularisation
            # images get the extra repeats when they are balanced against the training images.
            folders = [e for e in entries if _is_folder(e)]
    except OSError as exc:  # e.g. no permission: sd-scripts would fail the same way
        problems.append(
            Problem(
                f"cannot read the folder: {exc.strerror or exc}",
                key=key,
                file=parent,
                fix="make it readable by the user who trains",
            )
        )
        return found
    for entry in folders:
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(
                Problem(
                    f"folder {ascii(entry.name)} has a name that is not UTF-8; its class token cannot be read or shown",
                    key=key,
                    fix="rename the folder",
                )
            )
            continue
        head, _, rest = entry.name.partition("_")
        try:
            repeats = int(head)
        except ValueError:
            problems.append(
                Problem(
                    f"folder {entry.name!r} has no repeat count (N_name) and is ignored by sd-scripts",
                    key=key,
                    file=entry.path,
                    severity="warning",
                    fix=f"rename it to e.g. 10_{entry.name}",
                )
            )
            continue
        if repeats < 1:
            problems.append(
                Problem(
                    f"folder {entry.name!r} has {repeats} repeats and is ignored by sd-scripts",
                    key=key,
                    file=entry.path,
                    severity="warning",
                    fix="use a repeat count of 1 or more",
                )
            )
            continue
        config = {"image_dir": entry.path, "num_repeats": repeats, "is_reg": is_reg, "class_tokens": rest}
        found.append(_subset(config, [], args, where=key))
    if not found:
        problems.append(
            Problem(
                f"no N_name image folders in {parent}",
                key=key,
                severity="warning" if is_reg else "error",
                fix="sd-scripts wants the parent folder: put images in e.g. 10_mychar/ inside it",
            )
        )
    return found


# ---- dataset_config ----------------------------------------------------------------------------


def _from_dataset_config(args: dict[str, Any]) -> DatasetPlan:
    plan = DatasetPlan(mode="dataset_config")
    path = Path(str(args["dataset_config"]))
    loaded = _load_user_config(path, plan.problems)
    if loaded is None:
        return plan
    data, lines = loaded
    masked = bool(args.get("masked_loss"))
    errors = _with_lines(validate_user_config(data, masked_loss=masked, file=str(path)), lines)
    plan.problems.extend(errors)
    if any(p.severity == "error" for p in errors):
        return plan
    general = data.get("general", {})
    for i, ds in enumerate(data.get("datasets", [])):
        where = f"datasets[{i}]"
        subsets_cfg = ds.get("subsets", [])
        if subsets_cfg and all("metadata_file" in s for s in subsets_cfg):
            plan.problems.append(
                Problem(
                    "fine-tuning subsets (metadata_file) are not scanned by loratrain plan",
                    key=where,
                    file=str(path),
                    severity="warning",
                )
            )
            plan.unscanned.append(where)
            continue
        levels = [ds, general]
        subsets: list[Subset] = []
        for j, sub_cfg in enumerate(subsets_cfg):
            sub = _subset(sub_cfg, levels, args, where=f"{where}.subsets[{j}]")
            first = next((s for s in subsets if s.image_dir == sub.image_dir and s.num_repeats >= 1), None)
            if first is not None:
                plan.problems.append(
                    Problem(
                        f"image_dir {sub.image_dir!r} is already used by {first.where}; sd-scripts "
                        "ignores this second subset",
                        key=sub.where,
                        file=str(path),
                        severity="warning",
                        fix="merge the two subsets",
                    )
                )
                continue
            subsets.append(sub)
        plan.datasets.append(
            Dataset(
                subsets=subsets,
                batch_size=_lookup("batch_size", levels, args),
                buckets=_bucket_settings(levels, args),
                where=where,
                validation_split=_lookup("validation_split", levels, args),
                sources=_sources([(where, ds), ("general", general)], str(path), lines),
            )
        )
    return plan


_SOURCED = (
    "resolution",
    "enable_bucket",
    "min_bucket_reso",
    "max_bucket_reso",
    "bucket_reso_steps",
    "bucket_no_upscale",
    "batch_size",
)


def _sources(
    levels: list[tuple[str, dict[str, Any]]], file: str, lines: dict[str, int]
) -> dict[str, tuple[str, str, int | None]]:
    """Which dataset-config key each bucket/batch value came from, so problems with it can name that key."""
    found = {}
    for name in _SOURCED:
        for label, level in levels:
            if level.get(name) is not None:
                key = f"{label}.{name}"
                found[name] = (file, key, _certain_line(key, lines))
                break
    return found


def _certain_line(key: str, lines: dict[str, int]) -> int | None:
    # key_lines() knows only the first element of an array of tables, so other indices get no line.
    indices = re.findall(r"\[(\d+)\]", key)
    return lines.get(re.sub(r"\[\d+\]", "", key)) if all(i == "0" for i in indices) else None


def _with_lines(problems: list[Problem], lines: dict[str, int]) -> list[Problem]:
    """Add TOML line numbers where they are certain: keys outside arrays or in their first element."""
    if not problems or not lines:
        return problems
    return [dataclasses.replace(p, line=_certain_line(p.key, lines)) for p in problems]


def _load_user_config(path: Path, problems: list[Problem]) -> tuple[dict[str, Any], dict[str, int]] | None:
    """The dataset config's data and its keys' lines (TOML only), read from one read of the file."""

    def fail(message: str, fix: str = "") -> None:
        problems.append(Problem(message, key="dataset_config", file=str(path), fix=fix))

    if not path.is_file():
        fail("dataset_config file not found", fix="check the path (relative paths start at the current folder)")
        return None
    name = path.name.lower()
    lines: dict[str, int] = {}
    try:
        if name.endswith(".json"):
            data = untrusted.json_loads(path.read_text(encoding="utf-8"))
        elif name.endswith(".toml"):
            from loratrain import toml_positions

            text = path.read_text(encoding="utf-8")
            data = untrusted.toml_loads(text)
            lines = toml_positions.key_lines(text)
        else:
            fail("sd-scripts reads only .toml or .json dataset configs", fix="rename it to .toml or .json")
            return None
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"cannot parse: {exc}")
        return None
    except OSError as exc:
        fail(f"cannot read it: {exc.strerror}")
        return None
    hostile = list(untrusted.hostile_values(data))
    for key, message, fix in hostile:
        problems.append(Problem(f"{key}: {message}", key="dataset_config", file=str(path), fix=fix))
    if hostile:
        return None
    if not isinstance(data, dict):
        fail("expected a table/object at the top level")
        return None
    return data, lines


def _schemas(masked_loss: bool) -> dict[str, dict[str, str]]:
    general = {
        **_DATASET_ASCENDABLE,
        **_SUBSET_ASCENDABLE,
        **_DREAMBOOTH_ASCENDABLE,
        **(_CONTROLNET_ASCENDABLE if masked_loss else {}),
        **_DROPOUT_ASCENDABLE,
    }
    return {
        "general": general,
        "db_subset": {**_SUBSET_ASCENDABLE, **_DREAMBOOTH_SUBSET_ONLY, **_DREAMBOOTH_ASCENDABLE, **_DROPOUT_ASCENDABLE},
        "ft_subset": {**_SUBSET_ASCENDABLE, **_FINETUNE_SUBSET_ONLY, **_DROPOUT_ASCENDABLE},
        "cn_subset": {**_SUBSET_ASCENDABLE, **_CONTROLNET_SUBSET_ONLY, **_CONTROLNET_ASCENDABLE, **_DROPOUT_ASCENDABLE},
        "db_dataset": {**_DATASET_ASCENDABLE, **_SUBSET_ASCENDABLE, **_DREAMBOOTH_ASCENDABLE, **_DROPOUT_ASCENDABLE},
        "ft_dataset": {**_DATASET_ASCENDABLE, **_SUBSET_ASCENDABLE, **_DROPOUT_ASCENDABLE},
        "cn_dataset": {**_DATASET_ASCENDABLE, **_SUBSET_ASCENDABLE, **_CONTROLNET_ASCENDABLE, **_DROPOUT_ASCENDABLE},
    }


_REQUIRED = {
    "db_subset": ("image_dir",),
    "ft_subset": ("metadata_file",),
    "cn_subset": ("image_dir", "conditioning_data_dir"),
}


def validate_user_config(data: dict[str, Any], masked_loss: bool = False, file: str = "") -> list[Problem]:
    """Every problem sd-scripts' ConfigSanitizer would reject, one Problem each."""
    schemas = _schemas(masked_loss)
    problems: list[Problem] = []

    def err(key: str, message: str, fix: str = "") -> None:
        problems.append(Problem(message, key=key, file=file, fix=fix))

    _check_table(data, {"general": DICT, "datasets": "list"}, "", err)
    general = data.get("general")
    if isinstance(general, dict):
        _check_table(general, schemas["general"], "general", err)
    datasets = data.get("datasets", [])
    if not isinstance(datasets, list):
        return problems
    for i, ds in enumerate(datasets):
        where = f"datasets[{i}]"
        if not isinstance(ds, dict):
            err(where, "expected a table (a [[datasets]] entry)")
            continue
        subsets = ds.get("subsets", [])
        if not isinstance(subsets, list):
            err(f"{where}.subsets", "expected a list of tables ([[datasets.subsets]])")
            continue
        tables = [s for s in subsets if isinstance(s, dict)]
        if masked_loss and tables and all("conditioning_data_dir" in s for s in tables):
            style = "cn"
        elif all("metadata_file" in s for s in tables):
            style = "ft"
        elif all("metadata_file" not in s for s in tables):
            style = "db"
        else:
            err(
                where,
                "DreamBooth subsets (image_dir) and fine-tuning subsets (metadata_file) cannot be mixed in one dataset",
                fix="split them into two [[datasets]]",
            )
            continue
        _check_table({k: v for k, v in ds.items() if k != "subsets"}, schemas[f"{style}_dataset"], where, err)
        for j, sub in enumerate(subsets):
            skey = f"{where}.subsets[{j}]"
            if not isinstance(sub, dict):
                err(skey, "expected a table")
                continue
            _check_table(sub, schemas[f"{style}_subset"], skey, err)
            for required in _REQUIRED[f"{style}_subset"]:
                if required not in sub:
                    err(f"{skey}.{required}", "required key not provided")
    return problems


def _check_table(table: dict[str, Any], schema: dict[str, str], where: str, err) -> None:
    for key, value in table.items():
        path = f"{where}.{key}" if where else key
        kind = schema.get(key)
        if kind is None:
            hint = did_you_mean(key, schema) or "sd-scripts rejects unknown keys (extra keys not allowed)"
            place = f"[{where}]" if where else "the top level"
            err(path, f"unknown key (not allowed in {place})", hint)
            continue
        problem = _type_problem(kind, value)
        if problem:
            err(path, problem, _type_fix(kind, value))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _type_problem(kind: str, value: Any) -> str:
    ok = {
        BOOL: lambda v: isinstance(v, bool),
        INT: lambda v: isinstance(v, int),  # voluptuous' int also takes booleans
        FLOAT: lambda v: isinstance(v, float),
        STR: lambda v: isinstance(v, str),
        NUM: lambda v: isinstance(v, (int, float)),
        DICT: lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
        FLOAT2: lambda v: isinstance(v, list) and len(v) == 2 and all(isinstance(x, float) for x in v),
        POS_INT: _positive_int,
        RESO: lambda v: _positive_int(v) or (isinstance(v, list) and len(v) == 2 and all(_positive_int(x) for x in v)),
    }[kind]
    if ok(value):
        return ""
    wanted = {
        FLOAT2: "a list of two floats",
        RESO: "a positive int or a list [width, height] of positive ints",
        POS_INT: "a positive int",
        NUM: "a number",
        "list": "a list",
        DICT: "a table",
    }.get(kind, kind)
    return f"expected {wanted}, got {value!r}"


def _type_fix(kind: str, value: Any) -> str:
    if kind == FLOAT and isinstance(value, int) and not isinstance(value, bool):
        return f"sd-scripts' float fields reject integers: write {float(value)}"
    if kind == FLOAT2 and isinstance(value, list):
        return "write floats such as [0.4, 0.7]"
    if kind == RESO:
        return "write e.g. resolution = 1024 or resolution = [1024, 768]"
    if kind == POS_INT:
        return "use a whole number of 1 or more"
    return ""
