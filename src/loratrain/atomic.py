"""Write a text file all at once: a reader (or an interrupted write) never sees half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from loratrain.errors import ConfigError, Problem


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place.

    The temporary file is in the same folder so the rename stays on one file system (atomic).
    A path that cannot be written (missing folder, a file where a folder should be, no permission)
    is the user's to fix: ConfigError naming it, and nothing is left behind.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp makes it 0600; the file is meant to be read like any other
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise ConfigError(
            [
                Problem(
                    f"cannot write it: {exc.strerror or exc}",
                    file=str(path),
                    fix="check that its folder exists and is writable, or choose another path",
                )
            ]
        ) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)
