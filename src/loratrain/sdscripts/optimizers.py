"""The optimizer and scheduler table: which keyword arguments each optimizer_type / lr_scheduler accepts.

`data/optimizer_args.json` is written by `python -m loratrain.sdscripts.gen_optimizer_table` from the real
constructor signatures of the packages sd-scripts uses (their versions are in the table). This module reads
only that JSON: checking a config never imports torch or an optimizer package.

sd-scripts (library/train_util.py, get_optimizer and get_scheduler_fix at 48d368f) splits every
`key=value` item on "=", reads the value with `ast.literal_eval` and passes the dict as keyword arguments
to the constructor. So a value must be a Python literal (True, not true), an item must hold exactly one "=",
and a key must be one the constructor takes and sd-scripts does not pass itself.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from loratrain.errors import Severity, close_matches, did_you_mean


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # bool, int, float, number, str, any, tuple[float,float], each optionally "|None"
    default: str | None  # Python text of the default; None when required
    required: bool = False
    set_by_sd_scripts: bool = False
    sd_scripts_default: str | None = None


@dataclass(frozen=True)
class Target:
    """One constructor (optimizer class) or scheduler factory, as sd-scripts reaches it."""

    name: str  # the name the user wrote, or sd-scripts' spelling of it
    kind: str  # "optimizer" | "scheduler"
    package: str
    version: str
    target: str  # dotted path of the class or function
    params: dict[str, Param] = field(default_factory=dict)
    var_keyword: bool = False
    args_ignored: bool = False

    def accepted(self) -> list[str]:
        """Keys a user may set: every parameter sd-scripts does not fill in itself."""
        return [p.name for p in self.params.values() if not p.set_by_sd_scripts and p.name != "args"]

    def label(self) -> str:
        return f"{self.name} ({self.target}, {self.package} {self.version})"


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    text = resources.files("loratrain").joinpath("data/optimizer_args.json").read_text(encoding="utf-8")
    return json.loads(text)


def packages() -> dict[str, str]:
    return dict(table()["packages"])


def _target(name: str, kind: str, raw: dict[str, Any]) -> Target:
    params = {
        p["name"]: Param(
            name=p["name"],
            type=p["type"],
            default=p.get("default"),
            required=p["required"],
            set_by_sd_scripts=p.get("set_by_sd_scripts", False),
            sd_scripts_default=p.get("sd_scripts_default"),
        )
        for p in raw["params"]
    }
    return Target(
        name=name,
        kind=kind,
        package=raw["package"],
        version=table()["packages"].get(raw["package"], "?"),
        target=raw["target"],
        params=params,
        var_keyword=raw["var_keyword"],
        args_ignored=raw.get("args_ignored", False),
    )


def sd_optimizer_names() -> list[str]:
    return list(table()["optimizers"])


def torch_optimizer_names() -> list[str]:
    return list(table()["torch_optimizers"])


def effective_optimizer_type(
    optimizer_type: str | None, use_8bit_adam: bool = False, use_lion_optimizer: bool = False
) -> str:
    """The optimizer_type get_optimizer ends up with: the old switches first, then empty means AdamW."""
    if use_8bit_adam:
        return "AdamW8bit"
    if use_lion_optimizer:
        return "Lion"
    return optimizer_type or "AdamW"


def resolve_optimizer(optimizer_type: str) -> Target | None:
    """The constructor an optimizer_type reaches, as get_optimizer picks it; None for an unread dotted path.

    Raises KeyError for a name get_optimizer cannot resolve (the message lists suggestions)."""
    t = table()
    for name, raw in t["optimizers"].items():
        if name.lower() == optimizer_type.lower():  # sd-scripts lower-cases the name before matching
            return _target(name, "optimizer", raw)
    if "." not in optimizer_type:
        raw = t["torch_optimizers"].get(optimizer_type)  # getattr(torch.optim, name): case-sensitive
        if raw is not None:
            return _target(optimizer_type, "optimizer", raw)
        raise KeyError(unknown_optimizer_text(optimizer_type))
    for path, raw in t["dotted_optimizers"].items():
        if path == optimizer_type:
            return _target(optimizer_type, "optimizer", raw)
    for group in ("optimizers", "torch_optimizers"):
        for raw in t[group].values():
            if raw["target"] == optimizer_type:
                return _target(optimizer_type, "optimizer", raw)
    return None


def unknown_optimizer_text(name: str) -> str:
    names = sd_optimizer_names() + [
        n for n in torch_optimizer_names() if n.lower() not in {s.lower() for s in sd_optimizer_names()}
    ]
    # sd-scripts matches its names case-insensitively: compare lower-cased, suggest in sd-scripts' spelling
    spelling = {n.lower(): n for n in reversed(names)}
    close = [spelling[c] for c in close_matches(name.lower(), spelling, n=3)]
    hint = ("; did you mean " + ", ".join(map(repr, close)) + "?") if close else ""
    return f"sd-scripts does not know the optimizer {name!r}{hint}"


def resolve_scheduler(lr_scheduler: str | None, lr_scheduler_type: str | None) -> Target | None:
    """The scheduler factory get_scheduler_fix calls; None for a dotted lr_scheduler_type we have not read."""
    t = table()
    if lr_scheduler_type:
        if "." not in lr_scheduler_type:
            raw = t["torch_schedulers"].get(lr_scheduler_type)
            if raw is None:
                hint = did_you_mean(lr_scheduler_type, t["torch_schedulers"], n=3)
                hint = f"; {hint}" if hint else ""
                raise KeyError(f"torch.optim.lr_scheduler has no {lr_scheduler_type!r}{hint}")
            return _target(lr_scheduler_type, "scheduler", raw)
        for raw in t["torch_schedulers"].values():
            if raw["target"] == lr_scheduler_type:
                return _target(lr_scheduler_type, "scheduler", raw)
        return None
    name = lr_scheduler or "constant"
    raw = t["schedulers"].get(name)
    return _target(name, "scheduler", raw) if raw is not None else None


# --- values -----------------------------------------------------------------------------------------------


def literal(value: Any, top: bool = True) -> str:
    """Python source text that `ast.literal_eval` reads back to `value` (lists become tuples).

    Floats keep full precision (repr); infinity is written 1e999, which Python reads as inf. A top-level
    tuple is written without parentheses ("0.9,0.99", the form people type); a one-element tuple keeps its
    trailing comma.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("nan cannot be written as a Python literal")
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ",".join(literal(v, top=False) for v in value)
        if len(value) == 1:
            inner += ","
        return inner if top and value else f"({inner})"
    raise ValueError(f"{type(value).__name__} values cannot be passed to sd-scripts")


