"""Turn a pasted shell command line (text) into tokens, and find the training script in it. Nothing is executed.

Steps, each with the shell's own rules:
1. a quote-aware scan removes backslash-newline continuations and `#` comments, and splits the text at the
   newlines that end a command (an open quote is reported with the line it opened on);
2. `shlex` (posix) splits each line into words and the operators `;`, `&&`, `||`, `|`, `&`;
3. the simple command that runs a `.py` script is picked, and split into launcher, launcher options,
   script path and script arguments.

Launchers understood: `accelerate launch [options] SCRIPT`, `accelerate-launch [options] SCRIPT`,
`python [-m accelerate.commands.launch [options]] SCRIPT`, `python SCRIPT`, and the bare `SCRIPT`;
`NAME=value` words in front (environment settings) are reported and skipped. Shell variables and command
substitutions are reported (or replaced, from the values given), never expanded silently.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Mapping

from loratrain.errors import ConfigError, Problem

_OPERATORS = {";", "&&", "||", "|", "&", ";;", "(", ")"}
_ENV_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?)?(\.exe)?$", re.IGNORECASE)
# interpreter options that take a separate value (python -X dev, -W ignore)
_PYTHON_VALUE_OPTIONS = {"-X", "-W", "-c"}
_ACCELERATE_MODULES = {"accelerate.commands.launch"}


@dataclass
class ShellCommand:
    """The training command, taken apart."""

    launcher: str  # "accelerate", "python" or "script"
    interpreter: str | None  # the python word when a python interpreter runs the script (or accelerate -m)
    accelerate_argv: list[str]  # accelerate launch's own options, as written
    script: str  # the script path as written
    script_argv: list[str]  # everything after the script
    env: dict[str, str] = field(default_factory=dict)
    notes: list[Problem] = field(default_factory=list)


@dataclass
class _Line:
    text: str
    number: int  # 1-based line where this logical line starts


# Signs of a command written for Windows (cmd's ^ or PowerShell's ` continuations, C:\ paths): there a
# backslash is a path separator, not an escape.
_WINDOWS_HINTS = re.compile(r"[\^`][ \t]*$|(?<![\w])[A-Za-z]:\\", re.MULTILINE)


def basename(word: str) -> str:
    """The last path component, for / and \\ separators alike."""
    return re.split(r"[\\/]", word)[-1]


def dirname(word: str) -> str:
    """Everything before the last / or \\ ("" when there is none)."""
    cut = max(word.rfind("/"), word.rfind("\\"))
    return word[:cut] if cut > 0 else ("/" if cut == 0 else "")


def _scan(text: str, source: str, notes: list[Problem]) -> list[_Line]:
    """Remove continuations and comments; split at unquoted newlines. ConfigError on an unclosed quote."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    windows = bool(_WINDOWS_HINTS.search(text))
    lines: list[_Line] = []
    out: list[str] = []
    quote = ""  # the open quote character, if any
    quote_line = 0
    line_no = 1
    start_line = 1
    i = 0
    n = len(text)
    windows_continuation = False
    while i < n:
        ch = text[i]
        if quote == "'":
            out.append(_QUOTED_DOLLAR if ch == "$" else ch)  # the shell expands nothing in single quotes
            if ch == "'":
                quote = ""
            elif ch == "\n":
                line_no += 1
            i += 1
            continue
        if ch == "\\":
            # backslash-newline (also with stray spaces before the newline) is a line continuation
            j = i + 1
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "\n":
                if j > i + 1 and not quote:
                    notes.append(
                        Problem(
                            "spaces after a line-ending backslash were ignored (a shell would not continue the line)",
                            file=source,
                            line=line_no,
                            severity="warning",
                        )
                    )
                i = j + 1
                line_no += 1
                continue
            if windows:
                out.append("\\\\")  # a literal backslash for shlex
                i += 1
                continue
            out.append(text[i : i + 2])  # keep the escape for shlex
            i += 2
            continue
        if quote == '"':
            out.append(ch)
            if ch == '"':
                quote = ""
            elif ch == "\n":
                line_no += 1
            i += 1
            continue
        if ch == "$" and text[i + 1 : i + 2] == "(":
            end = _closing_paren(text, i + 1)
            if end is not None:
                substitution = text[i : end + 1]
                # keep `$(...)` whole: unquoted, shlex would split it at the parentheses
                out.append(substitution if quote or "'" in substitution else f"'{substitution}'")
                line_no += substitution.count("\n")
                i = end + 1
                continue
        if ch in "'\"":
            quote = ch
            quote_line = line_no
            out.append(ch)
            i += 1
            continue
        if ch == "#" and (not out or out[-1][-1:] in ("", " ", "\t", "\n", ";", "&", "|", "(", ")")):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch in "^`" and text[i + 1 : i + 2] in ("\n", ""):
            # Windows cmd (^) and PowerShell (`) line continuations: pasted guides use them
            windows_continuation = True
            i += 1
            if i < n:
                i += 1
                line_no += 1
            continue
        if ch == "\n":
            lines.append(_Line("".join(out), start_line))
            out = []
            line_no += 1
            start_line = line_no
            i += 1
            continue
        out.append(ch)
        i += 1
    if quote:
        kind = "double" if quote == '"' else "single"
        raise ConfigError(
            [
                Problem(
                    f"a {kind} quote ({quote}) opened here is never closed",
                    file=source,
                    line=quote_line,
                    fix="close the quote, or escape it with a backslash",
                )
            ]
        )
    lines.append(_Line("".join(out), start_line))
    if windows_continuation:
        notes.append(Problem("a line-ending ^ or ` was read as a line continuation", file=source, severity="warning"))
    return lines


