"""What a report keeps between builds: sample thumbnails and adapter health, by file path, size and mtime.

Saves and samples never change once written, so reporting a run again (while it trains, say) reads only the
new ones. The cache lives in `<report folder>/.cache/`; a file whose size or mtime changed is read again, an
unreadable one is never cached (it may be a save still being written). Deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict
from pathlib import Path

from loratrain.atomic import write_text

VERSION = 1


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


class ReportCache:
    def __init__(self, folder: Path | None):
        self.folder = folder
        self._lock = threading.Lock()
        self._index: dict = {"version": VERSION, "health": {}, "thumbs": {}}
        if folder is not None:
            try:
                data = json.loads((folder / "index.json").read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("version") == VERSION:
                    self._index = data
            except (OSError, ValueError):
                pass
        self._dirty = False

    # --- adapter health ---------------------------------------------------------------------------

    def health(self, path: Path, compute):
        from loratrain.report.health import FileHealth

        key, stamp = str(path.resolve()), _stamp(path)
        entry = self._index["health"].get(key)
        if self.folder is not None and entry and entry.get("stamp") == stamp:
            fields = dict(entry["result"])
            fields["path"] = path
            return FileHealth(**fields)
        result = compute(path)
        if self.folder is not None and not result.error and stamp is not None:
            fields = {k: v for k, v in asdict(result).items() if k not in ("path", "growth", "block_growth")}
            with self._lock:
                self._index["health"][key] = {"stamp": stamp, "result": fields}
                self._dirty = True
        return result

    # --- thumbnails -------------------------------------------------------------------------------

    def thumbnail(self, path: Path, size: int, compute):
        key, stamp = f"{path.resolve()}@{size}", _stamp(path)
        entry = self._index["thumbs"].get(key)
        if self.folder is not None and entry and entry.get("stamp") == stamp:
            try:
                return (self.folder / entry["file"]).read_bytes(), tuple(entry["original"]), tuple(entry["size"])
            except OSError:
                pass
        result = compute(path, size)
        if self.folder is not None and result is not None and stamp is not None:
            name = hashlib.sha1(key.encode("utf-8")).hexdigest()[:20] + ".jpg"
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
                tmp.write_bytes(result[0])
                tmp.replace(self.folder / name)
            except OSError:
                return result
            with self._lock:
                self._index["thumbs"][key] = {
                    "stamp": stamp,
                    "file": name,
                    "original": list(result[1]),
                    "size": list(result[2]),
                }
                self._dirty = True
        return result

    def save(self) -> None:
        if self.folder is None or not self._dirty:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._lock:
                text = json.dumps(self._index)
            write_text(self.folder / "index.json", text)
        except (OSError, Exception):  # a cache that cannot be written only costs time next build
            pass
