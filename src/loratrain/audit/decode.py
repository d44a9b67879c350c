"""The decode pass: every image through images.inspect, on all cores, remembered by path, size and mtime.

The memory lives in the user's cache folder (`$LORATRAIN_CACHE_DIR`, else `$XDG_CACHE_HOME/loratrain`, else
`~/.cache/loratrain`), under `audit/`, one JSON file per image folder: nothing is written into the dataset. A file
whose size or mtime changed is decoded again; deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loratrain.atomic import write_text
from loratrain.audit import images
from loratrain.errors import LoratrainError

VERSION = 2  # the facts' format; a change re-decodes everything once
SERIAL_BELOW = 32  # fewer images than this are decoded in this process: a pool costs more than it saves
WORKERS_ENV = "LORATRAIN_AUDIT_WORKERS"

Progress = Callable[[int, int], None]


def cache_root() -> Path:
    from loratrain.shrink.base import cache_dir

    return cache_dir() / "audit"


def _folder_file(folder: str) -> Path:
    key = hashlib.sha256(os.path.abspath(folder).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return cache_root() / f"images-{key}.json"


class FolderMemory:
    """The remembered facts of one folder's images: name -> [size, mtime_ns, facts]."""

    def __init__(self, folder: str, enabled: bool = True):
        self.folder = folder
        self.enabled = enabled
        self.entries: dict[str, list] = {}
        self.dirty = False
        if enabled:
            try:
                data = json.loads(_folder_file(folder).read_text(encoding="utf-8"))
                if data.get("version") == VERSION and data.get("folder") == os.path.abspath(folder):
                    self.entries = data["files"]
            except (OSError, ValueError, KeyError, AttributeError):
                pass

    def get(self, name: str, stamp: tuple[int, int]) -> dict | None:
        entry = self.entries.get(name)
        if entry and entry[0] == stamp[0] and entry[1] == stamp[1]:
            return entry[2]
        return None

    def put(self, name: str, stamp: tuple[int, int], facts: dict) -> None:
        self.entries[name] = [stamp[0], stamp[1], facts]
        self.dirty = True

    def save(self, keep: set[str]) -> None:
        if not self.enabled:
            return
        gone = set(self.entries) - keep
        if not self.dirty and not gone:
            return
        for name in gone:
            del self.entries[name]
        data = {"version": VERSION, "folder": os.path.abspath(self.folder), "files": self.entries}
        try:
            target = _folder_file(self.folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_text(target, json.dumps(data, separators=(",", ":")))
        except (OSError, LoratrainError):  # a memory that cannot be written only costs time next run
            pass


def worker_count(todo: int) -> int:
    wanted = os.environ.get(WORKERS_ENV, "")
    if wanted.isdigit() and int(wanted) >= 1:
        return int(wanted)
    if todo < SERIAL_BELOW:
        return 1
    return max(1, min(os.cpu_count() or 1, todo // 8))


def decode_all(
    folders: dict[str, list[str]], progress: Progress | None = None, remember: bool = True
) -> tuple[dict[str, dict[str, Any]], int]:
    """{path: facts} for every image name of every folder, and how many were decoded (not remembered)."""
    facts: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, str, tuple[int, int]]] = []  # (folder, name, stamp)
    memories = {folder: FolderMemory(folder, remember) for folder in folders}
    for folder, names in folders.items():
        memory = memories[folder]
        for name in names:
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError as exc:
                facts[path] = {"error": exc.strerror or str(exc), "error_kind": "undecodable"}
                continue
            stamp = (st.st_size, st.st_mtime_ns)
            known = memory.get(name, stamp)
            if known is not None:
                facts[path] = known
            else:
                todo.append((folder, name, stamp))
    total = len(facts) + len(todo)
    done = len(facts)
    if progress is not None:
        progress(done, total)
    paths = [os.path.join(folder, name) for folder, name, _stamp in todo]
    for (folder, name, stamp), result in zip(todo, _run(paths, progress, done, total)):
        facts[os.path.join(folder, name)] = result
        if "error" not in result:  # an unreadable file may be one still being copied: never remembered
            memories[folder].put(name, stamp, result)
    for folder, names in folders.items():
        memories[folder].save(set(names))
    return facts, len(todo)


def _run(paths: list[str], progress: Progress | None, done: int, total: int):
    workers = worker_count(len(paths))
    if workers <= 1:
        for path in paths:
            yield images.inspect(path)
            done += 1
            if progress is not None:
                progress(done, total)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork (Linux) starts workers in milliseconds with Pillow already imported; elsewhere the platform default.
    context = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
    chunk = max(1, min(16, len(paths) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for result in pool.map(images.inspect, paths, chunksize=chunk):
            yield result
            done += 1
            if progress is not None and (done % chunk == 0 or done == total):
                progress(done, total)
