"""The audit stamp: whether `loratrain audit` has run on the dataset as it is now.

A fingerprint covers every file of every image folder the config trains (name, size, mtime) and the settings
the audit judged them by (repeats aside: captions, buckets, caches). `audit` stores it after each run in the
user's cache folder (`<cache>/audit/stamps/`, keyed by the folders' absolute paths; see decode.cache_root), never
in the dataset; `check` compares it with the dataset as it is and prints one line when they differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from loratrain.atomic import write_text
from loratrain.errors import LoratrainError
from loratrain.plan.dataset_config import plan_datasets

VERSION = 1


def _folders_and_settings(args: dict[str, Any]) -> list[tuple[str, str]]:
    plan = plan_datasets(args)
    out = []
    cache_keys = ("cache_latents_to_disk", "cache_text_encoder_outputs_to_disk", "skip_cache_check")
    caches = {k: bool(args.get(k)) for k in cache_keys}
    for ds in plan.datasets:
        for sub in ds.subsets:
            settings = {k: v for k, v in dataclasses.asdict(sub).items() if k not in ("num_repeats", "where")}
            buckets = dataclasses.asdict(ds.buckets) if ds.buckets else None
            text = json.dumps([settings, buckets, caches, args.get("max_token_length")], sort_keys=True, default=str)
            out.append((os.path.abspath(sub.image_dir), text))
    return sorted(set(out))


def _key(folders: list[tuple[str, str]]) -> str:
    joined = "\n".join(folder for folder, _settings in folders)
    return hashlib.sha256(joined.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def fingerprint(args: dict[str, Any]) -> tuple[str, str] | None:
    """(stamp key, fingerprint) of the dataset as it is now; None when the config trains no folder."""
    folders = _folders_and_settings(args)
    if not folders:
        return None
    digest = hashlib.sha256(str(VERSION).encode())
    for folder, settings in folders:
        digest.update(b"\0" + folder.encode("utf-8", "surrogateescape") + b"\0" + settings.encode())
        try:
            with os.scandir(folder) as entries:
                rows = []
                for e in entries:
                    try:
                        st = e.stat()
                    except OSError:
                        continue
                    rows.append(f"{e.name}\0{st.st_size}\0{st.st_mtime_ns}")
        except OSError:
            rows = ["<missing>"]
        for row in sorted(rows):
            digest.update(row.encode("utf-8", "surrogateescape") + b"\n")
    return _key(folders), digest.hexdigest()


def _stamp_file(key: str):
    from loratrain.audit.decode import cache_root

    return cache_root() / "stamps" / f"{key}.json"


def save(args: dict[str, Any], errors: int, warnings: int) -> None:
    found = fingerprint(args)
    if found is None:
        return
    key, print_ = found
    target = _stamp_file(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, json.dumps({"fingerprint": print_, "errors": errors, "warnings": warnings}))
    except (OSError, LoratrainError):
        pass


def pointer(args: dict[str, Any], config_file: str) -> str | None:
    """The one line `check` prints: None when the last audit saw the dataset as it is and found no error."""
    try:
        found = fingerprint(args)
    except (OSError, ValueError, LoratrainError):
        return None
    if found is None:
        return None
    key, print_ = found
    try:
        stamp = json.loads(_stamp_file(key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamp = None
    command = f"loratrain audit {config_file}"
    if not isinstance(stamp, dict):
        return f"dataset not audited yet: `{command}` checks every image, caption and cache before the GPU starts"
    if stamp.get("fingerprint") != print_:
        return f"dataset changed since the last audit: run `{command}`"
    if stamp.get("errors"):
        return f"the last audit of this dataset found {stamp['errors']} error(s): see `{command}`"
    return None