def _closing_paren(text: str, at: int) -> int | None:
    """Index of the `)` closing the `(` at `at` (nesting counted), or None."""
    depth = 0
    for j in range(at, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return None


# A `$` that stood in single quotes (the shell leaves it alone) while the words are checked for variables
_QUOTED_DOLLAR = "\x00"
_VARIABLE = re.compile(
    r"\$env:(?P<ps>[A-Za-z_][A-Za-z0-9_]*)"  # PowerShell
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}"  # ${NAME}
    r"|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"  # $NAME
    r"|%(?P<cmd>[A-Za-z_][A-Za-z0-9_]*)%"  # cmd.exe's %NAME%
)
_SUBSTITUTION = re.compile(r"\$\(|`[^`]+`")


def expand_variables(
    words: list[str], env: Mapping[str, str] | None, source: str, notes: list[Problem], windows: bool = False
) -> list[str]:
    """Shell variables in the words: replaced by their value where `env` has it, else kept and reported.

    A pasted command is never run, so what the shell would have expanded (`$MODEL`, `${OUT}`, `%DATA%`,
    `$env:X`, `$(pwd)`) would otherwise become a literal path. Command substitutions are never run.
    """
    out = []
    for word in words:
        missing: list[str] = []

        def replace(match: re.Match) -> str:
            name = next(v for v in match.groupdict().values() if v)
            if env is not None and name in env:
                return env[name]
            missing.append(match.group(0))
            return match.group(0)

        expanded = _VARIABLE.sub(replace, word)
        substituted = [m.group(0) for m in _SUBSTITUTION.finditer(expanded) if not (windows and m.group(0)[0] == "`")]
        expanded = expanded.replace(_QUOTED_DOLLAR, "$")
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            notes.append(
                Problem(
                    f"{expanded!r} holds {names}, which the shell would have expanded; imported as written",
                    file=source,
                    value=expanded,
                    severity="warning",
                    fix="give the value with --env NAME=VALUE, or add --expand-env to take it from your environment",
                )
            )
        if substituted:
            notes.append(
                Problem(
                    f"{expanded!r} holds a command substitution ({'$(...)' if substituted[0] == '$(' else substituted[0]}), "
                    "which the shell would have "
                    "replaced by the command's output; loratrain never runs it, so it is imported as written",
                    file=source,
                    value=expanded,
                    severity="warning",
                    fix="write the value it stands for instead",
                )
            )
        out.append(expanded)
    return out


