"""Reading a kohya_ss GUI JSON: which tab it is, and each value as the GUI would hold it (its field defaults, its
load conversions, off-values). The translation into loratrain's tables is importers/kohya_gui.py."""

from __future__ import annotations

import math
from typing import Any

from loratrain.errors import ConfigError, Problem
from loratrain.importers import FOREIGN, Imported
from loratrain.importers.kohya_gui_fields import (
    BOOKKEEPING,
    FIELD_DEFAULTS,
    LOAD_CONVERSIONS,
    RENAMED_ON_LOAD,
    TABS,
)
from loratrain.importers.sd_argv import flag_table

OFF_VALUES = ("", None, False)


def is_off(value: Any) -> bool:
    """The GUI's last filter: a value that is "", None, False, or equal to them (0, 0.0) is not passed."""
    if isinstance(value, list):
        return False
    return any(value == off for off in OFF_VALUES if off is not None) or value is None


def as_number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None  # NaN, Infinity, 1e400: no setting takes them
    if isinstance(value, str):
        text = value.strip()
        for kind in (int, float):
            try:
                number = kind(text)
            except ValueError:
                continue
            return number if math.isfinite(number) else None  # "inf", "nan": no setting takes them
    return None


def as_text(value: Any) -> str:
    """A number as Python's str() writes it (what the GUI's f-strings give): 8 -> "8", 0.5 -> "0.5"."""
    return str(value)


# -- which tab, which script --------------------------------------------------------------------------------


def refuse(source: str, message: str, fix: str = "") -> ConfigError:
    return ConfigError([Problem(message, file=source, fix=fix)])


def check_tab(data: dict[str, Any], source: str) -> None:
    """Refuse a JSON that is not a kohya_ss LoRA-tab config, naming the tab and script it belongs to."""
    if not data:
        raise refuse(
            source,
            "the JSON object is empty: no GUI settings to import",
            "save the config from the kohya_ss GUI's LoRA tab, or import the command it prints",
        )
    keys = set(data)
    known = set(FIELD_DEFAULTS) | set(RENAMED_ON_LOAD) | BOOKKEEPING
    for tab, (markers, script, sdxl_script) in TABS.items():
        found = sorted(keys & markers)
        if not found:
            continue
        if tab == "LoRA":
            return
        sdxl = data.get("sdxl") is True or data.get("sdxl_checkbox") is True
        raise refuse(
            source,
            f"this is a kohya_ss {tab} config (it has {', '.join(found[:3])}): the GUI trains it with "
            f"{sdxl_script if sdxl else script}, not with a LoRA script",
            "loratrain imports LoRA/LyCORIS configs from the GUI's LoRA tab",
        )
    if not keys & known:
        raise refuse(
            source,
            f"{FOREIGN}: none of its keys is a kohya_ss GUI setting "
            f"({', '.join(sorted(keys)[:3])}{', ...' if len(keys) > 3 else ''})",
            "import a kohya_ss LoRA JSON, an sd-scripts --config_file TOML or a training command",
        )
    sdxl = data.get("sdxl") is True
    raise refuse(
        source,
        "this is a kohya_ss Dreambooth config (GUI training settings without LoRA_type or any network setting): "
        f"the GUI trains it with {TABS['Dreambooth'][2] if sdxl else TABS['Dreambooth'][1]}, a full fine-tune, "
        "not a LoRA",
        "loratrain imports LoRA/LyCORIS configs from the GUI's LoRA tab",
    )


