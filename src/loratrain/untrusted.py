"""Parsing text the user hands us (configs, --set, dataset configs, prompt files, import sources) safely.

Three rules hold for every parsed tree, whatever the format, before any model sees it:
- nesting is bounded (MAX_DEPTH); deeper input is refused instead of exhausting Python's recursion limit;
- no string or key holds a NUL byte: no path, argument or file name can carry one (execve and open refuse it);
- every float is finite. No sd-scripts option gives inf or nan a meaning, and where "no limit" is meant
  sd-scripts spells it otherwise (leave the key out, or 0 for max_grad_norm), which the fix text says. The one
  exception: inf in the typed optimizer_args/lr_scheduler_args tables, a real value of some constructors.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Iterator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Deeper than any real config (root > table > network_args > list > item is 5) or dataset config
# (datasets > subsets > key > list > item is 6); far below Python's recursion limit.
MAX_DEPTH = 12

# What to write instead of inf where people mean "no limit" or "off".
NO_LIMIT_HINTS = {
    "max_grad_norm": "0 turns gradient clipping off",
    "scale_weight_norms": "leave it out for no limit",
    "min_snr_gamma": "leave it out to turn Min-SNR weighting off",
    "debiased_estimation_loss": "leave it out to turn it off",
}
FINITE_FIX = "write a finite number; to mean 'no limit' leave the key out (sd-scripts' default)"

# Tables passed to a constructor's own keywords, where infinity is a real value (Prodigy's growth_rate is
# unbounded by default): there inf and -inf are left to the per-key check against the constructor's table
# (loratrain.sdscripts.optimizers), which renders them as 1e999. NaN is refused everywhere.
INFINITY_ALLOWED_UNDER = ("optimizer.optimizer_args.", "optimizer.lr_scheduler_args.")


def toml_loads(text: str) -> dict[str, Any]:
    """tomllib.loads, with runaway nesting reported as a TOMLDecodeError instead of a RecursionError."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError(f"arrays or tables nested too deeply (more than {MAX_DEPTH} levels)") from None


def json_loads(text: str) -> Any:
    """json.loads, with runaway nesting reported as a JSONDecodeError instead of a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(
            f"arrays or objects nested too deeply (more than {MAX_DEPTH} levels)", text, 0
        ) from None


def finite_fix(key: str) -> str:
    name = key.rsplit(".", 1)[-1].split("[", 1)[0]
    return NO_LIMIT_HINTS.get(name, FINITE_FIX)


def hostile_values(data: Any, prefix: str = "", finite: bool = True) -> Iterator[tuple[str, str, str]]:
    """(dotted key, what is wrong, what to do) for each value breaking the rules above; iterative, so any
    depth is safe. `prefix` names the root (e.g. "datasets[0]"); `finite=False` leaves non-finite numbers to
    the caller."""
    stack: list[tuple[str, Any, int]] = [(prefix, data, 0)]
    while stack:
        key, value, depth = stack.pop()
        if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
            yield key, f"nested more than {MAX_DEPTH} levels deep", "no setting takes values nested this deep"
            continue
        if isinstance(value, dict):
            for name, child in reversed(list(value.items())):
                name = str(name)
                child_key = f"{key}.{name}" if key else name
                if "\x00" in name:
                    yield child_key.replace("\x00", "\\0"), "the key holds a NUL byte (\\0)", "remove it"
                    continue
                stack.append((child_key, child, depth + 1))
        elif isinstance(value, list):
            for i in reversed(range(len(value))):
                stack.append((f"{key}[{i}]", value[i], depth + 1))
        elif finite and isinstance(value, float) and not math.isfinite(value):
            if math.isinf(value) and key.startswith(INFINITY_ALLOWED_UNDER):
                continue
            yield key, f"{value} is not a number sd-scripts can use", finite_fix(key)
        elif isinstance(value, str) and "\x00" in value:
            yield key, "holds a NUL byte (\\0), which no path or argument can carry", "remove it"
