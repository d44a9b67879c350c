"""Property: the printed dry-run pastes back into a shell as exactly the argv."""

from __future__ import annotations

import shlex
import subprocess

from helpers import BASE, tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loratrain.config.loader import validate
from loratrain.render import build_command, display

# Paths and prompts with spaces, quotes, $, backticks, newlines and non-ASCII.
nasty = st.text(
    alphabet=st.sampled_from(list("abc XYZ_-./'\"$`\\\n\t!*?[]{};&|<>~#%=,é漢ß🙂")),
    min_size=1,
    max_size=30,
).filter(lambda s: not s.startswith("-") and s.strip() == s and s)


def join_continuations(text: str) -> str:
    """Drop backslash-newline where the shell would: outside single quotes."""
    out, state, i = [], None, 0
    while i < len(text):
        ch = text[i]
        if state is None and ch == "\\" and text[i + 1 : i + 2] == "\n":
            i += 2
            continue
        if state is None and ch in "'\"":
            state = ch
        elif state == ch:
            state = None
        elif state != "'" and ch == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def bash_words(text: str) -> list[str]:
    """The words bash itself makes of the printed command."""
    done = subprocess.run(["bash", "-c", "printf '%s\\0' " + text], capture_output=True, timeout=10, check=True)
    return done.stdout.decode("utf-8").split("\0")[:-1]


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=nasty, name=nasty, folder=nasty, comment=nasty)
def test_printed_command_splits_back_into_the_same_argv(path, name, folder, comment):
    text = BASE.replace('"/data"', _toml_string(path)).replace('"/out"', _toml_string(folder))
    file_name = name.replace("/", "_").replace("\\", "_")  # a file name: no folder separators
    text += f"output_name = {_toml_string(file_name)}\n"
    text += f"[extra]\ntraining_comment = {_toml_string(comment)}\nmetadata_description = {_toml_string(comment)}\n"
    cfg = validate(tomllib.loads(text), "t.toml").config
    cmd = build_command(cfg, "/opt/sd scripts/$HOME")
    printed = display(cmd)
    if "$'" not in printed:  # control characters are written $'...' (bash's form, which shlex does not read)
        assert shlex.split(join_continuations(printed)) == cmd.argv
    assert bash_words(printed) == cmd.argv


@settings(max_examples=60, deadline=None)
@given(items=st.lists(nasty, min_size=1, max_size=4))
def test_list_values_stay_separate_tokens(items):
    data = tomllib.loads(BASE)
    # optimizer_args are checked as Python literals for the optimizer: an unchecked dotted optimizer and quoted
    # string values keep any text legal here.
    data["optimizer"] = {
        "optimizer_type": "my_module.MyOptimizer",
        "optimizer_args": [f"k{i}={v!r}" for i, v in enumerate(items) if "=" not in v] or ["a=1"],
    }
    cmd = build_command(validate(data, "t.toml").config, "/sd")
    assert bash_words(display(cmd)) == cmd.argv
