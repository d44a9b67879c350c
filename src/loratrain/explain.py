"""The flag index behind `loratrain explain`, built from the models' Field descriptions and the flag table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from loratrain.errors import ConfigError, Problem, did_you_mean
from loratrain.schema.accelerate import AccelerateArgs
from loratrain.schema.choices import SECRET_ENV
from loratrain.schema.common import field_extra
from loratrain.schema.network import NetworkGroup
from loratrain.schema.network_args import LoraArgs, LycorisArgs
from loratrain.schema.root import SCRIPT_GROUPS, ExtraArgs, TrainConfig
from loratrain.sdscripts import flags


@dataclass
class Entry:
    key: str  # dotted config key, e.g. "network.network_dim"
    table: str
    name: str
    description: str
    type: str
    default: str  # what applies when the key is not set
    allowed: list[str] = field(default_factory=list)
    advice: str = ""
    interacts: list[str] = field(default_factory=list)
    toml: str = ""
    rendered: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _schema_type(prop: dict[str, Any]) -> tuple[str, list[Any]]:
    """A short type text and allowed values from a JSON-schema property."""
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    words: list[str] = []
    allowed: list[Any] = []
    for p in options:
        if "enum" in p or "const" in p:
            allowed.extend(p.get("enum", [p.get("const")]))
            words.append("choice")
            continue
        kind = p.get("type", "value")
        if kind == "array":
            inner = p.get("items", {}).get("type", "value")
            count = p.get("minItems")
            words.append(f"list of {inner}" + (f" ({count} values)" if count and count == p.get("maxItems") else ""))
            continue
        bounds = []
        for k, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
            if k in p:
                bounds.append(f"{sym} {p[k]}")
        if p.get("minLength"):
            bounds.append("not empty")
        words.append(kind + (f" ({', '.join(bounds)})" if bounds else ""))
    return " or ".join(dict.fromkeys(words)) or "value", allowed


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _script_token(dest: str, value: Any) -> str:
    from loratrain.schema.common import format_value

    spec = flags.get(dest)
    option = spec.option if spec else f"--{dest}"
    if spec is not None and spec.kind == "store_true":
        return option
    if isinstance(value, list) or (spec is not None and spec.kind == "list"):
        values = value if isinstance(value, list) else [value]
        return option + " " + " ".join(format_value(v) for v in values)
    return f"{option}={format_value(value)}"


def _default_text(dest: str) -> str:
    spec = flags.get(dest)
    if spec is None:
        return "not set"
    if spec.kind == "store_true":
        return "off (flag omitted)"
    if spec.default in (None, ""):
        return "not set (flag omitted; sd-scripts decides)"
    return f"not set: sd-scripts uses {spec.default!r}"


def _extra_example(dest: str) -> Any:
    """An illustrative value for a pass-through flag: sd-scripts' own default where it has one."""
    spec = flags.get(dest)
    if spec is None:
        return None
    sample = {"int": 1, "float": 0.1, "int_or_float": 100, "str": "...", "Path": "..."}.get(spec.type)
    value = spec.default if spec.default not in (None, "") else sample
    if spec.kind == "list":
        return [value] if not isinstance(value, list) else value
    if spec.type == "float" and isinstance(value, int):
        return float(value)
    return value


def _model_entries(model: type[BaseModel], table: str, prefix: str) -> list[Entry]:
    schema = model.model_json_schema()
    entries = []
    for name, info in model.model_fields.items():
        if name == "kind" or name == "network_args":
            continue
        extra = field_extra(model, name)
        type_text, raw_allowed = _schema_type(schema["properties"].get(name, {}))
        allowed = [str(v) for v in raw_allowed]
        key = f"{prefix}{name}"
        example = extra.get("example")
        entry = Entry(
            key=key,
            table=table,
            name=name,
            description=info.description or "",
            type=type_text,
            default=_default_text(name) if table not in ("accelerate",) and "network_args" not in key else "not set",
            allowed=allowed,
            advice=extra.get("advice", ""),
            interacts=list(extra.get("interacts", [])),
        )
        if example is None and raw_allowed:
            example = raw_allowed[0]
        if example is None and type_text.startswith("boolean"):
            example = True
        if example is None and table == "extra":
            example = _extra_example(name)
        if example is not None:
            section = prefix.rstrip(".") or table
            entry.toml = f"[{section}]\n{name} = {_toml_literal(example)}"
            if "network_args" in key:
                from loratrain.schema.common import format_value

                text = (
                    ",".join(format_value(v) for v in example) if isinstance(example, list) else format_value(example)
                )
                entry.rendered = f"--network_args {name}={text}"
            elif table == "accelerate":
                entry.rendered = (
                    f"accelerate launch --{name}={example}" if example is not True else f"accelerate launch --{name}"
                )
            else:
                entry.rendered = _script_token(name, example)
        if name in SECRET_ENV:
            entry.notes.append(f"rendered as the environment variable {SECRET_ENV[name]}, never on the command line")
        if extra.get("ignored"):
            entry.notes.append("accepted because guides use it, but the module never reads it (a warning says so)")
        entries.append(entry)
    return entries


