"""Shared pieces of the config models: the base class and the `flag()` field helper.

Every field is an sd-scripts argument under its own dest name. `None` means "not set": the flag is omitted
and sd-scripts' own default applies. Metadata for `explain` (the guide's advice, related keys, an example)
lives next to the field, in `json_schema_extra`, so there is one source for docs, schema and help.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Group(BaseModel):
    """A table of the config file. Unknown keys are errors; values are never coerced across types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


def flag(
    description: str,
    *,
    advice: str | None = None,
    interacts: tuple[str, ...] = (),
    example: Any = None,
    render: str | None = None,
    ignored: bool = False,
    **constraints: Any,
) -> Any:
    """A config field that is unset by default. Secrets (rendered as environment variables) are listed in
    choices.SECRET_ENV, not here."""
    extra: dict[str, Any] = {}
    if advice:
        extra["advice"] = advice
    if interacts:
        extra["interacts"] = list(interacts)
    if example is not None:
        extra["example"] = example
    if render:
        extra["render"] = render  # an exception to the default rendering rule, e.g. "only_true"
    if ignored:
        extra["ignored"] = True  # accepted because guides use it, but the target never reads it
    return Field(default=None, description=description, json_schema_extra=extra or None, **constraints)


def field_extra(model: type[BaseModel], name: str) -> dict[str, Any]:
    extra = model.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def format_value(value: Any) -> str:
    """One value as sd-scripts' argparse reads it back: floats keep full precision, booleans as True/False."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    return str(value)
