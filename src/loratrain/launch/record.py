"""The run record: what was launched, with what, on what, and what came of it.

Each run gets a new folder `<output_dir>/loratrain-runs/<output_name>-<YYYYmmdd-HHMMSS>[-N]/`, made
with mkdir so an earlier run's record is never touched. It holds `record.json` (resolved config
without secrets, argv, versions, GPUs, times, exit code, files produced), `command.sh` (the same
launch as a runnable script) and `train.log` (the raw output). Every file is written to a temporary
name and renamed into place, so a reader never sees half a record.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from loratrain.atomic import write_text
from loratrain.errors import ConfigError, Problem, RuntimeFailure
from loratrain.schema.choices import SECRET_ENV

RUNS_FOLDER = "loratrain-runs"
LOG_NAME = "train.log"
RECORD_NAME = "record.json"
COMMAND_SCRIPT = "command.sh"

SECRET_KEYS = frozenset(SECRET_ENV)  # the config keys that are secrets, from their one list
_SECRET_SUFFIXES = ("_api_key", "_token", "_password", "_secret")
_SECRET_ENV_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def is_secret_key(name: str) -> bool:
    lowered = name.lower().lstrip("-")
    return lowered in SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES)


def is_secret_env(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in _SECRET_ENV_WORDS)


def strip_secrets(value: Any) -> Any:
    """A copy of a nested config without any secret-named key (they travel only in the environment)."""
    if isinstance(value, Mapping):
        return {k: strip_secrets(v) for k, v in value.items() if not is_secret_key(str(k))}
    if isinstance(value, (list, tuple)):
        return [strip_secrets(v) for v in value]
    return value


def redact_argv(argv: Sequence[str]) -> list[str]:
    """argv with the value of any secret flag replaced; loratrain never renders one, this is a backstop."""
    out: list[str] = []
    hide_next = False
    for item in argv:
        if hide_next:
            out.append("<redacted>")
            hide_next = False
            continue
        if item.startswith("--") and is_secret_key(item.split("=", 1)[0]):
            if "=" in item:
                out.append(item.split("=", 1)[0] + "=<redacted>")
            else:
                out.append(item)
                hide_next = True
            continue
        out.append(item)
    return out


def new_record_folder(base: Path, name: str, started: dt.datetime) -> Path:
    """Create and return a folder no earlier run has used."""
    runs = base / RUNS_FOLDER
    # (an output_name "sub/name" saves into a subfolder; its record folder is named "sub_name-...")
    stem = f"{name.replace(os.sep, '_')}-{started.strftime('%Y%m%d-%H%M%S')}"
    if len(os.fsencode(stem)) > 250:  # checked before anything is created
        raise ConfigError(
            [
                Problem(
                    f"output_name {name[:40]!r}... is too long to name a run record folder",
                    key="saving.output_name",
                    fix="use a shorter output_name",
                )
            ]
        )
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # Preflight finds this too; with --no-preflight the record folder is the first thing to touch output_dir.
        raise ConfigError(
            [
                Problem(
                    f"cannot create the run record folder {runs}: {exc.strerror or exc}",
                    key="saving.output_dir",
                    value=str(base),
                    fix="set saving.output_dir to a folder you can write to (not a file)",
                )
            ]
        ) from None
    for n in range(1, 1000):
        folder = runs / (stem if n == 1 else f"{stem}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise RuntimeFailure(f"cannot create the run record folder {folder}: {exc.strerror or exc}") from None
        return folder
    raise RuntimeFailure(
        f"999 runs named {stem} started in the same second already have record folders in {runs}; move some away"
    )


def command_script(argv: Sequence[str], env: Mapping[str, str], cwd: str, header: Iterable[str] = ()) -> str:
    """A bash script that repeats the launch; secret variables must come from the caller's environment."""
    lines = ["#!/usr/bin/env bash"]
    lines += [f"# {line}" for line in header]
    lines.append("set -euo pipefail")
    for name in sorted(env):
        if is_secret_env(name):
            lines.append(
                f': "${{{name}:?set {name} in the environment first; loratrain never writes secrets to disk}}"'
            )
            lines.append(f"export {name}")
        else:
            lines.append(f"export {name}={shlex.quote(env[name])}")
    lines.append(f"cd {shlex.quote(cwd)}")
    lines.append("exec " + " \\\n  ".join(shlex.quote(a) for a in redact_argv(argv)))
    return "\n".join(lines) + "\n"


