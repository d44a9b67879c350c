"""Parse an sd-scripts argv (the part after `sdxl_train_network.py`) into `{dest: value}`.

The rules are those of sd-scripts' own `argparse` parser, re-implemented over the flag table so that we can
collect every problem at once, suggest the intended flag, and report prefix expansion instead of exiting:

- `--flag value` and `--flag=value`; store_true flags take no value;
- `allow_abbrev`: a unique prefix of an option is accepted (reported as a note), an ambiguous one is an error;
- nargs "*" options take every following value token; repeating one replaces the earlier list;
- a token counts as an option when argparse would take it as one: it starts with `-`, and is not a negative
  number (`-0.5`) and has no space in it (`-1e-3` is an option to argparse, so a missing-value error);
- values are converted with the flag's type (int, float, sd-scripts' int_or_float) and checked against choices.

Nothing here prints; problems are returned or raised as `ConfigError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from loratrain.errors import ConfigError, Problem, did_you_mean

# argparse's own test for "this looks like a negative number, so it is a value" (the parser has no option that
# looks like a negative number, so such tokens are always values).
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


@dataclass
class ParsedArgv:
    """The result of parsing: values by dest in command-line order, plus notes (severity "warning")."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[Problem] = field(default_factory=list)
    # dest -> the option text as the user wrote it (first time seen), for messages
    spelled: dict[str, str] = field(default_factory=dict)


def flag_table() -> Mapping[str, Any]:
    """sd-scripts' flags by dest (FlagSpec: dest, option_strings, kind, type, default, choices)."""
    from loratrain.sdscripts.flags import all_flags

    return all_flags()


def _option_index(flags: Mapping[str, Any]) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for spec in flags.values():
        for opt in spec.option_strings:
            index[opt] = spec
    return index


def int_or_float(text: str) -> int | float:
    """sd-scripts' int_or_float (see loratrain.sdscripts.flags.parse_int_or_float, which this delegates to)."""
    from loratrain.sdscripts.flags import parse_int_or_float

    return parse_int_or_float(text)


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "int_or_float": int_or_float,
    "str": str,
    "Path": str,
}

_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "int_or_float": "a whole number of steps, a ratio below 1 (0.05) or a percentage (5%)",
}


def convert(spec: Any, text: str) -> Any:
    """Convert one value token by the flag's type; ValueError with a readable reason on failure."""
    try:
        value = _CONVERTERS[spec.type](text)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not {_TYPE_WORDS.get(spec.type, spec.type)}") from None
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(str(c) for c in spec.choices if c is not None)
        raise ValueError(f"{text!r} is not one of: {allowed}")
    return value


def suggest(word: str, candidates: Iterable[str]) -> str:
    """A did-you-mean hint ("did you mean --x?") or an empty string."""
    return did_you_mean(word, candidates, quote=False)