def build_index(optimizer_type: str | None = None) -> dict[str, Entry]:
    """Every documented key. `optimizer_type` narrows optimizer_args keys to that optimizer's constructor."""
    index: dict[str, Entry] = {}
    for table, model in SCRIPT_GROUPS.items():
        for e in _model_entries(model, table, f"{table}."):
            index[e.key] = e
    for e in _model_entries(AccelerateArgs, "accelerate", "accelerate."):
        index[e.key] = e
    for module, model in (("lycoris.kohya", LycorisArgs), ("networks.lora", LoraArgs)):
        for e in _model_entries(model, "network", "network.network_args."):
            e.notes.insert(0, f'with network_module = "{module}"')
            if e.key in index:
                index[e.key].notes.append(f'with network_module = "{module}": {e.description}')
            else:
                index[e.key] = e
    args = NetworkGroup.model_fields["network_args"]
    index["network.network_args"] = Entry(
        key="network.network_args",
        table="network",
        name="network_args",
        description=args.description or "",
        type="table",
        default="not set",
        interacts=["network.network_module"],
        toml='[network.network_args]\nalgo = "locon"\nconv_dim = 8',
        rendered="--network_args algo=locon conv_dim=8",
        notes=["keys: see `loratrain explain --list` under network.network_args"],
    )
    for e in _model_entries(ExtraArgs, "extra", "extra."):
        index[e.key] = e
    for name in ("sd_scripts", "python"):
        info = TrainConfig.model_fields[name]
        index[name] = Entry(
            key=name,
            table="",
            name=name,
            description=info.description or "",
            type="string",
            default="not set",
            toml=f'{name} = "..."',
        )
    _optimizer_entries(index, optimizer_type)
    return index


def check_optimizer_arg(name: str, optimizer_type: str) -> None:
    """Raise when `name` is an optimizer_args key the given optimizer does not take (with did-you-mean)."""
    from loratrain.sdscripts import optimizers as opt

    wanted = normalize(name)
    if not wanted.startswith(("optimizer_args.", "optimizer.optimizer_args.")):
        return
    key = wanted.rsplit(".", 1)[-1]
    target = opt.resolve_optimizer(optimizer_type)
    if target is None or key in target.accepted():
        return
    hint = did_you_mean(key, target.accepted())
    fix = (f"{hint} " if hint else "") + "accepted: " + ", ".join(target.accepted())
    raise ConfigError(
        [
            Problem(
                f"the optimizer {target.label()} takes no argument {key!r}",
                file="explain",
                key=f"optimizer.optimizer_args.{key}",
                fix=fix,
            )
        ]
    )


def optimizer_of(config_path: str) -> str:
    """The optimizer_type a config asks for (AdamW when unset), read without validating the config."""
    from pathlib import Path

    from loratrain.config.loader import read_toml
    from loratrain.sdscripts import optimizers as opt

    data, _text = read_toml(Path(config_path))
    extra = data.get("extra", {}) if isinstance(data.get("extra"), dict) else {}
    section = data.get("optimizer", {}) if isinstance(data.get("optimizer"), dict) else {}
    return opt.effective_optimizer_type(
        section.get("optimizer_type"), bool(extra.get("use_8bit_adam")), bool(extra.get("use_lion_optimizer"))
    )


