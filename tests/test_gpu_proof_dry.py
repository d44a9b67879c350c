"""benchmarks/gpu_proof.py: its --cpu-dry mode runs here and writes the same JSON the GPU run writes.

The GPU run happens once, on a lent machine with no internet and 15 minutes of device time, so its plumbing
is proven here: every step is present with a status, the GPU-only ones are skipped with the reason, and the
run / interrupt+resume / NaN logic works against the fixture trainer (sd-scripts' step arithmetic and output).
The script is a real subprocess: it launches loratrain, sends SIGINT, and reads the run records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, cli_env

SCRIPT = ROOT / "benchmarks" / "gpu_proof.py"
STEPS = [
    "install",
    "build_tokenizers",
    "build_data",
    "build_model",
    "doctor",
    "check",
    "run",
    "fit_guide",
    "fit_lora8_b4",
    "fit_guide_no_gc",
    "interrupt_resume",
    "nan",
    "report",
]
GPU_ONLY = ["install", "build_model", "fit_guide", "fit_lora8_b4", "fit_guide_no_gc"]


@pytest.fixture(scope="module")
def dry(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("gpu-proof") / "proof.json"
    env = cli_env()
    env.pop("OUT", None)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-dry", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert out.is_file(), done.stdout + done.stderr
    return done, json.loads(out.read_text())


def steps(doc: dict) -> dict[str, dict]:
    return {s["name"]: s for s in doc["steps"]}


def test_every_step_has_a_status_and_none_failed(dry):
    done, doc = dry
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert doc["mode"] == "cpu-dry"
    assert [s["name"] for s in doc["steps"]] == STEPS
    for s in doc["steps"]:
        assert s["status"] in ("ok", "skipped"), (s["name"], s.get("reason"), s.get("tail", "")[-1500:])
        assert isinstance(s["seconds"], float)
    assert doc["summary"] == {"ok": len(STEPS) - doc["summary"]["skipped"], "skipped": doc["summary"]["skipped"]}
    assert doc["finished"] and doc["seconds"] > 0


def test_gpu_only_steps_are_skipped_with_their_reason(dry):
    _, doc = dry
    by = steps(doc)
    for name in GPU_ONLY:
        assert by[name]["status"] == "skipped", name
        assert "GPU" in by[name]["reason"], (name, by[name]["reason"])
    assert "6.5 GiB" in by["build_model"]["reason"] and "stand-in" in by["build_model"]["reason"]
    for name in ("doctor", "check", "run", "interrupt_resume", "nan", "report"):
        assert by[name]["status"] == "ok", (name, by[name].get("reason"))


def test_fit_rows_have_predictions_and_no_measurement(dry):
    _, doc = dry
    rows = doc["fit_table"]
    assert len(rows) == 3
    for row in rows:
        assert row["predicted_gib"] > 5 and row["measured_gib"] is None and row["error_pct"] is None
    guide, lora, no_gc = rows
    assert lora["predicted_gib"] < guide["predicted_gib"]
    # The guide without checkpointing does not fit an 80 GB card at batch 8: the script halves the batch first.
    assert "batch 4" in no_gc["note"], no_gc
    assert no_gc["predicted_gib"] < 0.92 * 79.6
    assert steps(doc)["fit_guide_no_gc"]["numbers"]["facts"]["gradient_checkpointing"] is False


def test_interrupted_run_resumes_to_the_planned_steps(dry):
    _, doc = dry
    n = steps(doc)["interrupt_resume"]["numbers"]
    assert n["exit_codes"] == [130, 0]
    first, second = n["launches"]
    assert first["status"] == "interrupted" and 10 <= first["steps_done"] < 40
    assert second["status"] == "succeeded" and second["cumulative_steps"] == n["planned"] == 40
    assert second["resume"]["steps_this_launch"] == second["steps_done"]


def test_nan_is_stopped_by_the_watchdog_and_the_run_is_reported(dry):
    _, doc = dry
    by = steps(doc)
    nan = by["nan"]["numbers"]
    assert nan["status"] == "stopped" and nan["steps_done"] < 10
    assert [e["kind"] for e in nan["watchdog_events"]] == ["nan"]
    report = by["report"]["numbers"]
    assert report["exit_code"] == 0 and report["html_bytes"] > 1000
    assert [s["step"] for s in report["saves"] if s["step"]] == [10, 20, 30, 40]
    run = by["run"]["numbers"]
    assert run["status"] == "succeeded"
    # The exact commands the GPU run launches are valid: each was rendered with `run --dry-run`.
    for name in ("run", "interrupt_resume", "nan"):
        assert by[name]["numbers"]["dry_run_argv_len"] > 20, name
    assert any("optimizer.learning_rate=100000000.0" in c for c in by["nan"]["commands"])


def test_plan_names_the_device_call():
    done = subprocess.run([sys.executable, str(SCRIPT), "--plan"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    text = done.stdout
    assert "--carried .gpu-proof" in text and '[".gpu-proof"]' in text and "timeout_s: 590" in text
    assert "--prepare .gpu-proof" in text
    assert Path(ROOT / ".gitignore").read_text().count("/.gpu-proof/") == 1
