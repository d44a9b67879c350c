"""Build a sweep: `--vary KEY=V1,V2,...` axes -> one validated config per combination, each with its own
output_name and output_dir, all sharing the base's dataset and caches.

Values are typed exactly as `--set` types them (config/loader.py's parse_override), so `--vary
optimizer.learning_rate=1e-4,2e-4` and `--set optimizer.learning_rate=1e-4` mean the same number.

Caches. sd-scripts (48d368f) keeps the disk latent cache beside each image, `<stem>_<W:04d>x<H:04d>_sdxl.npz`
(the image's own size; library/strategy_sd.py), and the text-encoder cache as `<stem>_te_outputs.npz`
(library/strategy_sdxl.py). A later run reuses such a file whenever it exists and holds the arrays it wants
(`latents`, plus `latents_flipped` for flip_aug, `alpha_mask` for alpha_mask): it does not check the bucket
size, the VAE or the captions they were made from (strategy_base.py, `_default_is_disk_cached_latents_expected`).
So every run of a sweep shares the first run's cache as long as nothing that shapes latents varies; varying
such a key with a disk cache would train later runs on stale latents, and is refused here.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain.audit.caches import SDXL_SUFFIX, TE_SUFFIX  # sd-scripts' cache file names, stated once
from loratrain.config import loader
from loratrain.errors import ConfigError, Problem
from loratrain.schema.root import MODELLED, TrainConfig

# Keys a sweep may not vary: they name the dataset all runs share, or the outputs the sweep itself assigns.
FIXED = {
    "dataset.train_data_dir": "the dataset is what every run of a sweep shares",
    "dataset.reg_data_dir": "the dataset is what every run of a sweep shares",
    "dataset.dataset_config": "the dataset is what every run of a sweep shares",
    "extra.in_json": "the dataset is what every run of a sweep shares",
    "extra.conditioning_data_dir": "the dataset is what every run of a sweep shares",
    "saving.output_dir": "the sweep gives every run its own output_dir",
    "saving.output_name": "the sweep gives every run its own output_name",
}
# Keys whose change sd-scripts' disk caches do not notice (see the module docstring), by the cache flag.
LATENT_KEYS = (
    "model.pretrained_model_name_or_path",
    "model.vae",
    "dataset.resolution",
    "buckets.enable_bucket",
    "buckets.min_bucket_reso",
    "buckets.max_bucket_reso",
    "buckets.bucket_reso_steps",
    "buckets.bucket_no_upscale",
)
TEXT_KEYS = (
    "model.pretrained_model_name_or_path",
    "dataset.caption_extension",
    "dataset.max_token_length",
    "extra.caption_prefix",
    "extra.caption_suffix",
    "extra.weighted_captions",
)
# Keys that add arrays to the shared latent files (the file is extended, never reused stale).
EXTENDS_LATENTS = ("dataset.flip_aug", "extra.alpha_mask")
CACHES = {
    "cache_latents_to_disk": ("latent", LATENT_KEYS, f"<image>_<W>x<H>{SDXL_SUFFIX}"),
    "cache_text_encoder_outputs_to_disk": ("text-encoder", TEXT_KEYS, f"<image>{TE_SUFFIX}"),
}


# A sweep is a handful of runs; a grid past this is a typo (or 1e6 values), refused before anything is built.
MAX_RUNS = 256


@dataclass
class Axis:
    key: str  # dotted, table.key
    values: list[Any]
    labels: list[str]  # the text the user wrote for each value


@dataclass
class SweepRun:
    name: str  # also the config file's stem and the output_name
    label: str  # what varies, filesystem-safe (the output_dir's last part)
    values: dict[str, Any]  # dotted key -> value
    data: dict[str, Any] = field(default_factory=dict)  # the full config
    output_dir: str = ""
    problems: list[Problem] = field(default_factory=list)  # rule errors: the combination is invalid
    warnings: list[Problem] = field(default_factory=list)

    def values_text(self) -> str:
        """`table.key=value, ...` with the values written as TOML (as --vary takes them)."""
        from loratrain.importers.toml_text import value_text

        return ", ".join(f"{k}={_text(v, value_text)}" for k, v in self.values.items())


def _text(value: Any, value_text) -> str:
    try:
        return value_text(value)
    except TypeError:  # an inline table
        return repr(value)


@dataclass
class Sweep:
    base: Path
    mode: str  # "grid" or "zip"
    axes: list[Axis]
    runs: list[SweepRun]
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> list[SweepRun]:
        return [r for r in self.runs if not r.problems]

    @property
    def invalid(self) -> list[SweepRun]:
        return [r for r in self.runs if r.problems]


def _bad(text: str, message: str, fix: str = "", key: str = "") -> ConfigError:
    return ConfigError([Problem(message, key=key, file="--vary", value=text, fix=fix)])


def split_values(text: str) -> list[str]:
    """`8,16` -> ["8", "16"]; commas inside quotes or brackets stay (`[0.9,0.99],[0.9,0.999]` is two values)."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def dotted(path: list[str]) -> list[str]:
    """A key as --set places it: a bare sd-scripts name goes into its own table."""
    if len(path) == 1 and path[0] not in TrainConfig.model_fields:
        return [MODELLED.get(path[0], "extra"), path[0]]
    return path