def snapshot(folder: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every file under `folder`, to tell later which ones a run wrote."""
    files: dict[str, tuple[int, int]] = {}
    if not folder.is_dir():
        return files
    for root, dirs, names in os.walk(folder):
        root_path = Path(root)
        if skip is not None:
            dirs[:] = [d for d in dirs if (root_path / d).resolve() != skip.resolve()]
        for name in names:
            path = root_path / name
            try:
                st = path.stat()
            except OSError:
                continue
            files[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return files


def produced(before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]) -> list[dict[str, Any]]:
    return [{"path": p, "bytes": after[p][0]} for p in sorted(after) if before.get(p) != after[p]]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).astimezone()


class RunRecord:
    """Write the record before launch with `start`, complete it with `finish`."""

    def __init__(self, output_dir: Path, output_name: str, started: dt.datetime | None = None):
        self.started = started or _now()
        self.output_dir = output_dir
        self.folder = new_record_folder(output_dir, output_name, self.started)
        self.log_path = self.folder / LOG_NAME
        self.data: dict[str, Any] = {}
        self._before: dict[str, tuple[int, int]] = {}

    def wrote(self, path: Path) -> bool:
        """Whether `path`, under output_dir, was written since `start` (the test `produced` applies to every file)."""
        try:
            st = path.stat()
            rel = str(path.relative_to(self.output_dir))
        except (OSError, ValueError):
            return False
        return self._before.get(rel) != (st.st_size, st.st_mtime_ns)

    def start(
        self,
        *,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        config: Mapping[str, Any],
        config_file: str,
        versions: Mapping[str, Any],
        sd_scripts: Mapping[str, Any],
        gpus: Sequence[Mapping[str, Any]] | None,
        more: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the record of a launch about to start; `more` adds the supervisor and resume facts."""
        from loratrain import __version__

        self._before = snapshot(self.output_dir, skip=self.output_dir / RUNS_FOLDER)
        self.data = {
            "status": "running",
            "started": self.started.isoformat(timespec="seconds"),
            "config_file": config_file,
            "cwd": cwd,
            "argv": redact_argv(argv),
            "env": sorted(env),  # names only: values may be secrets
            "versions": {"loratrain": __version__, "loratrain_python": sys.version.split()[0], **dict(versions)},
            "sd_scripts": dict(sd_scripts),
            "gpus": list(gpus) if gpus is not None else None,
            "config": strip_secrets(dict(config)),
            "log": LOG_NAME,
            "command_script": COMMAND_SCRIPT,
            **dict(more or {}),
        }
        header = [
            f"Recorded by loratrain {__version__} on {self.data['started']} from {config_file or 'a config'}.",
            "Runs the same training command again (it may overwrite that run's outputs).",
        ]
        write_text(self.folder / COMMAND_SCRIPT, command_script(argv, env, cwd, header), mode=0o755)
        self._write()

    def finish(
        self,
        *,
        exit_code: int,
        duration_s: float,
        interrupted_by: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Complete the record; `extra` adds what the watchdog and the failure explanation found."""
        after = snapshot(self.output_dir, skip=self.output_dir / RUNS_FOLDER)
        extra = dict(extra or {})
        status = "interrupted" if interrupted_by else ("succeeded" if exit_code == 0 else "failed")
        if extra.get("stopped_by") and not interrupted_by:
            status = "stopped"  # loratrain's watchdog stopped it (a NaN loss)
        elif status == "succeeded" and extra.get("failure"):
            status = "failed"  # exit status 0 without training (failures.judge_clean_exit)
        self.data.update(extra)
        self.data.update(
            status=status,
            finished=_now().isoformat(timespec="seconds"),
            exit_code=exit_code,
            duration_s=round(duration_s, 3),
            interrupted_by=interrupted_by,
            files=produced(self._before, after),
        )
        self._write()

    def _write(self) -> None:
        write_text(self.folder / RECORD_NAME, json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n")


# --- reading records back: one reader, one policy for damaged ones ---------------------------------------------
#
# A record that cannot be read (missing, not JSON, not a JSON object) is *damaged*. `runs` lists it as
# "unreadable" with the reason, `resume` and report's newest-run search pass over it, and a damaged record
# named directly (report RUN, logs RUN, stop RUN) is refused with exit 2 and the reason.


class StoredRecord:
    """One record folder as read back: `data` is {} and `problem` says why when the record is damaged."""

    __slots__ = ("folder", "data", "problem")

    def __init__(self, folder: Path, data: dict[str, Any], problem: str | None = None):
        self.folder = folder
        self.data = data
        self.problem = problem

    @property
    def run_id(self) -> str:
        return self.folder.name

    @property
    def started(self) -> str:
        return str(self.data.get("started") or "")

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"StoredRecord({self.folder!s}, problem={self.problem!r})"


def read_record(folder: Path) -> StoredRecord:
    """The record in `folder`; never raises (a damaged record comes back with its `problem`)."""
    from loratrain import untrusted

    path = Path(folder) / RECORD_NAME
    try:
        data = untrusted.json_loads(path.read_text(encoding="utf-8"))  # bounded nesting: a hostile file is no crash
    except OSError as exc:
        return StoredRecord(Path(folder), {}, f"cannot read {RECORD_NAME} ({exc.strerror or exc})")
    except ValueError as exc:
        return StoredRecord(Path(folder), {}, f"{RECORD_NAME} is not JSON ({exc})")
    if not isinstance(data, dict):
        return StoredRecord(Path(folder), {}, f"{RECORD_NAME} is not a JSON object")
    return StoredRecord(Path(folder), data)


def records_folder(output_dir: Path) -> Path:
    """OUTPUT_DIR/loratrain-runs, or OUTPUT_DIR itself when it is that folder."""
    output_dir = Path(output_dir)
    return output_dir if output_dir.name == RUNS_FOLDER else output_dir / RUNS_FOLDER


def records_in(output_dir: Path, name: str | None = None) -> list[StoredRecord]:
    """Every record under output_dir (damaged ones included), oldest first by start time, then folder name.

    `name` keeps only the runs of that output_name (record folders `<name>-<stamp>`)."""
    base = records_folder(output_dir)
    found = []
    for path in base.glob(f"*/{RECORD_NAME}"):
        if name is not None and not path.parent.name.startswith(f"{name}-"):
            continue
        found.append(read_record(path.parent))
    return sorted(found, key=lambda r: (r.started, r.folder.name))


def newest_record(output_dir: Path, name: str | None = None) -> StoredRecord | None:
    """The newest readable record under output_dir (damaged records are passed over)."""
    readable = [r for r in records_in(output_dir, name) if r.problem is None]
    return readable[-1] if readable else None
