"""`loratrain schema` (a JSON Schema for editors) and typer's shell completion for bash, zsh and fish."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import run_cli


def _properties(schema: dict, node: dict) -> dict:
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node.get("properties", {})


def test_schema_prints_json_schema_with_every_table_and_key_described():
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    tables = schema["properties"]
    for name in ("model", "dataset", "network", "optimizer", "accelerate", "extra"):
        assert name in tables and tables[name].get("description"), name
    assert _properties(schema, tables["network"])["network_dim"]["description"]
    assert schema["additionalProperties"] is False  # an editor underlines a misspelt table
    undescribed = [
        f"{table}.{key}"
        for table, node in tables.items()
        for key, field in _properties(schema, node).items()
        if not field.get("description")
    ]
    assert undescribed == []


def _completion(variable: str, **extra: str) -> str:
    """Run loratrain the way a shell's completion hook does (click/typer's _LORATRAIN_COMPLETE protocol)."""
    env = {**os.environ, "_LORATRAIN_COMPLETE": variable, **extra}
    result = subprocess.run([sys.executable, "-m", "loratrain"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_shell_completion_offers_verbs_and_options_in_bash_zsh_and_fish():
    assert _completion("complete_bash", COMP_WORDS="loratrain im", COMP_CWORD="1").split() == ["import"]
    assert "--force" in _completion("complete_bash", COMP_WORDS="loratrain import --fo", COMP_CWORD="2").split()
    assert '"--from"' in _completion("complete_zsh", _TYPER_COMPLETE_ARGS="loratrain import --f")
    fish = _completion("complete_fish", _TYPER_COMPLETE_ARGS="loratrain ini", _TYPER_COMPLETE_FISH_ACTION="get-args")
    assert fish.startswith("init\t")


def test_a_completion_script_can_be_printed_for_each_shell():
    for shell, marker in (
        ("bash", "complete -o default"),
        ("zsh", "#compdef loratrain"),
        ("fish", "complete --command"),
    ):
        assert marker in _completion(f"source_{shell}"), shell
