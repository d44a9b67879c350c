"""`accelerate launch`'s own options: where the script starts, and which options loratrain's [accelerate] table holds.

We keep our own small table (schema/accelerate.py's LAUNCH_OPTIONS) instead of importing
`accelerate.commands.launch.launch_command_parser()`: importing accelerate pulls in torch (1.5-3.5 s on the 2-core dev machine, measured with
`python -c "from accelerate.commands.launch import launch_command_parser"`), and `loratrain import` must work
where only loratrain is installed. A test compares this table with accelerate's real parser.

accelerate's parser sets `allow_abbrev=False`, so only full names count; each option has a `--snake_case`
and a `--kebab-case` spelling.
"""

from __future__ import annotations

from typing import Any

from loratrain.errors import Problem
from loratrain.render import GPUS_PLACEHOLDER  # what `run --dry-run` prints for num_processes = "auto"
from loratrain.schema.accelerate import LAUNCH_OPTIONS

# The options the [accelerate] table carries (dest = key in the table): the one table in schema/accelerate.py.
CARRIED = LAUNCH_OPTIONS

# accelerate's other on/off options (they take no value); needed to find where the script starts.
OTHER_SWITCHES = frozenset(
    {
        "quiet",
        "q",
        "cpu",
        "tpu",
        "enable_cpu_affinity",
        "dynamo_use_fullgraph",
        "dynamo_use_dynamic",
        "dynamo_use_regional_compilation",
        "use_deepspeed",
        "use_fsdp",
        "use_parallelism_config",
        "use_megatron_lm",
        "same_network",
        "module",
        "m",
        "no_python",
        "tpu_cluster",
        "no_tpu_cluster",
        "tpu_use_sudo",
        "downcast_bf16",
        "fp8_use_autocast_during_eval",
        "debug",
    }
)


def _name(token: str) -> tuple[str, str | None]:
    """'--num-processes=2' -> ('num_processes', '2'); '-q' -> ('q', None)."""
    body = token.lstrip("-")
    name, sep, value = body.partition("=")
    return name.replace("-", "_"), (value if sep else None)


def _takes_value(name: str) -> bool:
    if name in CARRIED:
        return CARRIED[name].kind == "value"
    return name not in OTHER_SWITCHES


def script_position(words: list[str]) -> int | None:
    """Index of the script among the words after `accelerate launch`, or None when there is none."""
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-") or word == "-":
            return i
        name, explicit = _name(word)
        i += 1
        if explicit is None and _takes_value(name) and i < len(words) and not words[i].lower().endswith(".py"):
            i += 1
    return None


def parse_accelerate(words: list[str], source: str) -> tuple[dict[str, Any], list[Problem]]:
    """accelerate options -> {key: value} for the [accelerate] table, and errors for anything not carried."""
    values: dict[str, Any] = {}
    errors: list[Problem] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        name, explicit = _name(word)
        option = CARRIED.get(name)
        if option is None:
            if _takes_value(name) and explicit is None and i < len(words):
                i += 1
            errors.append(
                Problem(
                    f"accelerate option {word.partition('=')[0]} is not one loratrain's [accelerate] table carries "
                    f"({', '.join(CARRIED)})",
                    key="accelerate",
                    file=source,
                    fix="remove it from the command and import again; put launcher settings in `accelerate config`",
                )
            )
            continue
        if option.kind == "store_true":
            if explicit is not None:
                errors.append(Problem(f"{word}: --{name} takes no value", key=f"accelerate.{name}", file=source))
            values[name] = True
            continue
        if explicit is None:
            if i >= len(words):
                errors.append(Problem(f"--{name} needs a value", key=f"accelerate.{name}", file=source))
                continue
            explicit = words[i]
            i += 1
        value: Any = explicit
        if name == "num_processes" and explicit == GPUS_PLACEHOLDER:
            values[name] = "auto"  # `run --dry-run` shows num_processes = "auto" this way
            continue
        if option.type == "int":
            try:
                value = int(explicit)
            except ValueError:
                errors.append(
                    Problem(f"--{name}: {explicit!r} is not a whole number", key=f"accelerate.{name}", file=source)
                )
                continue
        if option.choices and value not in option.choices:
            errors.append(
                Problem(
                    f"--{name}: {explicit!r} is not one of {', '.join(option.choices)}",
                    key=f"accelerate.{name}",
                    file=source,
                )
            )
            continue
        values[name] = value
    return values, errors
