"""Read a config file, apply `--set` overrides, validate, and report every problem at once.

Errors become `Problem`s that name the file, the dotted key, the line, what was wrong and what to do.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pydantic import BaseModel, ValidationError

from loratrain import toml_positions, untrusted
from loratrain.errors import ConfigError, Problem, did_you_mean
from loratrain.schema.network_args import LORA_KEY_HINTS, LYCORIS_KEY_HINTS, LoraArgs, LycorisArgs, OtherArgs
from loratrain.schema.root import MODELLED, TrainConfig

ARGS_MODELS: dict[str, type[BaseModel]] = {"lycoris": LycorisArgs, "lora": LoraArgs, "other": OtherArgs}
TYPE_WORDS = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string (in quotes)",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


@dataclass
class LoadedConfig:
    """A validated config with what was read alongside it: its warnings and its keys' line numbers.

    `lines` maps dotted keys to 1-based lines of the file as written (read once, with the config), so later
    steps (preflight, launch) place their problems without reading the file again.
    """

    config: TrainConfig
    path: Path
    warnings: list[Problem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem("file not found", file=str(path), fix="check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(f"cannot read the file: {exc}", file=str(path))]) from None
    try:
        return untrusted.toml_loads(text), text
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else None
        if match:
            message = message[: match.start()].strip() + f" (column {match.group(2)})"
        raise ConfigError(
            [
                Problem(
                    f"TOML syntax error: {message}", file=str(path), line=line, fix="fix the TOML syntax at that line"
                )
            ]
        ) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """`table.key=value` -> (["table", "key"], typed value). Values are TOML literals; bare words are strings."""
    if "=" not in text:
        raise ConfigError([Problem(f"--set {text!r}: expected table.key=value", file="--set")])
    key, raw = text.split("=", 1)
    path = [p.strip() for p in key.strip().split(".")]
    if not all(path):
        raise ConfigError([Problem(f"--set {text!r}: empty key", file="--set")])
    try:
        value = untrusted.toml_loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError as exc:
        literal = raw.strip()[:1] in ('"', "'", "[", "{")
        if literal or "nested too deeply" in str(exc):
            raise ConfigError(
                [
                    Problem(
                        f"--set {text!r}: not a TOML value: {exc}",
                        key=".".join(path),
                        file="--set",
                        fix="close the quote or bracket, or quote the whole text",
                    )
                ]
            ) from None
        if any(q in raw for q in "\"'"):
            raise ConfigError(
                [
                    Problem(
                        f"--set {text!r}: unbalanced quote in the value",
                        key=".".join(path),
                        file="--set",
                        fix=f"quote the whole value, e.g. {key.strip()}='text'",
                    )
                ]
            )
        value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> tuple[dict[str, Any], set[str]]:
    """A copy of `data` with each override set (a bare flag name goes to its own table), and the dotted keys
    the overrides set, so that their problems are blamed on --set rather than on a line of the file."""
    out = _deep_copy(data)
    keys: set[str] = set()
    for text in overrides:
        path, value = parse_override(text)
        if len(path) == 1 and path[0] not in TrainConfig.model_fields:
            path = [MODELLED.get(path[0], "extra"), path[0]]
        keys.add(".".join(path))
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError([Problem(f"--set {text!r}: {part} is not a table", file="--set")])
            node = child
        node[path[-1]] = value
    return out, keys


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> LoadedConfig:
    """Read, override and validate a config. Raises ConfigError listing every error; returns the warnings."""
    path = Path(path)
    data, text = read_toml(path)
    data, overridden = apply_overrides(data, overrides)
    lines = toml_positions.key_lines(text)
    loaded = validate(data, str(path), lines, path, overridden)
    return dataclasses.replace(loaded, lines=lines)


def validate(
    data: dict[str, Any],
    file: str,
    lines: dict[str, int] | None = None,
    path: Path | None = None,
    overridden: set[str] | None = None,
) -> LoadedConfig:
    lines = _without(lines or {}, overridden or set())
    hostile = [
        Problem(message, key=key, file=file, line=toml_positions.line_of(lines, key), fix=fix)
        for key, message, fix in untrusted.hostile_values(data)
    ]
    if hostile:
        raise ConfigError([_blame_overrides(p, overridden, lines) for p in hostile])
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [_blame_overrides(p, overridden, lines) for p in pydantic_problems(exc, data, file, lines)]
        ) from None
    from loratrain.config import registry

    found = [_blame_overrides(_place(p, file, lines), overridden, lines) for p in registry.check(cfg)]
    errors = [p for p in found if p.severity == "error"]
    if errors:
        raise ConfigError(errors + [p for p in found if p.severity != "error"])
    return LoadedConfig(config=cfg, path=path or Path(file), warnings=found)


def _is_overridden(key: str, overridden: set[str]) -> bool:
    return any(key == k or key.startswith(k + ".") or key.startswith(k + "[") for k in overridden)


def _without(lines: dict[str, int], overridden: set[str]) -> dict[str, int]:
    """Line numbers minus the keys an override replaced: the file's line would point at the old value."""
    return {k: v for k, v in lines.items() if not _is_overridden(k, overridden)}


