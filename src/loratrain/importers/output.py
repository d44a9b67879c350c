"""Turn an `Imported` into a loratrain config: nested tables, typed network_args, TOML text with comments."""

from __future__ import annotations

import re
from typing import Any, Sequence

from pydantic import BaseModel

from loratrain.errors import ConfigError, Problem
from loratrain.importers import Imported
from loratrain.schema.accelerate import launch_default


def table_order() -> tuple[str, ...]:
    """The config's tables in the order TrainConfig declares them (script tables in render order, then
    accelerate and extra): the one table order, shared with `run` and `schema`."""
    from loratrain.schema.root import TrainConfig

    return tuple(
        name
        for name, info in TrainConfig.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    )


_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$|^[+-]?\d+[eE][+-]?\d+$")


def group_of(dest: str) -> str:
    from loratrain.schema import group_of as core_group_of

    return core_group_of(dest)


def _field_order(table: str) -> list[str]:
    """Keys of a table in the order the config models declare them (the order `run` renders them)."""
    from loratrain.schema.root import SCRIPT_GROUPS, TrainConfig
    from loratrain.sdscripts import flags

    if table in SCRIPT_GROUPS:
        return list(SCRIPT_GROUPS[table].model_fields)
    if table == "extra":
        return list(flags.all_flags())
    field = TrainConfig.model_fields.get(table)
    annotation = getattr(field, "annotation", None)
    return list(getattr(annotation, "model_fields", {}))


def _number(text: str) -> int | float | None:
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return None


def typed_network_value(text: str) -> Any:
    """A network_args value string as a TOML value: "True"/"False" -> bool, numbers -> numbers,
    "8,8,8" -> [8, 8, 8] (only when every part is a number); anything else stays a string."""
    if text in ("True", "False", "true", "false"):
        return text.lower() == "true"
    number = _number(text)
    if number is not None:
        return number
    if "," in text:
        parts = [_number(p.strip()) for p in text.split(",")]
        if all(p is not None for p in parts):
            return parts
    return text


def network_args_table(items: list[str], source: str, notes: list[Problem]) -> dict[str, Any]:
    """sd-scripts' `key=value` items as typed keys. An item without '=' is an error (sd-scripts fails on it)."""
    table: dict[str, Any] = {}
    errors = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append(
                Problem(
                    f"network_args item {item!r} has no key=value form; sd-scripts stops on it",
                    key="network.network_args",
                    file=source,
                    fix="write it as name=value",
                )
            )
            continue
        if key in table:
            notes.append(
                Problem(
                    f"network_args sets {key} twice; sd-scripts keeps the last ({value})",
                    key=f"network.network_args.{key}",
                    file=source,
                    severity="warning",
                )
            )
            del table[key]  # keep the position of the value that counts
        typed = typed_network_value(value)
        if key == "algo" and isinstance(typed, str):
            typed = typed.lower()  # LyCORIS lower-cases algo itself; the config shows the name it will use
        table[key] = typed
    if errors:
        raise ConfigError(errors)
    return table


def config_dict(imported: Imported) -> dict[str, Any]:
    """The loratrain config as nested plain values (root keys, then tables in render order)."""
    doc: dict[str, Any] = {}
    for key in ("sd_scripts", "python"):
        if key in imported.root:
            doc[key] = imported.root[key]
    tables: dict[str, dict[str, Any]] = {}
    for dest, value in imported.script_args.items():
        if dest == "network_args":
            table = network_args_table(list(value), imported.source, imported.notes)
            tables.setdefault("network", {})["network_args"] = table
            continue
        if dest in ("optimizer_args", "lr_scheduler_args") and isinstance(value, list):
            from loratrain.sdscripts.optimizers import items_to_table

            value = items_to_table(list(value)) or value  # key=value items become typed keys when all parse
        if dest == "text_encoder_lr" and isinstance(value, list) and len(value) == 1:
            value = value[0]  # one rate for both text encoders reads better as a number; renders the same
        tables.setdefault(group_of(dest), {})[dest] = value
    accelerate = without_rendered_defaults(imported.accelerate, imported.script_args.get("mixed_precision"))
    if accelerate:
        tables["accelerate"] = accelerate
    for name in table_order():
        if name in tables:
            doc[name] = _ordered(name, tables.pop(name))
    for name, table in tables.items():  # a group the core added later
        doc[name] = _ordered(name, table)
    return doc


def without_rendered_defaults(accelerate: dict[str, Any], script_precision: str | None) -> dict[str, Any]:
    """Leave out accelerate options whose value is what loratrain renders when they are unset.

    `loratrain run` always passes --num_processes, --num_machines, --mixed_precision and --dynamo_backend
    (so no `accelerate config` file is consulted); a command rendered by loratrain therefore carries them, and
    keeping them would clutter the imported config without changing the launch.
    """
    out = dict(accelerate)
    processes = out.get("num_processes", launch_default("num_processes"))
    machines = out.get("num_machines", launch_default("num_machines"))
    for dest in ("num_processes", "num_machines", "dynamo_backend"):
        if dest in out and out[dest] == launch_default(dest):
            del out[dest]
    if out.get("mixed_precision") == (script_precision or launch_default("mixed_precision")):
        del out["mixed_precision"]
    if out.get("multi_gpu") is True and (processes != 1 or machines > 1):
        del out["multi_gpu"]  # loratrain turns it on by itself for several processes
    if out.get("machine_rank") == 0:
        del out["machine_rank"]  # rendered as 0 whenever there are several machines
    return out


def _ordered(name: str, table: dict[str, Any]) -> dict[str, Any]:
    """Model field order, unknown keys last; sub-tables after the plain keys (TOML needs that)."""
    order = {key: i for i, key in enumerate(_field_order(name))}
    keys = sorted(table, key=lambda k: (isinstance(table[k], dict), order.get(k, len(order))))
    return {k: table[k] for k in keys}


def header_lines(imported: Imported) -> list[str]:
    lines = [f"Imported by `loratrain import` from the {imported.kind} {imported.source}."]
    if imported.dropped:
        lines.append("Not imported:")
        lines.extend(f"  {key}: {why}" for key, why in imported.dropped)
    notes = [n for n in imported.notes if not n.message.startswith("not imported")]  # those are listed above
    if notes:
        lines.append("Notes from the import:")
        lines.extend(
            "  " + (f"{n.key}: " if n.key else "") + n.message + (f" ({n.fix})" if n.fix else "") for n in notes
        )
    return lines


def toml_text(doc: dict[str, Any], imported: Imported, warnings: list[Problem], missing: Sequence[Problem] = ()) -> str:
    """The config as TOML: header comment (with what is still missing), and each validation warning as a
    comment above its key."""
    from loratrain.importers.toml_text import dumps

    comments: dict[str, list[str]] = {}
    header = header_lines(imported)
    if missing:
        header.append("Still to fill in before `loratrain run`:")
        header.extend(f"  {p.key}: {p.message}" + (f" ({p.fix})" if p.fix else "") for p in missing)
    loose: list[str] = []
    for w in warnings:
        text = f"warning: {w.message}" + (f" ({w.fix})" if w.fix else "")
        key = w.key
        while key and not _has_key(doc, key):
            key = key.rpartition(".")[0]  # fall back to the table that holds it
        if key:
            comments.setdefault(key, []).append(text)
        else:
            loose.append(text)
    if loose:
        header.extend(loose)
    return dumps(doc, header=header, comments=comments)


def _has_key(doc: dict[str, Any], dotted: str) -> bool:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