def parse_axis(text: str) -> Axis:
    if "=" not in text:
        raise _bad(text, f"--vary {text!r}: expected table.key=V1,V2,...", "e.g. --vary network.network_dim=8,16")
    key, raw = text.split("=", 1)
    pieces = split_values(raw)
    if not raw.strip() or any(p == "" for p in pieces):
        raise _bad(text, f"--vary {text!r}: an empty value", "give values separated by commas: KEY=V1,V2", key.strip())
    if len(pieces) > MAX_RUNS:
        raise _bad(text, f"--vary {key.strip()}: {len(pieces)} values; a sweep has at most {MAX_RUNS} runs", "", key)
    values, path = [], None
    for piece in pieces:
        path, value = loader.parse_override(f"{key}={piece}")
        values.append(value)
    assert path is not None
    name = ".".join(dotted(path))
    return Axis(name, values, pieces)


def refuse_fixed(axes: list[Axis]) -> None:
    problems = []
    seen: set[str] = set()
    for axis in axes:
        if axis.key in seen:
            problems.append(Problem("varied twice", key=axis.key, file="--vary", fix="give each key one --vary"))
        seen.add(axis.key)
        why = FIXED.get(axis.key)
        if why is None and axis.key in ("dataset", "saving", "extra"):
            why = "a whole table cannot vary; vary its keys"
        if why is not None:
            problems.append(
                Problem(
                    f"cannot vary: {why}",
                    key=axis.key,
                    file="--vary",
                    value=axis.labels,
                    fix="make one sweep per dataset"
                    if axis.key not in FIXED or "dataset" in why
                    else "drop this --vary",
                )
            )
    if problems:
        raise ConfigError(problems)


def refuse_stale_caches(axes: list[Axis], base: dict[str, Any], base_file: str) -> list[str]:
    """A varied key that would make a later run reuse another run's disk cache is an error; notes otherwise."""
    dataset = _table(base, "dataset")
    problems, notes = [], []
    for flag, (what, keys, pattern) in CACHES.items():
        if not dataset.get(flag):
            continue
        for axis in axes:
            if axis.key in keys:
                problems.append(
                    Problem(
                        f"cannot vary with dataset.{flag} = true: sd-scripts reuses the {what} cache files beside "
                        f"the images ({pattern}) without checking what made them, so every run after the first "
                        "would train on the first run's cache",
                        key=axis.key,
                        file="--vary",
                        value=axis.labels,
                        fix=f"set dataset.{flag} = false in {base_file} (each run then caches in memory) "
                        "or make one sweep per value; `loratrain audit` finds caches already stale",
                    )
                )
        if flag == "cache_latents_to_disk":
            for axis in axes:
                if axis.key in EXTENDS_LATENTS:
                    notes.append(
                        f"{axis.key} varies: runs that need it add its arrays to the shared latent files "
                        "(sd-scripts re-encodes those images once); the others reuse them as they are"
                    )
    if problems:
        raise ConfigError(problems)
    return notes


def overridden_notes(axes: list[Axis], base: dict[str, Any]) -> list[str]:
    """A varied learning_rate that the base's unet_lr / text_encoder_lr override (sd-scripts gives each part its
    own rate when set, and learning_rate only to the parts without one)."""
    optimizer = _table(base, "optimizer")
    own = [k for k in ("unet_lr", "text_encoder_lr") if optimizer.get(k) is not None]
    varied = {a.key for a in axes}
    if "optimizer.learning_rate" in varied and own:
        return [
            "optimizer.learning_rate varies, but the base sets optimizer."
            + " and optimizer.".join(own)
            + ", which sd-scripts uses instead for those parts: vary "
            + " / ".join(f"optimizer.{k}" for k in own)
            + " to change them"
        ]
    return []


