"""Sample-prompt files read the way sd-scripts reads them (`train_util.load_prompts`, `line_to_prompt_dict`).

`.txt`: one prompt per line; blank lines and lines whose very first character is `#` are skipped (an
indented `#` line is a prompt). Each line is split on " --"; the first piece is the prompt and every
piece (the first included, a quirk we warn about) is matched case-insensitively against the options.
`.toml`: `[prompt]` holds shared keys, each `[[prompt.subset]]` one prompt. `.json`: a list of prompt
tables or prompt lines. Any other extension makes sd-scripts crash at the first sample.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loratrain import untrusted
from loratrain.errors import Problem
from loratrain.sdscripts import flags

# A prompt's own --ss takes sd-scripts' sample_sampler choices, and also ddpm.
SAMPLERS = frozenset({*flags.choices("sample_sampler"), "ddpm"})
# sd-scripts' defaults when a prompt does not say.
DEFAULTS = {"width": 512, "height": 512, "sample_steps": 30, "scale": 7.5}

# (pattern, option key, converter) in sd-scripts' order: the first match wins.
_OPTIONS: list[tuple[re.Pattern[str], str, Any]] = [
    (re.compile(r"w (\d+)", re.IGNORECASE), "width", int),
    (re.compile(r"h (\d+)", re.IGNORECASE), "height", int),
    (re.compile(r"d (\d+)", re.IGNORECASE), "seed", int),
    (re.compile(r"s (\d+)", re.IGNORECASE), "sample_steps", int),
    (re.compile(r"l ([\d\.]+)", re.IGNORECASE), "scale", float),
    (re.compile(r"g ([\d\.]+)", re.IGNORECASE), "guidance_scale", float),
    (re.compile(r"n (.+)", re.IGNORECASE), "negative_prompt", str),
    (re.compile(r"ss (.+)", re.IGNORECASE), "sample_sampler", str),
    (re.compile(r"cn (.+)", re.IGNORECASE), "controlnet_image", str),
    (re.compile(r"ctr (.+)", re.IGNORECASE), "cfg_trunc_ratio", float),
    (re.compile(r"rcfg (.+)", re.IGNORECASE), "renorm_cfg", float),
    (re.compile(r"fs (.+)", re.IGNORECASE), "flow_shift", str),
]
# Short names as written in .txt files, for the report.
FLAG_OF = {
    "width": "w",
    "height": "h",
    "seed": "d",
    "sample_steps": "s",
    "scale": "l",
    "guidance_scale": "g",
    "negative_prompt": "n",
    "sample_sampler": "ss",
    "controlnet_image": "cn",
    "cfg_trunc_ratio": "ctr",
    "renorm_cfg": "rcfg",
    "flow_shift": "fs",
}
_TABLE_KEYS = frozenset({"prompt", *FLAG_OF})
_VALUE_KINDS: dict[str, Any] = {
    "width": int,
    "height": int,
    "seed": int,
    "sample_steps": int,
    "scale": (int, float),
    "guidance_scale": (int, float),
}


@dataclass
class SamplePrompt:
    """One prompt as sd-scripts will draw it. `options` holds what the file set (sd-scripts' key names)."""

    index: int
    prompt: str
    options: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # 1-based line in a .txt file

    @property
    def negative_prompt(self) -> str | None:
        value = self.options.get("negative_prompt")
        return None if value is None else str(value)

    def effective(self, default_sampler: str | None = None) -> dict[str, Any]:
        """What the sampler uses: defaults filled, steps clamped 1..1000, sides floored to multiples of 8 (min 64)."""
        sampler = default_sampler or flags.default("sample_sampler")
        o = {**DEFAULTS, "sample_sampler": sampler, "seed": None, **self.options}
        o["width"] = max(64, int(o["width"]) - int(o["width"]) % 8)
        o["height"] = max(64, int(o["height"]) - int(o["height"]) % 8)
        return o


@dataclass
class PromptFile:
    path: str
    prompts: list[SamplePrompt] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def parse_prompt_line(line: str) -> tuple[dict[str, Any], list[str]]:
    """sd-scripts' `line_to_prompt_dict` plus notes on what it silently ignores or misreads."""
    pieces = line.split(" --")
    found: dict[str, Any] = {"prompt": pieces[0]}
    notes: list[str] = []
    for i, piece in enumerate(pieces):
        for pattern, key, convert in _OPTIONS:
            m = pattern.match(piece)
            if not m:
                continue
            try:
                value = convert(m.group(1))
            except ValueError:
                notes.append(f"option --{piece.strip()} has a value sd-scripts cannot read; it is ignored")
                break
            if key == "sample_steps" and not 1 <= value <= 1000:
                notes.append(f"--s {value} is clamped to {max(1, min(1000, value))} by sd-scripts")
                value = max(1, min(1000, value))
            if i == 0:
                notes.append(
                    f"the prompt itself starts like an option (--{FLAG_OF[key]}) and sd-scripts reads it as one: "
                    f"{key} = {value!r}"
                )
            found[key] = value
            break
        else:
            if i > 0:
                notes.append(f"unknown option --{piece.strip()} is ignored by sd-scripts")
    return found, notes


def load_prompt_file(path: str | Path) -> PromptFile:
    """Parse a sample-prompt file. File-level problems (missing, unreadable, malformed) are errors."""
    path = Path(path)
    result = PromptFile(path=str(path))

    def error(message: str, fix: str = "", line: int | None = None) -> PromptFile:
        result.problems.append(Problem(message, key="sample_prompts", file=str(path), line=line, fix=fix))
        return result

    if not path.is_file():
        return error("sample prompt file not found", fix="check sample_prompts")
    suffix = path.name
    if not suffix.endswith((".txt", ".toml", ".json")):
        return error(
            "sd-scripts reads only .txt, .toml or .json prompt files (anything else crashes the first sample)",
            fix="rename the file",
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return error(f"cannot read the prompt file: {exc.strerror or exc}", fix="make it readable")
    except UnicodeDecodeError as exc:
        return error(f"not UTF-8 (byte {exc.start}); sd-scripts stops when it samples", fix="save the file as UTF-8")
    if suffix.endswith(".txt"):
        _from_txt(text, result)
    elif suffix.endswith(".toml"):
        _from_toml(text, result, error)
    else:
        _from_json(text, result, error)
    if not result.problems and not result.prompts:
        result.problems.append(
            Problem(
                "the prompt file holds no prompts; sd-scripts samples nothing",
                key="sample_prompts",
                file=str(path),
                severity="warning",
            )
        )
    return result


def _warn(result: PromptFile, message: str, line: int | None = None) -> None:
    result.problems.append(Problem(message, key="sample_prompts", file=result.path, line=line, severity="warning"))


def _from_txt(text: str, result: PromptFile) -> None:
    if text.startswith("\ufeff"):
        _warn(
            result,
            "the file starts with a UTF-8 byte-order mark: sd-scripts keeps it as part of the first line",
            line=1,
        )
    # Text mode's newlines (\n, \r\n, \r) only; str.splitlines would also split on \x0c, \u2028 and more.
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        line = raw.strip()
        if not line or raw[0] == "#":
            continue
        if line.startswith("#"):
            _warn(result, "an indented '#' line is not a comment for sd-scripts: it is drawn as a prompt", line=number)
        if "\x00" in line:
            result.problems.append(
                Problem(
                    "the line holds a NUL byte (\\0)",
                    key="sample_prompts",
                    file=result.path,
                    line=number,
                    fix="remove it",
                )
            )
            continue
        found, notes = parse_prompt_line(line)
        for note in notes:
            _warn(result, note, line=number)
        if _hostile_options(result, found, number, ""):
            continue
        prompt = found.pop("prompt")
        _check_sampler(result, found, number)
        result.prompts.append(SamplePrompt(len(result.prompts), prompt, found, line=number))


def _from_toml(text: str, result: PromptFile, error) -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        data = untrusted.toml_loads(text)
    except tomllib.TOMLDecodeError as exc:
        error(f"TOML syntax error: {exc}")
        return
    if _hostile(data, error):
        return
    shared = data.get("prompt")
    if not isinstance(shared, dict) or not isinstance(shared.get("subset"), list):
        error(
            "a .toml prompt file needs a [prompt] table with [[prompt.subset]] entries (sd-scripts: KeyError)",
            fix='add [[prompt.subset]] tables, each with prompt = "..."',
        )
        return
    common = {k: v for k, v in shared.items() if k != "subset"}
    for i, subset in enumerate(shared["subset"]):
        if not isinstance(subset, dict):
            error(f"prompt.subset[{i}] is not a table")
            continue
        clash = sorted(set(subset) & set(shared))
        if clash:
            error(
                f"prompt.subset[{i}] repeats {', '.join(clash)} from [prompt]; sd-scripts stops with a TypeError",
                fix="set each key either in [prompt] or in the subsets, not both",
            )
            continue
        _add_table(result, {**common, **subset}, f"prompt.subset[{i}]")


def _from_json(text: str, result: PromptFile, error) -> None:
    try:
        data = untrusted.json_loads(text)
    except ValueError as exc:
        error(f"JSON syntax error: {exc}")
        return
    if _hostile(data, error):
        return
    if not isinstance(data, list):
        error("a .json prompt file must hold a list of prompt objects or prompt lines")
        return
    for i, item in enumerate(data):
        if isinstance(item, str):
            found, notes = parse_prompt_line(item)
            for note in notes:
                _warn(result, f"[{i}]: {note}")
            if _hostile_options(result, found, None, f"[{i}]: "):
                continue
            prompt = found.pop("prompt")
            result.prompts.append(SamplePrompt(len(result.prompts), prompt, found))
        elif isinstance(item, dict):
            _add_table(result, item, f"[{i}]")
        else:
            error(f"entry [{i}] is neither a prompt object nor a prompt line (sd-scripts: AssertionError)")


def _hostile(data: Any, error) -> bool:
    """Report values nested too deeply, NUL bytes and non-finite numbers; True when there were any."""
    found = list(untrusted.hostile_values(data))
    for key, message, fix in found:
        error(f"{key}: {message}" if key else message, fix=fix)
    return bool(found)


def _add_table(result: PromptFile, table: dict[str, Any], where: str) -> None:
    for key in ("prompt", "negative_prompt"):
        if key in table and not isinstance(table[key], str):
            result.problems.append(
                Problem(
                    f"{where}: {key} = {table[key]!r} is not a string; sd-scripts fails when it samples",
                    key="sample_prompts",
                    file=result.path,
                    fix=f'write {key} = "..." in quotes',
                )
            )
            return
    unknown = sorted(set(table) - _TABLE_KEYS)
    if unknown:
        _warn(result, f"{where}: keys sd-scripts does not use: {', '.join(unknown)}")
    if "prompt" not in table:
        _warn(result, f"{where}: no prompt key; sd-scripts draws an empty prompt")
    options = {k: v for k, v in table.items() if k in _TABLE_KEYS and k != "prompt"}
    for key, value in list(options.items()):
        kind = _VALUE_KINDS.get(key)
        if kind and not (isinstance(value, kind) and not isinstance(value, bool)):
            result.problems.append(
                Problem(
                    f"{where}: {key} = {value!r} is not {'an integer' if kind is int else 'a number'}; sd-scripts fails "
                    "when it samples",
                    key="sample_prompts",
                    file=result.path,
                    fix=f"write {key} as a number",
                )
            )
            del options[key]
    _check_sampler(result, options, None)
    result.prompts.append(SamplePrompt(len(result.prompts), str(table.get("prompt", "")), options))


def _hostile_options(result: PromptFile, options: dict[str, Any], line: int | None, where: str) -> bool:
    """Options of a prompt line that parsed to inf or nan (`--l inf`): errors; True when there were any."""
    bad = [(k, v) for k, v in options.items() if isinstance(v, float) and not math.isfinite(v)]
    for key, value in bad:
        result.problems.append(
            Problem(
                f"{where}{key} = {value} is not a number sd-scripts can sample with",
                key="sample_prompts",
                file=result.path,
                line=line,
                fix="write a finite number",
            )
        )
    return bool(bad)


def _check_sampler(result: PromptFile, options: dict[str, Any], line: int | None) -> None:
    sampler = options.get("sample_sampler")
    if sampler is not None and str(sampler).lower() not in SAMPLERS:
        _warn(result, f"sampler {sampler!r} is unknown to sd-scripts, which silently uses DDIM instead", line=line)
