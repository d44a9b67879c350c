"""Rules for optimizer_args, lr_scheduler_args and the optimizer settings sd-scripts changes at run time.

Each rule restates what sd-scripts 48d368f (library/train_util.py: get_optimizer, get_scheduler_fix) or the
optimizer itself does, and says where, so a reader can check it. The keyword arguments are checked against
the constructor table (loratrain.sdscripts.optimizers, read from the JSON; nothing heavy is imported).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

from loratrain.config.rule_kit import collect, error, warning
from loratrain.effective import Effective
from loratrain.errors import Problem
from loratrain.schema.root import TrainConfig
from loratrain.sdscripts import optimizers as opt

OPT_KEY = "optimizer.optimizer_args"
SCHED_KEY = "optimizer.lr_scheduler_args"
RULES, rule = collect()


def _values(raw: dict[str, Any] | list[str], key: str) -> tuple[dict[str, Any], str, list[Problem], dict[str, str]]:
    """The args as Python values, the form, problems reading them, and each key's place for messages."""
    problems: list[Problem] = []
    if isinstance(raw, dict):
        values: dict[str, Any] = {}
        for k, v in raw.items():
            bad = _unplain(v)
            if bad:
                problems.append(error(f"{key}.{k}", bad, "use a number, true/false, a string or a list of numbers"))
                continue
            if isinstance(v, str) and "=" in v:
                problems.append(
                    error(
                        f"{key}.{k}",
                        "a value cannot contain '=': sd-scripts splits each item on it and stops",
                        "remove the '='",
                    )
                )
                continue
            if isinstance(v, float) and math.isnan(v):
                problems.append(error(f"{key}.{k}", "nan cannot be passed to sd-scripts", "give a number"))
                continue
            values[k] = opt.python_value(v)
        return values, "table", problems, {k: f"{key}.{k}" for k in raw}
    values, index, issues = opt.parse_items(list(raw))
    for issue in issues:
        problems.append(Problem(message=issue.message, key=key + issue.where, fix=issue.fix, severity=issue.severity))
    return values, "list", problems, {k: f"{key}[{i}]" for k, i in index.items()}