def _words(line: _Line, source: str) -> list[str]:
    lexer = shlex.shlex(line.text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:  # the scan catches quotes first; this is a guard for odd escapes at the end
        raise ConfigError([Problem(f"cannot split the command: {exc}", file=source, line=line.number)]) from None


def split_commands(
    text: str, source: str = "<command>", env: Mapping[str, str] | None = None
) -> tuple[list[list[str]], list[Problem]]:
    """Simple commands (lists of words) in order, plus notes.

    A line that starts with an option (`--x`) continues the command above it: the backslash at the end of
    the previous line was lost when the command was pasted. That is reported as a note.
    """
    notes: list[Problem] = []
    commands: list[list[str]] = []
    joined_lines: list[int] = []
    windows = bool(_WINDOWS_HINTS.search(text))
    for line in _scan(text, source, notes):
        words = expand_variables(_words(line, source), env, source, notes, windows)
        if not words:
            continue
        if words[0].startswith("-") and commands:
            commands[-1].extend(_until_operator(words))
            joined_lines.append(line.number)
            rest = words[len(_until_operator(words)) :]
            words = rest[1:] if rest else []
            if not words:
                continue
        current: list[str] = []
        for word in words:
            if word in _OPERATORS or set(word) <= set(";&|()<>"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
        if current:
            commands.append(current)
    if joined_lines:
        notes.append(
            Problem(
                "lines starting with an option were joined to the command above them "
                f"(line {', '.join(map(str, joined_lines[:5]))}{'...' if len(joined_lines) > 5 else ''}); "
                "a shell would need a backslash at the end of each line",
                file=source,
                severity="warning",
            )
        )
    return commands, notes


def _until_operator(words: list[str]) -> list[str]:
    out = []
    for word in words:
        if word in _OPERATORS or set(word) <= set(";&|()<>"):
            break
        out.append(word)
    return out


def _is_script(word: str) -> bool:
    return word.lower().endswith(".py")


def parse_command(text: str, source: str = "<command>", env: Mapping[str, str] | None = None) -> ShellCommand:
    """Find and take apart the command that runs a training script. ConfigError when there is none or it is odd."""
    from loratrain.importers import accelerate_argv

    commands, notes = split_commands(text, source, env)
    if not commands:
        raise ConfigError([Problem("no command found (the text is empty or only comments)", file=source)])
    candidates = [c for c in commands if any(_is_script(w) for w in c)]
    if not candidates:
        raise ConfigError(
            [
                Problem(
                    "no training script found: expected a command running sdxl_train_network.py",
                    file=source,
                    fix="paste the whole `accelerate launch ... sdxl_train_network.py --flags` command",
                )
            ]
        )
    if len(candidates) > 1:
        raise ConfigError(
            [
                Problem(
                    f"{len(candidates)} commands run a .py script; import one training command at a time",
                    file=source,
                )
            ]
        )
    words = list(candidates[0])
    for other in commands:
        if other is not candidates[0]:
            notes.append(Problem(f"skipped the command {shlex.join(other)!r}", file=source, severity="warning"))

    settings: dict[str, str] = {}  # the command's own leading NAME=VALUE words (not the values given in `env`)
    if words and basename(words[0]) == "env":
        words = words[1:]
    while words and _ENV_WORD.match(words[0]) and not _is_script(words[0]):
        name, _, value = words.pop(0).partition("=")
        settings[name] = value

    if not words:
        raise ConfigError([Problem("the command has only environment settings", file=source)])

    head = basename(words[0]).lower()
    interpreter: str | None = None
    launcher = "script"
    rest = words
    if head in ("accelerate", "accelerate.exe"):
        if len(words) < 2 or words[1] != "launch":
            raise ConfigError([Problem(f"expected `accelerate launch`, got {shlex.join(words[:2])!r}", file=source)])
        launcher, rest = "accelerate", words[2:]
    elif head in ("accelerate-launch", "accelerate-launch.exe"):
        launcher, rest = "accelerate", words[1:]
    elif _PYTHON_NAME.match(head):
        interpreter = words[0]
        rest = words[1:]
        while rest and rest[0].startswith("-") and not _is_script(rest[0]):
            opt = rest.pop(0)
            if opt == "-m":
                module = rest.pop(0) if rest else ""
                if module == "accelerate.commands.accelerate_cli" and rest[:1] == ["launch"]:
                    rest.pop(0)
                    module = "accelerate.commands.launch"
                if module not in _ACCELERATE_MODULES:
                    raise ConfigError(
                        [
                            Problem(
                                f"`python -m {module}` is not a launcher loratrain understands",
                                file=source,
                                fix="use `accelerate launch SCRIPT` or `python SCRIPT`",
                            )
                        ]
                    )
                launcher = "accelerate"
                break
            if opt in _PYTHON_VALUE_OPTIONS and rest:
                rest.pop(0)
        else:
            launcher = "python"
    elif not _is_script(head):
        raise ConfigError(
            [
                Problem(
                    f"the command starts with {words[0]!r}; expected accelerate launch, python or the script",
                    file=source,
                )
            ]
        )

    accel_argv: list[str] = []
    if launcher == "accelerate":
        position = accelerate_argv.script_position(rest)
        if position is None:
            raise ConfigError([Problem("no script after `accelerate launch` and its options", file=source)])
        accel_argv, rest = rest[:position], rest[position:]
    if launcher == "python" and not rest:
        raise ConfigError([Problem("no script after the python interpreter", file=source)])
    script, script_argv = rest[0], rest[1:]
    if not _is_script(script):
        raise ConfigError([Problem(f"expected a .py training script here, got {script!r}", file=source)])
    return ShellCommand(
        launcher=launcher,
        interpreter=interpreter,
        accelerate_argv=accel_argv,
        script=script,
        script_argv=script_argv,
        env=settings,
        notes=notes,
    )