def safe(text: str) -> str:
    """A value's text as part of a file name: letters, digits, `.`, `+`, `-`; at most 40 characters."""
    out = re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-.")
    return (out[:40].rstrip("-.") or "v") if out else "v"


def distinct(labels: list[str]) -> list[str]:
    """The labels made distinct, even on a case-insensitive file system: a repeat gets -2, -3, ..."""
    used: set[str] = set()
    out = []
    for label in labels:
        unique, n = label, 2
        while unique.lower() in used:
            unique, n = f"{label}-{n}", n + 1
        used.add(unique.lower())
        out.append(unique)
    return out


def combinations(axes: list[Axis], zip_: bool) -> list[list[int]]:
    """Index tuples into each axis's values: the full grid, or position by position with --zip."""
    if zip_:
        lengths = {len(a.values) for a in axes}
        if len(lengths) > 1:
            raise ConfigError(
                [
                    Problem(
                        "--zip pairs values position by position, but the lists have different lengths: "
                        + ", ".join(f"{a.key} {len(a.values)}" for a in axes),
                        file="--vary",
                        fix="give every --vary the same number of values, or drop --zip for the full grid",
                    )
                ]
            )
        return [[i] * len(axes) for i in range(len(axes[0].values))]
    total = math.prod(len(a.values) for a in axes)
    if total > MAX_RUNS:
        raise ConfigError(
            [
                Problem(
                    f"the grid has {total} combinations; a sweep has at most {MAX_RUNS} runs",
                    file="--vary",
                    value=" x ".join(str(len(a.values)) for a in axes),
                    fix="vary fewer keys or values (or pair them with --zip)",
                )
            ]
        )
    return [list(c) for c in itertools.product(*(range(len(a.values)) for a in axes))]


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError([Problem(f"{part} is not a table", key=key, file="--vary")])
        node = child
    node[parts[-1]] = value


def build(base_path: Path, axis_texts: list[str], out_dir: Path, zip_: bool = False) -> Sweep:
    """Every combination as a full config, validated like `check --no-preflight`; invalid ones carry their
    problems. Raises ConfigError for bad axes (and for a base that is itself invalid)."""
    if not axis_texts:
        raise ConfigError(
            [Problem("nothing varies", file="--vary", fix="give at least one --vary table.key=V1,V2,...")]
        )
    axes = [parse_axis(t) for t in axis_texts]
    refuse_fixed(axes)
    data, _text = loader.read_toml(base_path)
    loader.load_config(base_path)  # the base must be valid on its own: its problems point at its own lines
    notes = refuse_stale_caches(axes, data, str(base_path)) + overridden_notes(axes, data)
    saving = _table(data, "saving")
    base_name = str(saving.get("output_name") or base_path.stem)
    base_out = saving.get("output_dir")
    logging = _table(data, "logging")
    runs: list[SweepRun] = []
    combos = combinations(axes, zip_)
    labels = distinct(
        ["_".join(f"{a.key.rsplit('.', 1)[-1]}-{safe(a.labels[i])}" for a, i in zip(axes, combo)) for combo in combos]
    )
    for combo, unique in zip(combos, labels):
        values = {a.key: a.values[i] for a, i in zip(axes, combo)}
        name = f"{base_name}_{unique}"
        run_data = copy.deepcopy(data)
        for key, value in values.items():
            _set(run_data, key, value)
        output_dir = str(Path(str(base_out)) / unique) if base_out else str(out_dir / unique)
        _set(run_data, "saving.output_dir", output_dir)
        _set(run_data, "saving.output_name", name)
        if logging.get("logging_dir"):  # each run's events in a folder of its own
            _set(run_data, "logging.logging_dir", str(Path(str(logging["logging_dir"])) / unique))
        run = SweepRun(name=name, label=unique, values=values, data=run_data, output_dir=output_dir)
        config_file = str(out_dir / f"{name}.toml")
        try:
            loaded = loader.validate(run_data, config_file, path=Path(config_file))
            run.warnings = list(loaded.warnings)
        except ConfigError as exc:
            run.problems = [p for p in exc.problems if p.severity == "error"]
            run.warnings = [p for p in exc.problems if p.severity != "error"]
        runs.append(run)
    return Sweep(base=base_path, mode="zip" if zip_ else "grid", axes=axes, runs=runs, notes=notes)
