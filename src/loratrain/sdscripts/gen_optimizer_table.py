"""Write data/optimizer_args.json: the constructor arguments of every optimizer and scheduler sd-scripts builds.

Run it in an environment holding the packages sd-scripts' requirements.txt names (torch, bitsandbytes,
lion-pytorch, dadaptation, prodigyopt, transformers, diffusers, schedulefree):

    python -m loratrain.sdscripts.gen_optimizer_table            # rewrite the table
    python -m loratrain.sdscripts.gen_optimizer_table --diff     # show what would change

Which class or function each name reaches, and which keyword arguments sd-scripts fills in itself, follows
`get_optimizer` and `get_scheduler_fix` in library/train_util.py at sd-scripts 48d368f (the mapping below
restates them; the signatures are read with `inspect.signature`, never typed by hand, except the few
parameters listed in TYPE_OVERRIDES whose signature says nothing). The check commands never import this
module: they read the JSON it writes (loratrain.sdscripts.optimizers).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

SD_SCRIPTS_COMMIT = "48d368fa557731ad0488c07304dfeba8c07910eb"
TABLE = Path(__file__).resolve().parent.parent / "data" / "optimizer_args.json"

# sd-scripts' optimizer_type (matched case-insensitively) -> (distribution, module, class, keywords sd-scripts
# passes itself, defaults sd-scripts changes). From get_optimizer at 48d368f.
SD_OPTIMIZERS: dict[str, tuple[str, str, str, tuple[str, ...], dict[str, Any]]] = {
    "AdamW": ("torch", "torch.optim", "AdamW", ("params", "lr"), {}),
    # SGDNesterov: SGD(..., nesterov=True) and momentum 0.9 unless given
    "SGDNesterov": ("torch", "torch.optim", "SGD", ("params", "lr", "nesterov"), {"momentum": 0.9}),
    "AdamW8bit": ("bitsandbytes", "bitsandbytes.optim", "AdamW8bit", ("params", "lr"), {}),
    "SGDNesterov8bit": (
        "bitsandbytes",
        "bitsandbytes.optim",
        "SGD8bit",
        ("params", "lr", "nesterov"),
        {"momentum": 0.9},
    ),
    "Lion8bit": ("bitsandbytes", "bitsandbytes.optim", "Lion8bit", ("params", "lr"), {}),
    "PagedAdamW8bit": ("bitsandbytes", "bitsandbytes.optim", "PagedAdamW8bit", ("params", "lr"), {}),
    "PagedLion8bit": ("bitsandbytes", "bitsandbytes.optim", "PagedLion8bit", ("params", "lr"), {}),
    "PagedAdamW": ("bitsandbytes", "bitsandbytes.optim", "PagedAdamW", ("params", "lr"), {}),
    "PagedAdamW32bit": ("bitsandbytes", "bitsandbytes.optim", "PagedAdamW32bit", ("params", "lr"), {}),
    "Lion": ("lion-pytorch", "lion_pytorch", "Lion", ("params", "lr"), {}),
    "DAdaptation": ("dadaptation", "dadaptation.experimental", "DAdaptAdamPreprint", ("params", "lr"), {}),
    "DAdaptAdamPreprint": ("dadaptation", "dadaptation.experimental", "DAdaptAdamPreprint", ("params", "lr"), {}),
    "DAdaptAdaGrad": ("dadaptation", "dadaptation", "DAdaptAdaGrad", ("params", "lr"), {}),
    "DAdaptAdam": ("dadaptation", "dadaptation", "DAdaptAdam", ("params", "lr"), {}),
    "DAdaptAdan": ("dadaptation", "dadaptation", "DAdaptAdan", ("params", "lr"), {}),
    "DAdaptAdanIP": ("dadaptation", "dadaptation.experimental", "DAdaptAdanIP", ("params", "lr"), {}),
    "DAdaptLion": ("dadaptation", "dadaptation", "DAdaptLion", ("params", "lr"), {}),
    "DAdaptSGD": ("dadaptation", "dadaptation", "DAdaptSGD", ("params", "lr"), {}),
    "Prodigy": ("prodigyopt", "prodigyopt", "Prodigy", ("params", "lr"), {}),
    # Adafactor: sd-scripts passes lr=None when relative_step is on (its default) and the learning rate otherwise
    "Adafactor": ("transformers", "transformers.optimization", "Adafactor", ("params", "lr"), {}),
    "RAdamScheduleFree": ("schedulefree", "schedulefree", "RAdamScheduleFree", ("params", "lr"), {}),
    "AdamWScheduleFree": ("schedulefree", "schedulefree", "AdamWScheduleFree", ("params", "lr"), {}),
    "SGDScheduleFree": ("schedulefree", "schedulefree", "SGDScheduleFree", ("params", "lr"), {}),
}

# Modules whose every optimizer class is read, so that a dotted optimizer_type naming one is checked too.
DOTTED_MODULES = {"bitsandbytes.optim": "bitsandbytes"}

# lr_scheduler -> (distribution, module, function, keywords sd-scripts passes itself). From get_scheduler_fix.
SD_SCHEDULERS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "linear": (
        "transformers",
        "transformers.optimization",
        "get_linear_schedule_with_warmup",
        ("optimizer", "num_warmup_steps", "num_training_steps"),
    ),
    "cosine": (
        "transformers",
        "transformers.optimization",
        "get_cosine_schedule_with_warmup",
        ("optimizer", "num_warmup_steps", "num_training_steps"),
    ),
    "cosine_with_restarts": (
        "transformers",
        "transformers.optimization",
        "get_cosine_with_hard_restarts_schedule_with_warmup",
        ("optimizer", "num_warmup_steps", "num_training_steps", "num_cycles"),
    ),
    "polynomial": (
        "transformers",
        "transformers.optimization",
        "get_polynomial_decay_schedule_with_warmup",
        ("optimizer", "num_warmup_steps", "num_training_steps", "power"),
    ),
    "constant": ("transformers", "transformers.optimization", "get_constant_schedule", ("optimizer",)),
    "constant_with_warmup": (
        "transformers",
        "transformers.optimization",
        "get_constant_schedule_with_warmup",
        ("optimizer", "num_warmup_steps"),
    ),
    "inverse_sqrt": (
        "transformers",
        "transformers.optimization",
        "get_inverse_sqrt_schedule",
        ("optimizer", "num_warmup_steps", "timescale"),
    ),
    "cosine_with_min_lr": (
        "transformers",
        "transformers.optimization",
        "get_cosine_with_min_lr_schedule_with_warmup",
        ("optimizer", "num_warmup_steps", "num_training_steps", "num_cycles", "min_lr_rate"),
    ),
    "warmup_stable_decay": (
        "transformers",
        "transformers.optimization",
        "get_wsd_schedule",
        ("optimizer", "num_warmup_steps", "num_stable_steps", "num_decay_steps", "num_cycles", "min_lr_ratio"),
    ),
    "piecewise_constant": ("diffusers", "diffusers.optimization", "get_piecewise_constant_schedule", ("optimizer",)),
    # Adafactor with relative_step: AdafactorSchedule(optimizer, initial_lr); lr_scheduler_args are not passed
    "adafactor": ("transformers", "transformers.optimization", "AdafactorSchedule", ("optimizer", "initial_lr")),
}
# lr_scheduler_type without a dot names a class in torch.optim.lr_scheduler, built as cls(optimizer, **args).
TORCH_SCHEDULER_MODULE = "torch.optim.lr_scheduler"

# Parameters whose signature has neither annotation nor a telling default (None), typed from their use.
TYPE_OVERRIDES: dict[tuple[str, str], str] = {
    ("Prodigy", "beta3"): "float|None",  # prodigyopt: beta3 = betas[1] ** 0.5 when None
    ("Adafactor", "beta1"): "float|None",  # transformers: first-moment decay; None keeps no first moment
    ("Adafactor", "lr"): "float|None",
    ("*", "args"): "any",  # bitsandbytes' internal config object
}


def _annotation_type(annotation: Any) -> str | None:
    """A type word from an annotation (object or string), or None when it says nothing we check."""
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation if isinstance(annotation, str) else _annotation_text(annotation)
    text = text.replace("typing.", "").replace(" ", "")
    nullable = "None" in text or text.startswith("Optional[")
    core = text
    if core.startswith("Optional[") and core.endswith("]"):
        core = core[len("Optional[") : -1]
    if core.startswith("Union[") and core.endswith("]"):
        core = core[len("Union[") : -1].replace(",", "|")
    parts = [p for p in _split_top(core, "|") if p not in ("None", "NoneType")]
    words = set()
    for p in parts:
        low = p.lower()
        if low.startswith("tuple["):
            inner = [_annotation_type(x) or "any" for x in _split_top(p[6:-1], ",")]
            inner = [i.split("|")[0] for i in inner]
            words.add("tuple[" + ",".join(inner) + "]")
        elif p in ("bool",):
            words.add("bool")
        elif p in ("int",):
            words.add("int")
        elif p in ("float", "SupportsFloat") or p.endswith("Tensor") and words & {"float"}:
            words.add("float")
        elif p.endswith("Tensor"):
            continue  # float | Tensor: only the number can come from a command line
        elif p == "str":
            words.add("str")
        else:
            return "any"
    if not words:
        return None
    if words == {"int", "float"}:
        words = {"float"}
    if len(words) > 1:
        return "any"
    return words.pop() + ("|None" if nullable else "")


def _annotation_text(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation)
    for junk in ("torch.", "collections.abc.", "builtins."):
        text = text.replace(junk, "")
    return text


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return [p.strip() for p in parts]


def _default_type(default: Any) -> str:
    if default is None:
        return "any"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "number"  # an unannotated 0 or 1 is as often a float (weight_decay=0) as a count
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, tuple):
        return "tuple[" + ",".join(_default_type(v).replace("number", "float") for v in default) + "]"
    return "any"


def _default_text(default: Any) -> str | None:
    if default is inspect.Parameter.empty:
        return None
    if isinstance(default, float) and math.isinf(default):
        return "inf" if default > 0 else "-inf"
    return repr(default)


def read_params(owner: str, target: Any, passed: tuple[str, ...], changed: dict[str, Any]) -> dict[str, Any]:
    sig = inspect.signature(target.__init__ if inspect.isclass(target) else target)
    params = []
    var_keyword = False
    for p in sig.parameters.values():
        if p.name == "self" or p.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
            continue
        override = TYPE_OVERRIDES.get((owner, p.name)) or TYPE_OVERRIDES.get(("*", p.name))
        source = "override" if override else "annotation"
        typ = override or _annotation_type(p.annotation)
        if typ is None:
            source = "default"
            typ = _default_type(p.default) if p.default is not inspect.Parameter.empty else "any"
        entry: dict[str, Any] = {
            "name": p.name,
            "type": typ,
            "type_from": source,
            "required": p.default is inspect.Parameter.empty,
        }
        text = _default_text(p.default)
        if text is not None:
            entry["default"] = text
        if p.name in changed:
            entry["sd_scripts_default"] = repr(changed[p.name])
        if p.name in passed:
            entry["set_by_sd_scripts"] = True
        params.append(entry)
    return {"params": params, "var_keyword": var_keyword}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _load(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def build() -> dict[str, Any]:
    """Read every target that can be imported here. Missing packages are listed under "missing"."""
    table: dict[str, Any] = {
        "source": "kohya-ss/sd-scripts library/train_util.py get_optimizer / get_scheduler_fix",
        "commit": SD_SCRIPTS_COMMIT,
        "generated_by": "python -m loratrain.sdscripts.gen_optimizer_table",
        "python": ".".join(map(str, sys.version_info[:3])),
        "packages": {},
        "optimizers": {},
        "torch_optimizers": {},
        "dotted_optimizers": {},
        "schedulers": {},
        "torch_schedulers": {},
    }
    for name, (dist, module, cls, passed, changed) in SD_OPTIMIZERS.items():
        target = _try_load(dist, module, cls, table)
        if target is None:
            continue
        table["optimizers"][name] = {
            "package": dist,
            "target": f"{module}.{cls}",
            **read_params(name, target, passed, changed),
        }
    if _try_load("torch", "torch.optim", "Optimizer", table) is not None:
        import torch.optim

        for name in sorted(dir(torch.optim)):
            obj = getattr(torch.optim, name)
            if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer:
                table["torch_optimizers"][name] = {
                    "package": "torch",
                    "target": f"torch.optim.{name}",
                    **read_params(name, obj, ("params", "lr"), {}),
                }
        from torch.optim import lr_scheduler as tls

        for name in sorted(dir(tls)):
            obj = getattr(tls, name)
            if (
                inspect.isclass(obj)
                and obj.__module__ == tls.__name__
                and name[0].isupper()
                and (issubclass(obj, tls.LRScheduler) or name == "ReduceLROnPlateau")
                and name not in ("LRScheduler", "_LRScheduler")
            ):
                table["torch_schedulers"][name] = {
                    "package": "torch",
                    "target": f"{TORCH_SCHEDULER_MODULE}.{name}",
                    **read_params(name, obj, ("optimizer",), {}),
                }
    for module, dist in DOTTED_MODULES.items():
        if _try_load(dist, module, "__name__", table) is None:
            continue
        mod = importlib.import_module(module)
        import torch.optim

        for name in sorted(dir(mod)):
            obj = getattr(mod, name)
            if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and name[0].isupper():
                table["dotted_optimizers"][f"{module}.{name}"] = {
                    "package": dist,
                    "target": f"{module}.{name}",
                    **read_params(name, obj, ("params", "lr"), {}),
                }
    for name, (dist, module, func, passed) in SD_SCHEDULERS.items():
        target = _try_load(dist, module, func, table)
        if target is None:
            continue
        table["schedulers"][name] = {
            "package": dist,
            "target": f"{module}.{func}",
            **read_params(name, target, passed, {}),
        }
        if name == "adafactor":
            table["schedulers"][name]["args_ignored"] = True  # get_scheduler_fix never passes lr_scheduler_args
    table["packages"] = dict(sorted(table["packages"].items()))
    return table


def _try_load(dist: str, module: str, name: str, table: dict[str, Any]) -> Any:
    version = _version(dist)
    if version is None:
        table.setdefault("missing", [])
        if dist not in table["missing"]:
            table["missing"].append(dist)
        return None
    table["packages"][dist] = version
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # a broken install: report, do not guess
        raise SystemExit(f"{dist} {version} is installed but {module} does not import: {exc}") from None
    return mod if name == "__name__" else getattr(mod, name)


def dumps(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diff", action="store_true", help="print the changes instead of writing")
    parser.add_argument("--out", type=Path, default=TABLE)
    ns = parser.parse_args(argv)
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    table = build()
    if table.get("missing"):
        print("not installed, not read: " + ", ".join(table["missing"]), file=sys.stderr)
        if not ns.diff:
            print("refusing to write a partial table; install them first", file=sys.stderr)
            return 1
    text = dumps(table)
    if ns.diff:
        import difflib

        old = ns.out.read_text(encoding="utf-8") if ns.out.exists() else ""
        sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), str(ns.out), "new"))
        return 0
    ns.out.write_text(text, encoding="utf-8")
    print(f"wrote {ns.out} ({len(table['optimizers'])} sd-scripts optimizers, {len(table['schedulers'])} schedulers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
