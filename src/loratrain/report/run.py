"""Which run to report on, and where sd-scripts wrote its outputs.

RUN is a run record folder (`<output_dir>/loratrain-runs/<name>-<stamp>/`, see launch/record.py), an
output_dir (its newest record, or just its files when it has none) or a config file (its output_dir's
newest record, else the config's own paths). A record's argv is what sd-scripts really got, so paths are
read from it (relative ones against the record's cwd); a config gives them through `script_args()`.
What sd-scripts did with the run's settings (optimizer class, precision, batch, resolution) is the effective
view (loratrain/effective.py) of the config the record holds, or of the config given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain.effective import Effective
from loratrain.errors import ConfigError, Problem
from loratrain.launch.record import LOG_NAME, RECORD_NAME, RUNS_FOLDER, newest_record, read_record

# The sd-scripts arguments the report needs.
WANTED = (
    "output_dir",
    "output_name",
    "logging_dir",
    "log_prefix",
    "log_tracker_name",
    "log_with",
    "sample_prompts",
    "save_model_as",
    "sample_sampler",
)


@dataclass
class RunInfo:
    output_dir: Path
    args: dict[str, Any]  # the WANTED sd-scripts arguments that were set (paths resolved)
    record_folder: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)
    config_file: str = ""
    # A resumed run's earlier launches (record folder, record), oldest first; the report covers all of them.
    earlier: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    view: Effective | None = None  # the effective view of the run's config (None: no readable config)

    @property
    def output_name(self) -> str | None:
        return self.args.get("output_name")

    @property
    def status(self) -> str:
        return str(self.record.get("status", "unknown")) if self.record else "no record"

    @property
    def started(self) -> dt.datetime | None:
        return _parse_time(self.record.get("started")) if self.record else None

    @property
    def finished(self) -> dt.datetime | None:
        return _parse_time(self.record.get("finished")) if self.record else None

    @property
    def launches(self) -> list[tuple[Path | None, dict[str, Any]]]:
        """Every launch of this run, oldest first (one, unless it was resumed)."""
        return [*self.earlier, (self.record_folder, self.record)]

    def windows(self, now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]] | None:
        """Each launch's (start, end) in local time, `now` for one still running; None without a record."""
        out = []
        for _, rec in self.launches:
            started = _local(_parse_time(rec.get("started")))
            if started is None:
                continue
            finished = _local(_parse_time(rec.get("finished"))) if rec.get("status") != "running" else None
            out.append((started, finished or now))
        return out or None

    @property
    def log_path(self) -> Path | None:
        if self.record_folder is None:
            return None
        return self.record_folder / str(self.record.get("log") or LOG_NAME)


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _local(value: dt.datetime | None) -> dt.datetime | None:
    """A record's time as the naive local time file names and mtimes use."""
    if value is None:
        return None
    return value.astimezone().replace(tzinfo=None) if value.tzinfo else value


def _bad(path: Path, message: str, fix: str) -> ConfigError:
    return ConfigError([Problem(message, key="RUN", file=str(path), fix=fix)])


def args_from_argv(argv: list[str]) -> dict[str, Any]:
    """The WANTED options from a rendered command (`--dest=value`; a bare `--dest value` is read too)."""
    out: dict[str, Any] = {}
    for i, item in enumerate(argv):
        if not item.startswith("--"):
            continue
        name, eq, value = item[2:].partition("=")
        if name not in WANTED:
            continue
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                continue
            value = argv[i + 1]
        out[name] = value
    return out


def _resolve(args: dict[str, Any], cwd: Path) -> dict[str, Any]:
    out = dict(args)
    for key in ("output_dir", "logging_dir", "sample_prompts"):
        if out.get(key):
            p = Path(str(out[key])).expanduser()
            out[key] = p if p.is_absolute() else cwd / p
    return out


def latest_record(output_dir: Path, name: str | None = None) -> Path | None:
    """The newest readable record folder under output_dir (launch/record.py's reader and its damaged-record policy)."""
    found = newest_record(output_dir, name)
    return found.folder if found is not None else None