def _looks_numeric(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


class _Parser:
    def __init__(self, flags: Mapping[str, Any], source: str):
        self.flags = flags
        self.index = _option_index(flags)
        self.source = source
        self.errors: list[Problem] = []
        self.result = ParsedArgv()
        self.after_list_equals = ""

    # -- classification, as argparse's _parse_optional does it -------------------------------------------
    def classify(self, token: str) -> tuple[str, Any, str | None, str]:
        """Return (kind, spec, explicit_value, name) where kind is "value", "option", "unknown" or "ambiguous"."""
        if not token or token[0] != "-" or token == "-":
            return "value", None, None, ""
        if token in self.index:
            return "option", self.index[token], None, token
        name, sep, explicit = token.partition("=")
        if sep and name in self.index:
            return "option", self.index[name], explicit, name
        if token.startswith("--"):
            matches = sorted({opt for opt in self.index if opt.startswith(name)})
            if len(matches) > 1:
                return "ambiguous", matches, explicit if sep else None, name
            if len(matches) == 1:
                return "option", self.index[matches[0]], explicit if sep else None, name
        if _NEGATIVE_NUMBER.match(token) or " " in token:
            return "value", None, None, ""
        return "unknown", None, explicit if sep else None, name

    def error(self, message: str, key: str = "", fix: str = "", value: Any = None) -> None:
        self.errors.append(Problem(message=message, key=key, file=self.source, fix=fix, value=value))

    def note(self, message: str, key: str = "", fix: str = "") -> None:
        self.result.notes.append(Problem(message=message, key=key, file=self.source, fix=fix, severity="warning"))

    # -- the walk ------------------------------------------------------------------------------------------
    def parse(self, argv: Sequence[str]) -> ParsedArgv:
        tokens = list(argv)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            i += 1
            if token == "--":
                rest = tokens[i:]
                self.error(
                    "'--' ends the options, and sd-scripts takes no positional arguments, so everything after it "
                    f"is rejected: {' '.join(rest) or '(nothing)'}",
                    fix="remove the '--'",
                )
                break
            kind, spec, explicit, name = self.classify(token)
            if kind == "value":
                if self.after_list_equals:
                    fix = f"after {self.after_list_equals} put a space, not '=': {self.after_list_equals} a=1 b=2"
                else:
                    fix = "check the flag before it: only list flags such as --network_args take several values"
                self.error(
                    f"{token!r} is not attached to any flag (sd-scripts would stop with 'unrecognized arguments')",
                    fix=fix,
                    value=token,
                )
                continue
            self.after_list_equals = ""
            if kind == "ambiguous":
                self.error(
                    f"{name} is an ambiguous abbreviation: it could be {', '.join(spec)}",
                    fix="write the full flag name",
                )
                i = self.skip_values(tokens, i)
                continue
            if kind == "unknown":
                hint = suggest(name, self.index)
                self.error(
                    f"{name} is not a flag of sdxl_train_network.py",
                    fix=hint or "see `loratrain explain` for the flags sd-scripts accepts",
                    value=token,
                )
                i = self.skip_values(tokens, i)
                continue
            if spec.dest == "help":
                self.error(f"{name} prints sd-scripts' help; it is not a training flag", fix="remove it")
                continue
            full = "--" + spec.dest if "--" + spec.dest in spec.option_strings else spec.option_strings[-1]
            if name not in spec.option_strings:
                self.note(f"{name} is an abbreviation; sd-scripts expands it to {full}", key=spec.dest)
            i = self.take(spec, full, explicit, tokens, i)
        return self.result

    def skip_values(self, tokens: list[str], i: int) -> int:
        while i < len(tokens) and self.classify(tokens[i])[0] == "value":
            i += 1
        return i

    def take(self, spec: Any, full: str, explicit: str | None, tokens: list[str], i: int) -> int:
        values = self.result.values
        if spec.kind == "store_true":
            if explicit is not None:
                self.error(
                    f"{full} is an on/off flag and takes no value (got {explicit!r})",
                    key=spec.dest,
                    fix=f"write {full} alone to turn it on, or leave it out",
                )
            else:
                values[spec.dest] = True
            return i
        if spec.kind == "list":
            if explicit is not None:
                raw = [explicit]  # argparse takes only this one item; later value tokens are left over
                self.after_list_equals = full
            else:
                raw = []
                while i < len(tokens) and self.classify(tokens[i])[0] == "value":
                    raw.append(tokens[i])
                    i += 1
            items = []
            for text in raw:
                try:
                    items.append(convert(spec, text))
                except ValueError as exc:
                    self.error(f"{full}: {exc}", key=spec.dest, value=text)
            if spec.dest in values:
                self.note(
                    f"{full} is given more than once; sd-scripts keeps only the last list",
                    key=spec.dest,
                    fix="put all items after one " + full,
                )
            values[spec.dest] = items
            return i
        if explicit is None:
            if i < len(tokens) and self.classify(tokens[i])[0] == "value":
                explicit = tokens[i]
                i += 1
            elif i < len(tokens) and _looks_numeric(tokens[i]):
                # argparse takes "-1e-3" for an option, so the flag before it gets no value
                self.error(
                    f"{full} needs a value: sd-scripts reads {tokens[i]!r} as a flag, not as its number",
                    key=spec.dest,
                    fix=f"write {full}={tokens[i]}",
                )
                return i + 1
            else:
                self.error(f"{full} needs a value", key=spec.dest, fix=f"write {full}=VALUE")
                return i
        try:
            converted = convert(spec, explicit)
        except ValueError as exc:
            self.error(f"{full}: {exc}", key=spec.dest, value=explicit)
            return i
        if spec.dest in values and values[spec.dest] != converted:
            self.note(f"{full} is given more than once; the last value ({explicit}) wins", key=spec.dest)
        values[spec.dest] = converted
        return i


def parse_script_argv(
    argv: Sequence[str], source: str = "<command>", flags: Mapping[str, Any] | None = None
) -> ParsedArgv:
    """Parse by sd-scripts' rules. Raises ConfigError listing every problem; notes come back on the result."""
    parser = _Parser(flags if flags is not None else flag_table(), source)
    result = parser.parse(argv)
    if parser.errors:
        raise ConfigError(parser.errors)
    return result
