"""Check values that reach sd-scripts without its argparse (config files), by the flag table's types.

sd-scripts copies `--config_file` values onto its namespace as they are: no conversion, no choices check.
A value of the wrong type there crashes later or silently does something else, so we check it here and
say what to write instead.
"""

from __future__ import annotations

from typing import Any

_EXPECTED = {
    "int": "a whole number",
    "float": "a number",
    "int_or_float": "a number",
    "str": "a string",
    "Path": "a string (a path)",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar_ok(type_name: str, value: Any) -> bool:
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name in ("float", "int_or_float"):
        return _is_number(value)
    return isinstance(value, str)


def check_typed(spec: Any, value: Any) -> tuple[Any, str]:
    """(value for script_args, "") when `value` has the type sd-scripts' parser would have produced; else (None, why).

    store_true: a boolean (False comes back as None: not set). list: an array of items of the flag's type
    (a single number for a float list is taken as a one-item list, as sd-scripts accepts either).
    """
    if spec.kind == "store_true":
        if isinstance(value, bool):
            return (True if value else None), ""
        return None, f"must be true or false, not {value!r}"
    if spec.kind == "list":
        if spec.type == "float" and _is_number(value):
            value = [value]
        if not isinstance(value, list):
            return None, f"must be a list ({'numbers' if spec.type == 'float' else 'strings'}), not {value!r}"
        bad = [v for v in value if not _scalar_ok(spec.type, v)]
        if bad:
            return None, f"list items must be {_EXPECTED[spec.type]}s; got {bad[0]!r}"
        return list(value), ""
    if isinstance(value, (dict, list)):
        return (
            None,
            f"must be {_EXPECTED.get(spec.type, spec.type)}, not a {'table' if isinstance(value, dict) else 'list'}",
        )
    if not _scalar_ok(spec.type, value):
        hint = ""
        if isinstance(value, str) and spec.type in ("int", "float", "int_or_float"):
            hint = f" (write it without quotes: {value})"
        return None, f"must be {_EXPECTED.get(spec.type, spec.type)}, not {value!r}{hint}"
    if spec.type == "int_or_float" and isinstance(value, float) and value >= 1:
        return None, f"{value!r}: sd-scripts takes a float here only below 1 (a ratio); write a whole number of steps"
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(str(c) for c in spec.choices if c is not None)
        return None, f"{value!r} is not one of: {allowed}"
    return value, ""