def record_view(record: dict[str, Any]) -> Effective | None:
    """The effective view of the config a record holds, with the GPUs it saw at launch; None where the record has
    no config this loratrain can read (an older schema, a damaged record)."""
    from pydantic import ValidationError

    from loratrain.schema.root import TrainConfig

    config = record.get("config")
    if not isinstance(config, dict) or not config:
        return None
    gpus = record.get("gpus")
    try:
        return Effective.from_config(TrainConfig.model_validate(config), len(gpus) if isinstance(gpus, list) else None)
    except (ValidationError, ValueError, TypeError):
        return None


def from_record(folder: Path) -> RunInfo:
    stored = read_record(folder)
    if stored.problem is not None:
        path = folder / RECORD_NAME
        fix = (
            "give a run record folder" if "cannot read" in stored.problem else "the record is damaged; give another run"
        )
        raise _bad(path, stored.problem.replace(f"{RECORD_NAME} is", "the run record is"), fix)
    record = stored.data
    if not isinstance(record.get("argv") or [], list):  # damaged or written by hand: no arguments to read
        record = {**record, "argv": []}
    cwd = Path(str(record.get("cwd") or folder))
    args = _resolve(args_from_argv([str(a) for a in record.get("argv") or []]), cwd)
    # The record lives in <output_dir>/loratrain-runs/<run>/, whatever output_dir was called on the command line.
    output_dir = folder.resolve().parent.parent
    args.setdefault("output_dir", output_dir)
    return RunInfo(
        output_dir=output_dir,
        args=args,
        record_folder=folder,
        record=record,
        config_file=str(record.get("config_file") or ""),
        earlier=_earlier_launches(record, output_dir),
        view=record_view(record),
    )


def _earlier_launches(record: dict[str, Any], output_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The launches a resumed record continues (launch/resume.py's chain of state folders), oldest first."""
    if not isinstance(record.get("resume"), dict):
        return []
    from loratrain.launch.resume import launch_chain, load_records

    return launch_chain(record, load_records(output_dir))


def from_config(path: Path) -> RunInfo:
    from loratrain.config.loader import load_config

    loaded = load_config(str(path), [])
    script_args = loaded.config.script_args()
    args = _resolve({k: script_args[k] for k in WANTED if script_args.get(k) is not None}, Path.cwd())
    if not args.get("output_dir"):
        raise _bad(
            path,
            "the config has no saving.output_dir, so there is no run to report on",
            "set saving.output_dir, or give the run's output folder",
        )
    output_dir = Path(args["output_dir"])
    rec = latest_record(output_dir, str(args.get("output_name") or "last"))
    if rec is not None:
        info = from_record(rec)
        info.config_file = info.config_file or str(path)
        return info
    return RunInfo(output_dir=output_dir, args=args, config_file=str(path), view=Effective.from_config(loaded.config))


def locate(run: Path) -> RunInfo:
    """RUN as the user gave it -> RunInfo. Raises ConfigError (exit 2) when it is none of the three."""
    if run.is_file():
        if run.name == RECORD_NAME:
            return from_record(run.parent)
        if run.suffix == ".toml":
            return from_config(run)
        raise _bad(
            run,
            "not a run record folder, an output_dir or a .toml config",
            "give the run's record folder (<output_dir>/loratrain-runs/...), its output_dir or its config",
        )
    if not run.is_dir():
        raise _bad(run, "no such file or folder", "give a run record folder, an output_dir or a config")
    if (run / RECORD_NAME).is_file():
        return from_record(run)
    if run.name == RUNS_FOLDER:
        run = run.parent
    rec = latest_record(run)
    if rec is not None:
        return from_record(rec)
    args: dict[str, Any] = {"output_dir": run.resolve()}
    # No record and no config: the docs' usual place for the events, <output_dir>/logs, if it is there.
    for guess in ("logs", "log"):
        if (run / guess).is_dir():
            args["logging_dir"] = (run / guess).resolve()
            break
    return RunInfo(output_dir=run.resolve(), args=args)