def python_value(value: Any) -> Any:
    """A TOML value as the Python value sd-scripts will hold after literal_eval: lists become tuples."""
    if isinstance(value, list):
        return tuple(python_value(v) for v in value)
    return value


def render_items(args: dict[str, Any]) -> list[str]:
    """A typed args table as sd-scripts' `key=value` items."""
    return [f"{key}={literal(python_value(value))}" for key, value in args.items()]


@dataclass(frozen=True)
class ArgIssue:
    """One problem with an args entry. `where` is ".key" (table form) or "[i]" (list form)."""

    where: str
    message: str
    fix: str = ""
    severity: Severity = "error"


def _guess(text: str) -> str | None:
    """What the user probably meant by a value literal_eval cannot read, as a Python literal."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return "True"
    if low in ("false", "no", "off"):
        return "False"
    if low in ("none", "null"):
        return "None"
    if low in ("inf", "infinity"):
        return "1e999"
    parts = [p.strip() for p in text.split(",")]
    fixed = [_guess(p) if _guess_number(p) is None else p for p in parts] if len(parts) > 1 else None
    if fixed and all(f is not None for f in fixed):
        return ",".join(fixed)  # type: ignore[arg-type]
    return repr(text.strip())


def _guess_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


_SPLIT_HINT = " (separate items are separate strings: a space or comma inside one splits or joins them)"


def parse_items(items: list[str]) -> tuple[dict[str, Any], dict[str, int], list[ArgIssue]]:
    """The list form as sd-scripts reads it: {key: literal value}, the index of each key, and problems."""
    values: dict[str, Any] = {}
    index: dict[str, int] = {}
    issues: list[ArgIssue] = []
    for i, item in enumerate(items):
        where = f"[{i}]"
        if item.count("=") != 1:
            issues.append(
                ArgIssue(
                    where,
                    f"{item!r}: sd-scripts splits each item on '=' and needs exactly one",
                    "write key=value; a value cannot contain '='" + _SPLIT_HINT,
                )
            )
            continue
        key, text = item.split("=")
        key = key.strip()
        if not key:
            issues.append(ArgIssue(where, f"{item!r} has no key", "write key=value" + _SPLIT_HINT))
            continue
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            if text.count("(") != text.count(")") or text.count("[") != text.count("]"):
                fix = (
                    f"a space split this value into several items: write {key}= without spaces (e.g. "
                    f"{key}=0.9,0.99) or use the [optimizer.optimizer_args] table"
                )
            else:
                fix = f"write {key}={_guess(text)}"
            issues.append(
                ArgIssue(
                    where,
                    f"{key}={text}: sd-scripts reads the value with Python's ast.literal_eval, "
                    "which cannot read it and stops",
                    fix,
                )
            )
            continue
        if key in values:
            issues.append(
                ArgIssue(
                    where, f"{key} is given twice; sd-scripts keeps the last ({text})", "remove one", severity="warning"
                )
            )
        values[key] = value
        index[key] = i
    return values, index, issues


def type_ok(type_text: str, value: Any) -> bool:
    if type_text == "any":
        return True
    options = type_text.split("|")
    if value is None:
        return "None" in options
    for t in options:
        if t == "bool" and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if t == "int" and isinstance(value, int):
            return True
        if t in ("float", "number") and isinstance(value, (int, float)):
            return True
        if t == "str" and isinstance(value, str):
            return True
        if t.startswith("tuple[") and isinstance(value, (tuple, list)):
            inner = t[len("tuple[") : -1].split(",")
            if len(inner) == len(value) and all(type_ok(i, v) for i, v in zip(inner, value)):
                return True
    return False


def type_words(type_text: str, form: str = "list") -> str:
    words = {
        "bool": "True or False" if form == "list" else "true or false",
        "int": "an integer",
        "float": "a number",
        "number": "a number",
        "str": "a string",
        "any": "any value",
        "None": "None",
    }
    out = []
    for t in type_text.split("|"):
        if t.startswith("tuple["):
            n = len(t[len("tuple[") : -1].split(","))
            out.append(f"{n} numbers" if form == "list" else f"a list of {n} numbers")
        else:
            out.append(words.get(t, t))
    return " or ".join(out)


def coerce_for_fix(type_text: str, value: Any) -> Any:
    """The value the user most likely meant, in the wanted type; None when there is no good guess."""
    first = type_text.split("|")[0]
    if first == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    if first in ("float", "number", "int") and isinstance(value, str):
        number = _guess_number(value)
        if number is not None:
            return int(number) if first == "int" and number.is_integer() else number
    if first == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if first.startswith("tuple[") and isinstance(value, str):
        parts = [_guess_number(p) for p in value.split(",")]
        if all(p is not None for p in parts):
            return tuple(parts)
    return None


# Value ranges the constructors themselves check (torch.optim.AdamW/SGD, dadaptation, prodigyopt raise
# ValueError("Invalid ...") on these) or that make no sense for any of them.
def range_problem(name: str, value: Any) -> str | None:
    numbers = value if isinstance(value, (tuple, list)) else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        return None
    if name in ("betas", "beta1", "beta3"):
        for v in numbers:
            if not 0.0 <= v < 1.0:
                return f"each beta must be at least 0 and below 1, got {v}"
    if name in ("eps", "weight_decay", "momentum", "d0", "d_coef", "dampening") and any(v < 0 for v in numbers):
        return f"{name} cannot be negative"
    return None


def check_values(target: Target, values: dict[str, Any], form: str) -> list[ArgIssue]:
    """Problems with the values for one constructor. `form` is "table" or "list" (for the fix's syntax)."""
    issues: list[ArgIssue] = []
    accepted = target.accepted()
    what = "optimizer" if target.kind == "optimizer" else "scheduler"
    for key, value in values.items():
        where = f".{key}"
        param = target.params.get(key)
        if param is None or key == "args":
            if target.var_keyword:
                continue
            hint = did_you_mean(key, accepted)
            hint = f"{hint} " if hint else ""
            issues.append(
                ArgIssue(
                    where,
                    f"the {what} {target.label()} takes no argument {key!r}",
                    hint + "accepted: " + (", ".join(accepted) or "none"),
                )
            )
            continue
        if param.set_by_sd_scripts:
            issues.append(
                ArgIssue(
                    where,
                    f"sd-scripts passes {key} to {target.target} itself; giving it here "
                    'as well stops the run ("got multiple values")',
                    _set_by_fix(key, target),
                )
            )
            continue
        if not type_ok(param.type, value):
            issues.append(
                ArgIssue(
                    where,
                    f"{key} must be {type_words(param.type, form)} for {target.name}, got {_show(value, form)}",
                    _type_fix(key, param, value, form),
                )
            )
            continue
        numbers = value if isinstance(value, (tuple, list)) else [value]
        default = parse_default(param)
        if any(isinstance(v, float) and math.isinf(v) for v in numbers) and not (
            isinstance(default, float) and math.isinf(default)
        ):  # inf gets through loratrain.untrusted only here, for keys unbounded by default (growth_rate)
            issues.append(
                ArgIssue(
                    where,
                    f"infinity is not a value {target.name} can use for {key} (only keys unbounded by default take it)",
                    f"write a finite number; {target.name}'s default is {param.default}",
                )
            )
            continue
        problem = range_problem(key, value)
        if problem:
            issues.append(ArgIssue(where, f"{key}: {problem}", f"{target.name}'s default is {param.default}"))
    for param in target.params.values():
        if param.required and not param.set_by_sd_scripts and param.name not in values:
            issues.append(
                ArgIssue(
                    "",
                    f"{target.name} needs {param.name} ({type_words(param.type)}); the constructor stops without it",
                    f"add {param.name} to the args",
                )
            )
    return issues


def _show(value: Any, form: str) -> str:
    if form == "table":
        return f"{_toml_type(value)} {toml_text(value)}"
    return f"{type(value).__name__} {value!r}"


def _toml_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "list", tuple: "list"}.get(
        type(value), type(value).__name__
    )


def toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _type_fix(key: str, param: Param, value: Any, form: str) -> str:
    if isinstance(value, tuple) and len(value) == 1 and type_ok(param.type, value[0]):
        return f"remove the trailing comma, which makes a tuple: write {key}={literal(value[0])}"
    guess = coerce_for_fix(param.type, value)
    if guess is None:
        if param.type.startswith("tuple["):
            n = len(param.type[len("tuple[") : -1].split(","))
            sample = (
                tuple(ast.literal_eval(param.default))
                if param.default and param.default.startswith("(")
                else tuple([0.9] * n)
            )
            guess = sample
        else:
            return f"default: {param.default}" if param.default is not None else ""
    if form == "table":
        return f"write {key} = {toml_text(guess)}"
    return f"write {key}={literal(guess)}"


def _set_by_fix(key: str, target: Target) -> str:
    if key == "lr":
        return "remove it; set optimizer.learning_rate (or unet_lr / text_encoder_lr)"
    if key == "nesterov":
        return f"remove it; {target.name} always uses nesterov=True"
    if key in ("num_warmup_steps",):
        return "remove it; set optimizer.lr_warmup_steps"
    if key in ("num_training_steps",):
        return "remove it; sd-scripts passes the run's step count"
    if key == "num_cycles":
        return "remove it; set optimizer.lr_scheduler_num_cycles"
    if key == "power":
        return "remove it; set optimizer.lr_scheduler_power"
    if key in ("min_lr_rate", "min_lr_ratio"):
        return "remove it; set extra.lr_scheduler_min_lr_ratio"
    if key == "timescale":
        return "remove it; set extra.lr_scheduler_timescale"
    if key in ("num_decay_steps", "num_stable_steps"):
        return "remove it; set extra.lr_decay_steps"
    return "remove it"


def parse_default(param: Param) -> Any:
    """The default as a Python value (inf included), for comparisons; None when there is none."""
    if param.default is None:
        return None
    if param.default in ("inf", "-inf"):
        return float(param.default)
    try:
        return ast.literal_eval(param.default)
    except (ValueError, SyntaxError):
        return param.default


def _tomlable(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_tomlable(v) for v in value)
    if isinstance(value, float):
        return not math.isnan(value)
    return isinstance(value, (bool, int, str))


def _toml_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_toml_value(v) for v in value]
    return value


def items_to_table(items: list[str]) -> dict[str, Any] | None:
    """The list form as a typed table, for import; None when an item is not a plain literal a TOML table can
    hold (then the list is kept as it is, and `check` explains the item)."""
    values, _index, issues = parse_items(items)
    if any(i.severity == "error" for i in issues) or not all(_tomlable(v) for v in values.values()):
        return None
    return {k: _toml_value(v) for k, v in values.items()}
