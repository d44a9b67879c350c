"""[extra]: every other argument of sdxl_train_network.py, typed by the flag table.

The model is built from the table at first use, so a typo here is still an error and no sd-scripts flag
is out of reach.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, create_model, field_validator

from loratrain.schema.common import Group
from loratrain.sdscripts import flags
from loratrain.sdscripts.flag_docs import FLAG_DOCS
from loratrain.sdscripts.flags import FlagSpec, parse_int_or_float

# Flags that make no sense in a loratrain config (they are left out of [extra], so setting one is an error
# with this reason): loratrain is the config, and output_config writes a file and exits without training.
NOT_ALLOWED = {
    "config_file": "loratrain is the config file; put the values in this TOML instead",
    "output_config": "it makes sd-scripts write a config and exit without training",
}


def _annotation(spec: FlagSpec) -> Any:
    base: Any
    if spec.kind == "store_true":
        return bool | None
    if spec.choices:
        base = Literal[tuple(spec.choices)]
    elif spec.type == "int":
        base = int
    elif spec.type == "float":
        base = float
    elif spec.type == "int_or_float":
        base = int | float
    else:
        base = str
    if spec.kind == "list":
        return list[base] | None
    return base | None


def _int_or_float(value: Any) -> Any:
    if isinstance(value, str):
        return parse_int_or_float(value)
    if isinstance(value, float) and value >= 1.0:
        raise ValueError(f"{value} as a float is a ratio and must be below 1; write whole steps as an integer")
    return value


@lru_cache(maxsize=1)
def extra_model(modelled: frozenset[str]) -> type[Group]:
    """A pydantic model with one optional field per sd-scripts flag that has no typed home elsewhere."""
    fields: dict[str, Any] = {}
    validators: dict[str, Any] = {}
    for dest, spec in flags.all_flags().items():
        if dest in modelled or dest in NOT_ALLOWED:
            continue
        fields[dest] = (_annotation(spec), Field(default=None, description=FLAG_DOCS[dest]))
    int_or_float = [
        d
        for d, s in flags.all_flags().items()
        if s.type == "int_or_float" and d not in modelled and d not in NOT_ALLOWED
    ]
    if int_or_float:
        validators["_int_or_float"] = field_validator(*int_or_float, mode="before")(
            classmethod(lambda cls, v: _int_or_float(v))
        )
    model = create_model(
        "ExtraArgs",
        __base__=Group,
        __validators__=validators,
        __doc__="Any other argument of sdxl_train_network.py, by its dest name.",
        **fields,
    )
    return model
