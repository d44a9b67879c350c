"""The run record: never overwritten, no secrets, a command that runs again, what the run produced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loratrain import atomic
from loratrain.errors import ConfigError
from loratrain.launch import record


def start_record(out: Path, **overrides) -> record.RunRecord:
    rec = record.RunRecord(out, "mychar")
    fields = dict(
        argv=[
            sys.executable,
            "-c",
            "import os, sys; print(os.environ['MARK'], 'key' if os.environ.get('WANDB_API_KEY') else 'nokey'); sys.exit(0)",
        ],
        env={"WANDB_API_KEY": "s3cret-value", "MARK": "rerun ok"},
        cwd=str(out),
        config={
            "network": {"network_dim": 16},
            "logging": {"log_with": "wandb", "wandb_api_key": "s3cret-value"},
            "huggingface_token": "hf_secret",
        },
        config_file="run.toml",
        versions={"torch": "2.13.0"},
        sd_scripts={"path": "/opt/sd-scripts", "commit": "abc"},
        gpus=[{"index": 0, "name": "A100"}],
    )
    fields.update(overrides)
    rec.start(**fields)
    return rec


def test_each_run_gets_its_own_folder_and_an_earlier_record_is_never_touched(tmp_path):
    first = start_record(tmp_path)
    before = (first.folder / "record.json").read_text()
    second = start_record(tmp_path)
    assert first.folder != second.folder and first.folder.parent == second.folder.parent
    assert (first.folder / "record.json").read_text() == before


def test_record_holds_no_secret_anywhere(tmp_path):
    rec = start_record(tmp_path)
    for path in rec.folder.iterdir():
        text = path.read_text()
        assert "s3cret-value" not in text and "hf_secret" not in text, path.name
    data = json.loads((rec.folder / "record.json").read_text())
    assert data["config"] == {"network": {"network_dim": 16}, "logging": {"log_with": "wandb"}}
    assert data["env"] == ["MARK", "WANDB_API_KEY"]


def test_record_holds_argv_versions_gpus_and_start_time(tmp_path):
    rec = start_record(tmp_path)
    data = json.loads((rec.folder / "record.json").read_text())
    assert data["status"] == "running" and data["argv"][0] == sys.executable
    assert data["versions"]["torch"] == "2.13.0" and "loratrain" in data["versions"]
    assert data["gpus"] == [{"index": 0, "name": "A100"}] and data["started"].startswith("20")


def test_command_script_reruns_the_command_and_demands_the_secret_from_the_environment(tmp_path):
    rec = start_record(tmp_path)
    script = rec.folder / "command.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    without = subprocess.run(["bash", str(script)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert without.returncode != 0 and "set WANDB_API_KEY in the environment" in without.stderr
    with_key = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "WANDB_API_KEY": "x"}
    )
    assert with_key.returncode == 0 and with_key.stdout.strip() == "rerun ok key"


def test_finish_lists_the_files_the_run_wrote_and_its_exit_code(tmp_path):
    (tmp_path / "old.safetensors").write_bytes(b"old")
    rec = start_record(tmp_path)
    (tmp_path / "mychar.safetensors").write_bytes(b"new lora")
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "mychar_000010_00.png").write_bytes(b"png")
    rec.finish(exit_code=0, duration_s=12.3456)
    data = json.loads((rec.folder / "record.json").read_text())
    assert data["status"] == "succeeded" and data["exit_code"] == 0 and data["duration_s"] == 12.346
    assert data["files"] == [
        {"path": "mychar.safetensors", "bytes": 8},
        {"path": "sample/mychar_000010_00.png", "bytes": 3},
    ]


def test_an_interrupted_run_is_recorded_as_such(tmp_path):
    rec = start_record(tmp_path)
    rec.finish(exit_code=130, duration_s=1.0, interrupted_by="SIGINT")
    data = json.loads((rec.folder / "record.json").read_text())
    assert (data["status"], data["interrupted_by"], data["exit_code"]) == ("interrupted", "SIGINT", 130)


def test_atomic_write_leaves_no_temporary_file_and_a_readable_file(tmp_path):
    atomic.write_text(tmp_path / "a.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_atomic_write_into_a_missing_folder_is_a_config_error_naming_the_file(tmp_path):
    target = tmp_path / "gone" / "a.json"
    with pytest.raises(ConfigError) as err:
        atomic.write_text(target, "{}")
    assert err.value.problems[0].file == str(target) and "No such file" in err.value.problems[0].message


def test_secret_flags_in_argv_are_redacted_as_a_backstop():
    assert record.redact_argv(["x", "--wandb_api_key=abc", "--huggingface_token", "hf", "--max_token_length=225"]) == [
        "x",
        "--wandb_api_key=<redacted>",
        "--huggingface_token",
        "<redacted>",
        "--max_token_length=225",
    ]


def test_one_reader_one_policy_for_damaged_records(tmp_path):
    """record.py reads records back for runs, report and resume: a damaged one is listed with its reason by
    records_in, passed over by newest_record (and so by report's and resume's searches)."""
    from loratrain.launch.resume import load_records

    runs = tmp_path / "out" / record.RUNS_FOLDER
    for name, text in [
        ("a-20260101-000000", json.dumps({"status": "succeeded", "started": "2026-01-01T00:00:00"})),
        ("b-20260102-000000", json.dumps({"status": "failed", "started": "2026-01-02T00:00:00"})),
        ("c-20260103-000000", "{not json"),
        ("d-20260104-000000", "[1, 2]"),
        ("e-20260105-000000", "[" * 5000 + "]" * 5000),  # nested too deep for a bounded reader: damaged, no crash
    ]:
        (runs / name).mkdir(parents=True)
        (runs / name / record.RECORD_NAME).write_text(text, encoding="utf-8")
    stored = record.records_in(tmp_path / "out")
    problems = {r.run_id: r.problem for r in stored}
    assert problems["a-20260101-000000"] is None and problems["b-20260102-000000"] is None
    assert "not JSON" in problems["c-20260103-000000"] and "not a JSON object" in problems["d-20260104-000000"]
    assert problems["e-20260105-000000"] is not None
    assert record.newest_record(tmp_path / "out").run_id == "b-20260102-000000"
    assert record.newest_record(runs, "a").run_id == "a-20260101-000000"  # the runs folder itself, by output_name
    assert [folder.name for folder, _ in load_records(tmp_path / "out")] == ["a-20260101-000000", "b-20260102-000000"]
    assert "cannot read" in record.read_record(tmp_path / "nowhere").problem