def _unplain(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    for v in items:
        if isinstance(v, list):
            if _unplain(v):
                return _unplain(v)
        elif not isinstance(v, (bool, int, float, str)):
            return f"a {type(v).__name__} cannot be passed to the constructor"
    return ""


def _issues(
    target: opt.Target, values: dict[str, Any], form: str, key: str, places: dict[str, str]
) -> Iterator[Problem]:
    for issue in opt.check_values(target, values, form):
        name = issue.where[1:] if issue.where.startswith(".") else ""
        yield Problem(message=issue.message, key=places.get(name, key), fix=issue.fix, severity=issue.severity)


def optimizer_values(cfg: TrainConfig) -> dict[str, Any]:
    """optimizer_args as Python values (unreadable items left out)."""
    raw = cfg.optimizer.optimizer_args
    if raw is None:
        return {}
    return _values(raw, OPT_KEY)[0]


@rule
def optimizer_args(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    o = cfg.optimizer
    name = view.optimizer_type
    # get_optimizer: named types match case-insensitively; any other name is getattr(torch.optim, name)
    # (case-sensitive) or, with a dot, importlib.import_module + getattr.
    try:
        target = opt.resolve_optimizer(name)
    except KeyError as exc:
        yield error(
            "optimizer.optimizer_type",
            exc.args[0],
            "use one of: " + ", ".join(opt.sd_optimizer_names()) + "; a torch.optim class name; or a "
            "dotted module.Class path",
        )
        return
    if target is None:
        yield warning(
            "optimizer.optimizer_type",
            f"{name} is not in loratrain's optimizer table, so optimizer_args are passed unchecked",
            "make sure the module is installed in the training environment",
        )
    if o.optimizer_args is None:
        return
    values, form, problems, places = _values(o.optimizer_args, OPT_KEY)
    yield from problems
    if target is not None:
        yield from _issues(target, values, form, OPT_KEY, places)


def _scheduler_in_effect(cfg: TrainConfig, view: Effective) -> str:
    """The scheduler sd-scripts really builds: Adafactor with relative_step forces its own (get_optimizer
    rewrites args.lr_scheduler to "adafactor:<lr>")."""
    if _adafactor_relative_step(cfg, view):
        return "adafactor"
    return cfg.optimizer.lr_scheduler or "constant"


@rule
def scheduler_args(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    o = cfg.optimizer
    lr_type = cfg.extra.lr_scheduler_type or None
    optimizer = view.optimizer_type.lower()
    if optimizer.endswith("schedulefree"):
        # get_scheduler_fix returns a dummy scheduler for schedule-free optimizers (is_schedulefree_optimizer)
        for key, value in (
            ("optimizer.lr_scheduler", o.lr_scheduler),
            (SCHED_KEY, o.lr_scheduler_args),
            ("extra.lr_scheduler_type", lr_type),
        ):
            if value and value != "constant":
                yield warning(
                    key,
                    f"{view.optimizer_type} is schedule-free: sd-scripts builds no scheduler and ignores this",
                    "remove it",
                )
        if o.lr_warmup_steps:
            yield warning(
                "optimizer.lr_warmup_steps",
                "schedule-free optimizers ignore lr_warmup_steps; "
                "AdamWScheduleFree and SGDScheduleFree take warmup_steps in optimizer_args instead",
                "remove it, or set optimizer_args.warmup_steps",
            )
        return
    if lr_type:
        # get_scheduler_fix: lr_scheduler_type wins over lr_scheduler, and a warm-up makes it raise
        # ValueError("... does not require `num_warmup_steps`").
        if o.lr_scheduler:
            yield warning(
                "optimizer.lr_scheduler", f"extra.lr_scheduler_type = {lr_type!r} replaces it", "remove one of them"
            )
        if o.lr_warmup_steps:
            yield error(
                "optimizer.lr_warmup_steps",
                "sd-scripts stops when lr_scheduler_type is combined with a warm-up",
                "remove lr_warmup_steps",
            )
    try:
        target = opt.resolve_scheduler(_scheduler_in_effect(cfg, view) if not lr_type else None, lr_type)
    except KeyError as exc:
        yield error(
            "extra.lr_scheduler_type",
            exc.args[0],
            "use a class name of torch.optim.lr_scheduler or a dotted module.Class path",
        )
        return
    if target is None:
        if lr_type:
            yield warning(
                "extra.lr_scheduler_type",
                f"{lr_type} is not in loratrain's scheduler table, so lr_scheduler_args are passed unchecked",
            )
        return
    if o.lr_scheduler_args is None:
        values: dict[str, Any] = {}
        places: dict[str, str] = {}
        form = "table"
    else:
        values, form, problems, places = _values(o.lr_scheduler_args, SCHED_KEY)
        yield from problems
    if target.args_ignored and values:
        # get_scheduler_fix: the adafactor branch returns AdafactorSchedule(optimizer, initial_lr) without them
        yield warning(
            SCHED_KEY, "the adafactor scheduler takes no lr_scheduler_args; sd-scripts drops them", "remove them"
        )
        return
    yield from _issues(target, values, form, SCHED_KEY, places)


def _adafactor_relative_step(cfg: TrainConfig, view: Effective) -> bool:
    """Adafactor through sd-scripts' named branch with relative_step on (get_optimizer sets it True unless
    given, and back to True when warmup_init is on)."""
    if view.optimizer_type.lower() != "adafactor":
        return False
    values = optimizer_values(cfg)
    relative = values.get("relative_step", True)
    return bool(relative) or bool(values.get("warmup_init", False))


@rule
def adafactor(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    o = cfg.optimizer
    optimizer = view.optimizer_type
    values = optimizer_values(cfg)
    if optimizer.lower() != "adafactor":
        # A dotted path to transformers' Adafactor skips sd-scripts' Adafactor branch: lr is passed as given, and
        # transformers' Adafactor raises "Cannot combine manual `lr` and `relative_step=True` options".
        if optimizer in ("transformers.optimization.Adafactor", "transformers.Adafactor") and values.get(
            "relative_step", True
        ):
            yield error(
                OPT_KEY,
                "transformers' Adafactor refuses a learning rate while relative_step is on, and "
                "this path passes sd-scripts' learning rate",
                'use optimizer_type = "Adafactor" (sd-scripts '
                "handles relative_step there) or set relative_step = false",
            )
        return
    relative = values.get("relative_step", True)
    if not relative and values.get("warmup_init", False):
        # get_optimizer: "set relative_step to True because warmup_init is True"
        yield error(
            f"{OPT_KEY}.relative_step" if isinstance(o.optimizer_args, dict) else OPT_KEY,
            "warmup_init = true makes sd-scripts turn relative_step back on, so your learning rates and "
            "scheduler are dropped",
            "set warmup_init = false to keep relative_step off",
        )
        relative = True
    if relative:
        # get_optimizer: with relative_step the optimizer computes its own step size; sd-scripts sets lr=None,
        # drops unet_lr/text_encoder_lr ("unet_lr and text_encoder_lr are ignored") and replaces lr_scheduler
        # with "adafactor:<learning_rate>" (AdafactorSchedule, which only reports the rate).
        for name in ("unet_lr", "text_encoder_lr"):
            if getattr(o, name) is not None:
                # A warning: the run is valid (the GUI's own Adafactor preset does this on purpose), only the
                # rate is not the one written here.
                yield warning(
                    f"optimizer.{name}",
                    "Adafactor with relative_step (its default) ignores it: "
                    "sd-scripts drops unet_lr and text_encoder_lr",
                    "set relative_step = false (with "
                    "scale_parameter = false, warmup_init = false) to use your learning rates",
                )
        if o.lr_scheduler not in (None, "adafactor"):
            yield warning(
                "optimizer.lr_scheduler",
                f"Adafactor with relative_step (its default) replaces "
                f"{o.lr_scheduler!r} with its own adafactor scheduler",
                "set relative_step = false to keep this scheduler, or remove lr_scheduler",
            )
        if o.lr_warmup_steps:
            # get_scheduler_fix: the adafactor scheduler goes through wrap_check_needless_num_warmup_steps
            yield error(
                "optimizer.lr_warmup_steps",
                "the adafactor scheduler that relative_step forces takes "
                "no warm-up: sd-scripts stops with 'does not require num_warmup_steps'",
                "remove lr_warmup_steps (warmup_init = true is Adafactor's own warm-up)",
            )
    else:
        if o.lr_scheduler == "adafactor":
            # get_scheduler_fix: float(name.split(":")[1]) needs the "adafactor:<lr>" that only relative_step
            # writes; a plain "adafactor" fails with an IndexError.
            yield error(
                "optimizer.lr_scheduler",
                "the adafactor scheduler only works with relative_step on; "
                "with relative_step = false sd-scripts crashes building it",
                'use "constant_with_warmup" (sd-scripts\' suggestion for relative_step = false)',
            )
        if o.learning_rate is None and o.unet_lr is None:
            yield warning(
                "optimizer.learning_rate",
                "relative_step = false makes Adafactor use learning_rate, "
                "and none is set (sd-scripts' default 2e-6 is tiny)",
                "set learning_rate",
            )


@rule
def adaptive_lr(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    o = cfg.optimizer
    optimizer = view.optimizer_type.lower()
    if not optimizer.startswith(("dadapt", "prodigy")):
        return
    # get_optimizer: with D-Adaptation or Prodigy "only the first [learning rate] will take effect" when the
    # parameter groups carry different rates. The groups are the UNet's and the text encoders'.
    rates = {"unet_lr": o.unet_lr if o.unet_lr is not None else o.learning_rate}
    if view.text_encoders_trained:
        te = o.text_encoder_lr
        for i, rate in enumerate(te if isinstance(te, list) else [te]):
            rates[f"text_encoder_lr{f'[{i}]' if isinstance(te, list) else ''}"] = (
                rate if rate is not None else o.learning_rate
            )
    distinct = {r for r in rates.values() if r is not None}
    if len(distinct) > 1:
        yield warning(
            "optimizer.text_encoder_lr" if o.text_encoder_lr is not None else "optimizer.unet_lr",
            f"{view.optimizer_type} uses one learning rate for every parameter group; sd-scripts warns and "
            f"keeps only the first (rates given: {', '.join(f'{k}={v}' for k, v in rates.items())})",
            "give one rate (near 1.0); use d_coef in optimizer_args to scale the step",
        )
    # LoRA+ works by giving the up matrices their own parameter group with a scaled rate, which the same
    # "only the first one will take effect" rule of get_optimizer throws away.
    args = cfg.network.network_args
    ratios = [
        n
        for n in ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")
        if getattr(args, n, None) is not None
    ]
    if ratios:
        yield warning(
            "network.network_args",
            f"{', '.join(ratios)} has no effect with {view.optimizer_type}: it keeps "
            "only the first parameter group's learning rate",
            "remove the LoRA+ ratios or use AdamW-type optimizers",
        )


@rule
def nesterov(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    optimizer = view.optimizer_type.lower()
    if optimizer not in ("sgdnesterov", "sgdnesterov8bit"):
        return
    values = optimizer_values(cfg)
    # get_optimizer passes nesterov=True (momentum 0.9 unless given); torch's SGD raises "Nesterov momentum
    # requires a momentum and zero dampening" otherwise (bitsandbytes' SGD8bit the same).
    momentum = values.get("momentum", 0.9)
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool) and momentum <= 0:
        yield error(
            f"{OPT_KEY}.momentum" if isinstance(cfg.optimizer.optimizer_args, dict) else OPT_KEY,
            "Nesterov SGD needs a momentum above 0; the optimizer refuses to start",
            "remove momentum (sd-scripts uses 0.9) or give a positive value",
        )
    dampening = values.get("dampening", 0)
    if isinstance(dampening, (int, float)) and not isinstance(dampening, bool) and dampening != 0:
        yield error(
            f"{OPT_KEY}.dampening" if isinstance(cfg.optimizer.optimizer_args, dict) else OPT_KEY,
            "Nesterov SGD needs dampening 0; the optimizer refuses to start",
            "remove dampening",
        )


@rule
def legacy_switches(cfg: TrainConfig, view: Effective) -> Iterator[Problem]:
    # get_optimizer: assert not (use_8bit_adam and use_lion_optimizer)
    if cfg.extra.use_8bit_adam and cfg.extra.use_lion_optimizer:
        yield error(
            "extra.use_lion_optimizer",
            "cannot be combined with extra.use_8bit_adam; sd-scripts stops",
            'remove both and set optimizer_type ("AdamW8bit" or "Lion")',
        )
    # get_optimizer: fused_backward_pass asserts the *resolved* type is Adafactor, so use_8bit_adam counts too
    if (
        cfg.extra.fused_backward_pass
        and cfg.optimizer.optimizer_type is None
        and (cfg.extra.use_8bit_adam or cfg.extra.use_lion_optimizer)
    ):
        yield error(
            "extra.fused_backward_pass",
            f"needs the Adafactor optimizer, and the old switch selects {view.optimizer_type}",
            'set optimizer_type = "Adafactor" and remove the switch',
        )