def _blame_overrides(problem: Problem, overridden: set[str] | None, lines: dict[str, int] | None = None) -> Problem:
    # a table no line of the file holds, which an override created (`--set a.b.c=1` makes table `a`)
    held = problem.key in lines if lines is not None else problem.line is not None
    created = not held and any(k.startswith(problem.key + ".") for k in overridden or ())
    if not overridden or not (_is_overridden(problem.key, overridden) or created):
        return problem
    return dataclasses.replace(problem, file="--set", line=None)


def _place(problem: Problem, file: str, lines: dict[str, int]) -> Problem:
    return dataclasses.replace(problem, file=file, line=toml_positions.line_of(lines, problem.key))


def _walk(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """Dotted key for a pydantic error location, dropping union branch names; and the model owning the leaf."""
    parts: list[str] = []
    model: type[BaseModel] | None = TrainConfig
    owner: type[BaseModel] | None = TrainConfig
    for element in loc:
        if isinstance(element, int):
            if parts:
                parts[-1] += f"[{element}]"
            continue
        if parts and parts[-1] == "network_args" and element in ARGS_MODELS and model is None:
            model = owner = ARGS_MODELS[element]
            continue
        if model is not None and element in model.model_fields:
            parts.append(element)
            owner = model
            annotation = model.model_fields[element].annotation
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            continue
        if model is not None:  # an unknown key inside a table
            parts.append(str(element))
            owner = model
            model = None
    return ".".join(parts), owner


def pydantic_problems(exc: ValidationError, data: dict[str, Any], file: str, lines: dict[str, int]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        key, owner = _walk(tuple(err["loc"]))
        if key in seen:
            continue  # one message per key (a union reports each branch)
        seen.add(key)
        message, fix = _describe(err, key, owner)
        problems.append(
            Problem(
                message=message,
                key=key,
                file=file,
                line=toml_positions.line_of(lines, key),
                fix=fix,
                value=err.get("input"),
            )
        )
    return problems


def _describe(err: Any, key: str, owner: type[BaseModel] | None) -> tuple[str, str]:
    kind = err["type"]
    value = err.get("input")
    name = key.rsplit(".", 1)[-1]
    if kind == "extra_forbidden":
        return "unknown key", _unknown_key_fix(key, name, owner)
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'|(\d+)", err["ctx"]["expected"])
        options = [a or b for a, b in allowed]
        hint = did_you_mean(str(value), options)
        fix = hint + " " if hint else ""
        return f"{value!r} is not allowed", fix + "allowed: " + ", ".join(options)
    if kind in TYPE_WORDS:
        return f"wrong type: expected {TYPE_WORDS[kind]}, got {_toml_type(value)} {value!r}", ""
    if kind == "value_error":
        return str(err["ctx"]["error"]), ""
    if kind in ("too_short", "too_long"):
        count = len(value) if isinstance(value, (list, tuple)) else "?"
        ctx = err.get("ctx", {})
        bound = f"at least {ctx.get('min_length')}" if kind == "too_short" else f"at most {ctx.get('max_length')}"
        return f"has {count} values; it needs {bound}", ""
    return err["msg"], ""


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _unknown_key_fix(key: str, name: str, owner: type[BaseModel] | None) -> str:
    if owner is LycorisArgs and name in LYCORIS_KEY_HINTS:
        return LYCORIS_KEY_HINTS[name]
    if owner is LoraArgs and name in LORA_KEY_HINTS:
        return LORA_KEY_HINTS[name]
    from loratrain.schema.extra import NOT_ALLOWED

    if owner is not None and owner.__name__ == "ExtraArgs" and name in NOT_ALLOWED:
        return f"not allowed here: {NOT_ALLOWED[name]}"
    table = key.split(".")[0]
    if name in MODELLED and MODELLED[name] != table:
        return f"{name} belongs in [{MODELLED[name]}]"
    candidates = [f for f in (owner.model_fields if owner else {}) if f != "kind"]
    hint = did_you_mean(name, candidates)
    if hint:
        return hint
    if owner is TrainConfig:
        return "top-level tables are: " + ", ".join(f for f in TrainConfig.model_fields)
    if owner is not None and owner.__name__ == "ExtraArgs":
        return "not an argument of sdxl_train_network.py (see `loratrain explain --list`)"
    from loratrain.sdscripts import flags

    if name in flags.all_flags():
        return f"{name} belongs in [{MODELLED.get(name, 'extra')}]"
    return "remove it (see `loratrain explain --list` for the keys of this table)"