def _optimizer_entries(index: dict[str, Entry], optimizer_type: str | None) -> None:
    """optimizer_type with every optimizer and its package; one entry per optimizer_args / lr_scheduler_args
    key, typed from the constructor table (for one optimizer, or for all that take the key)."""
    from loratrain.schema.common import format_value
    from loratrain.sdscripts import optimizer_docs
    from loratrain.sdscripts import optimizers as opt

    entry = index["optimizer.optimizer_type"]
    entry.allowed = opt.sd_optimizer_names()
    sd_targets = [opt.resolve_optimizer(n) for n in opt.sd_optimizer_names()]
    for name, t in zip(opt.sd_optimizer_names(), sd_targets):
        assert t is not None  # sd-scripts' own names are always in the table
        entry.notes.append(f"{name}: {t.target} ({t.package} {t.version}). {optimizer_docs.OPTIMIZER_DOCS[name]}")
    entry.notes.append(
        "any other torch.optim class by its exact name, or a dotted module.Class path (then "
        "optimizer_args are not checked)"
    )
    if optimizer_type:
        try:
            target = opt.resolve_optimizer(optimizer_type)
        except KeyError as exc:
            raise ConfigError(
                [
                    Problem(
                        exc.args[0],
                        file="explain",
                        key="optimizer.optimizer_type",
                        fix="see `loratrain explain optimizer_type`",
                    )
                ]
            ) from None
        if target is None:
            raise ConfigError(
                [
                    Problem(
                        f"{optimizer_type} is not in loratrain's optimizer table; its arguments are not known",
                        file="explain",
                        key="optimizer.optimizer_type",
                    )
                ]
            )
        targets = [target]
    else:
        targets = [t for t in sd_targets if t is not None]
    _arg_entries(index, "optimizer_args", targets, optimizer_docs.OPTIMIZER_ARG_DOCS, format_value)
    schedulers = [opt.resolve_scheduler(n, None) for n in opt.table()["schedulers"]]
    _arg_entries(
        index,
        "lr_scheduler_args",
        [t for t in schedulers if t is not None],
        optimizer_docs.SCHEDULER_ARG_DOCS,
        format_value,
    )
    for field_name, what in (("optimizer_args", "optimizer"), ("lr_scheduler_args", "scheduler")):
        e = index[f"optimizer.{field_name}"]
        e.type = "table (typed keys) or list of key=value strings"
        e.notes.append(
            f"keys depend on the {what}: `loratrain explain {field_name}.KEY`; `loratrain explain --list` lists them"
        )


def _arg_entries(index: dict[str, Entry], field_name: str, targets: list, docs: dict[str, str], format_value) -> None:
    from loratrain.sdscripts import optimizer_docs
    from loratrain.sdscripts import optimizers as opt

    by_key: dict[str, list] = {}
    for t in targets:
        for name in t.accepted():
            by_key.setdefault(name, []).append(t)
    for name in sorted(by_key):
        owners = by_key[name]
        params = [t.params[name] for t in owners]
        types = sorted({opt.type_words(p.type, "table") for p in params})
        first = params[0]
        example = opt.parse_default(first) if first.default not in (None, "None") else None
        if isinstance(example, float) and example in (float("inf"), float("-inf")):
            example = None
        key = f"optimizer.{field_name}.{name}"
        e = Entry(
            key=key,
            table="optimizer",
            name=name,
            description=optimizer_docs.arg_doc(docs, name, owners[0].target),
            type=" or ".join(types),
            default=f"{first.default} ({owners[0].name})" if len(owners) == 1 else "the constructor's (see notes)",
            interacts=["optimizer.optimizer_type" if field_name == "optimizer_args" else "optimizer.lr_scheduler"],
        )
        for t, p in zip(owners, params):
            text = f"{t.name}: {opt.type_words(p.type, 'table')}, default {p.default}"
            if p.sd_scripts_default:
                text += f" (sd-scripts uses {p.sd_scripts_default})"
            e.notes.append(text)
        if example is not None:
            e.toml = f"[optimizer.{field_name}]\n{name} = {opt.toml_text(example)}"
            e.rendered = f"--{field_name} {name}={opt.literal(opt.python_value(example))}"
        index[key] = e


def normalize(name: str) -> str:
    name = name.strip()
    if name.startswith("--"):
        name = name[2:]
    return name.replace("-", "_") if "." not in name else name


def lookup(name: str, index: dict[str, Entry] | None = None) -> list[Entry]:
    """Entries matching a flag name, a dotted key, `--flag`, or `network_args.key`. Raises with suggestions."""
    index = index or build_index()
    wanted = normalize(name)
    if wanted in index:
        return [index[wanted]]
    hits = [e for e in index.values() if e.key.endswith("." + wanted) or e.name == wanted]
    if wanted.startswith("network_args."):
        hits = [index[k] for k in index if k == "network." + wanted]
    if hits:
        # Prefer the script flag over a network_args key of the same name.
        hits.sort(key=lambda e: ("network_args" in e.key, e.key))
        return hits
    names = sorted({e.name for e in index.values()} | set(index))
    fix = did_you_mean(wanted, names, n=3) or "see `loratrain explain --list` for every key"
    raise ConfigError([Problem(f"no flag or key named {name!r}", file="explain", fix=fix)])
