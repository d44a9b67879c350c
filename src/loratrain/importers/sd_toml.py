"""Import an sd-scripts `--config_file` TOML (flat, or in tables such as [model_arguments]).

sd-scripts reads it by flattening one level: top-level values stay, every table's keys are merged into one
namespace (table names do not matter; a later key overwrites an earlier one). Values skip argparse, so types
are checked here. Keys sd-scripts does not know are silently ignored by it; we report them instead.
"""

from __future__ import annotations

import sys
from typing import Any

from loratrain import untrusted
from loratrain.errors import ConfigError, Problem
from loratrain.importers import FOREIGN, Imported
from loratrain.importers.sd_argv import flag_table, suggest
from loratrain.importers.values import check_typed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# --config_file / --output_config make no sense inside the file that is being imported
_SKIP = {
    "config_file": "names the config file itself",
    "output_config": "only writes a config file and exits",
}


def parse_toml_text(text: str, source: str) -> dict[str, Any]:
    try:
        return untrusted.toml_loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        message = str(exc)
        if line is None:  # Python 3.11/3.12 put the place in the message: "... (at line 3, column 7)"
            import re

            found = re.search(r"\(at line (\d+), column \d+\)", message)
            if found:
                line = int(found.group(1))
        raise ConfigError(
            [Problem(f"not valid TOML: {message}", file=source, line=line, fix="fix the TOML syntax there")]
        ) from None


def flatten(data: dict[str, Any], source: str, notes: list[Problem]) -> dict[str, Any]:
    """sd-scripts' one-level flattening, with a note whenever a later table overwrites a key."""
    flat: dict[str, Any] = {}
    where: dict[str, str] = {}
    for name, value in data.items():
        items = value.items() if isinstance(value, dict) else [(name, value)]
        place = f"[{name}]" if isinstance(value, dict) else "the top level"
        for key, item in items:
            if key in flat and flat[key] != item:
                notes.append(
                    Problem(
                        f"{key} is set in {where[key]} and again in {place}; sd-scripts uses the later value",
                        key=key,
                        file=source,
                        severity="warning",
                    )
                )
            flat[key] = item
            where[key] = place
    return flat


def args_from_flat(flat: dict[str, Any], source: str, imported: Imported) -> list[Problem]:
    """Type-check a flattened mapping into imported.script_args; returns the errors."""
    flags = flag_table()
    errors: list[Problem] = []
    for key, value in flat.items():
        if key in _SKIP:
            imported.dropped.append((key, _SKIP[key]))
            continue
        spec = flags.get(key)
        if spec is None or spec.kind == "help":
            hint = suggest(key, flags)
            reason = "sd-scripts has no such argument and ignores it" + (f"; {hint}" if hint else "")
            imported.dropped.append((key, reason))
            imported.notes.append(Problem(f"not imported: {reason}", key=key, file=source, severity="warning"))
            continue
        if isinstance(value, dict):
            errors.append(
                Problem(
                    "is a nested table; sd-scripts flattens only one level, so this value would be a table",
                    key=key,
                    file=source,
                    fix=f"move its keys up, or write {key} = VALUE",
                )
            )
            continue
        checked, why = check_typed(spec, value)
        if why:
            errors.append(Problem(why, key=key, file=source, value=value))
        elif checked is not None:
            imported.script_args[key] = checked
    return errors


def from_sd_toml(text: str, source: str) -> Imported:
    data = parse_toml_text(text, source)
    if isinstance(data.get("datasets"), list):
        raise ConfigError(
            [
                Problem(
                    "this is a dataset config (it has [[datasets]]), not an sd-scripts --config_file",
                    file=source,
                    fix="keep it as it is and set dataset.dataset_config to its path in your loratrain config",
                )
            ]
        )
    imported = Imported(source=source, kind="sd-scripts config file")
    flat = flatten(data, source, imported.notes)
    flags = flag_table()
    if not flat:
        raise ConfigError(
            [
                Problem(
                    "the file holds no settings",
                    file=source,
                    fix="import an sd-scripts --config_file with its arguments",
                )
            ]
        )
    if not any(key in flags for key in flat):
        names = ", ".join(sorted(flat)[:3]) + (", ..." if len(flat) > 3 else "")
        raise ConfigError(
            [
                Problem(
                    f"{FOREIGN}: none of its keys ({names}) is an sd-scripts argument",
                    file=source,
                    fix="import an sd-scripts --config_file TOML, a kohya_ss GUI JSON or a training command",
                )
            ]
        )
    errors = args_from_flat(flat, source, imported)
    if errors:
        raise ConfigError(errors)
    return imported
