"""`loratrain schema`: a JSON Schema editors can use, with a description for every key."""

from __future__ import annotations

import json

from importing_helpers import run_cli


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
    network = _properties(schema, tables["network"])
    assert network["network_dim"]["description"]
    assert schema["additionalProperties"] is False  # typos are flagged by the editor
    undescribed = [
        f"{table}.{key}"
        for table, node in tables.items()
        for key, field in _properties(schema, node).items()
        if not field.get("description")
    ]
    assert undescribed == []