class Reader:
    def __init__(self, data: dict[str, Any], source: str):
        self.data = data
        self.source = source
        self.errors: list[Problem] = []
        self.imported = Imported(source=source, kind="kohya_ss GUI config")
        self.flags = flag_table()
        self.defaulted: set[str] = set()  # fields the JSON lacks (the GUI's widget value applies)
        self.fields = self._load()

    # -- step 1: what the GUI holds after opening the file ----------------------------------------------
    def _load(self) -> dict[str, Any]:
        data = dict(self.data)
        for old, new in RENAMED_ON_LOAD.items():
            if data.get(old) is not None:
                data[new] = data.pop(old)
        fields: dict[str, Any] = {}
        for key, default in FIELD_DEFAULTS.items():
            value = data.get(key)
            if value is None:
                self.defaulted.add(key)
                value = default
            elif key in LOAD_CONVERSIONS:
                value = self._convert_on_load(key, value)
            fields[key] = value
        if fields["LoRA_type"] == "LoCon":
            fields["LoRA_type"] = "LyCORIS/LoCon"  # the GUI renames the old type on load
        if isinstance(fields["xformers"], bool):
            fields["xformers"] = "xformers" if fields["xformers"] else "none"
        if "optimizer" in self.defaulted:  # the GUI fills it from the old use_8bit_adam switch, not the widget
            fields["optimizer"] = "AdamW8bit" if data.get("use_8bit_adam") else "AdamW"
        if data.get("use_wandb") == "True":
            fields["log_with"] = "wandb"
        return fields

    def _convert_on_load(self, key: str, value: Any) -> Any:
        kind, fallback = LOAD_CONVERSIONS[key]
        if value == "":
            return fallback  # the GUI's int("")/float("") fails and it uses this
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.error(key, f"must be a number, not {value!r}", f"the GUI would quietly use {fallback}; write a number")
            return fallback
        try:
            number = kind(value)
        except (ValueError, OverflowError):  # OverflowError: int() of an Infinity or 1e400
            self.error(
                key,
                f"must be a number, not {value!r}",
                f"the GUI would quietly use {fallback}; write {'a whole number' if kind is int else 'a number'}",
            )
            return fallback
        if isinstance(number, float) and not math.isfinite(number):
            self.error(key, f"{value!r} is not a number sd-scripts can use", "write a finite number")
            return fallback
        return number

    def error(self, key: str, message: str, fix: str = "") -> None:
        self.errors.append(Problem(message, key=key, file=self.source, fix=fix, value=self.data.get(key)))

    def note(self, message: str, key: str = "", fix: str = "") -> None:
        self.imported.notes.append(Problem(message, key=key, file=self.source, fix=fix, severity="warning"))

    def drop(self, key: str, why: str) -> None:
        self.imported.dropped.append((key, why))

    def num(self, key: str) -> float | int:
        """A numeric field; text that is not a number is an error (the GUI's widget would not hold it)."""
        value = self.fields[key]
        number = as_number(value)
        if number is None:
            if value == "":
                return 0
            self.error(key, f"must be a number, not {value!r}", "write a number")
            return as_number(FIELD_DEFAULTS[key]) or 0
        return number

    def boolean(self, key: str) -> bool:
        value = self.fields[key]
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        self.error(key, f"must be true or false, not {value!r}", "write true or false")
        return False

    # -- conversion of one GUI value to the type sd-scripts' parser gives ---------------------------------
    def typed(self, dest: str, value: Any, gui_key: str) -> Any:
        spec = self.flags[dest]
        if spec.kind == "store_true":
            if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
                return True if value else None
            self.error(gui_key, f"must be true or false, not {value!r}", "write true or false")
            return None
        if spec.kind == "list":
            items = value if isinstance(value, list) else str(value).replace('"', "").split()
            out = [self._scalar(spec, item, gui_key) for item in items]
            return None if any(v is None for v in out) else out
        return self._scalar(spec, value, gui_key)

    def _scalar(self, spec: Any, value: Any, gui_key: str) -> Any:
        if spec.type in ("int", "float", "int_or_float"):
            number = as_number(value)
            if number is None:
                self.error(gui_key, f"must be a number, not {value!r}", "write a number")
                return None
            if spec.type == "int":
                if float(number) != int(number):
                    self.error(gui_key, f"must be a whole number, not {value!r}", "write a whole number")
                    return None
                number = int(number)
            elif spec.type == "float":
                number = float(number)
            elif isinstance(number, float) and number >= 1:
                if number != int(number):
                    self.error(gui_key, f"{value!r}: a fraction here must be below 1", "write a whole number")
                    return None
                number = int(number)
            value = number
        elif not isinstance(value, str):
            self.error(gui_key, f"must be text, not {value!r}", "write it in quotes")
            return None
        if spec.choices and value not in spec.choices:
            allowed = ", ".join(str(c) for c in spec.choices if c is not None)
            self.error(gui_key, f"{value!r} is not one of: {allowed}")
            return None
        return value


# -- step 2: the GUI's sd-scripts config for an SDXL LoRA ----------------------------------------------------
