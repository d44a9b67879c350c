"""`loratrain report` in-process (and in a real process where the process matters): what gets written, --json,
the three kinds of RUN, bad input, --open, no heavy imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import helpers as synth
from helpers import BASE, NAN_MODULE, PROBE, run_cli, run_entry_point

from loratrain.errors import EXIT_CONFIG


def test_report_of_a_record_folder_writes_page_and_figures(finished_run):
    result = run_cli("report", finished_run)
    assert result.returncode == 0, result.stderr
    folder = finished_run / "report"
    assert {p.name for p in folder.iterdir()} == {
        "report.html",
        "loss.png",
        "learning_rate.png",
        "update_norms.png",
        "samples.png",
        ".cache",
    }
    assert "mylora-step00000100.safetensors: 1 tensor(s) hold NaN/inf" in result.stdout
    assert "saves: 4, 4 flagged" in result.stdout and f"report: {folder / 'report.html'}" in result.stdout
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert NAN_MODULE in page and "never trained" in page
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched from elsewhere
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_prints_the_numbers_and_writes_nothing_without_o(finished_run, tmp_path):
    result = run_cli("report", finished_run, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["curves"]["series"]["loss/current"]["steps"][-1] == 200
    assert [s["step"] for s in data["saves"]] == [50, 100, 150, 200]
    assert data["saves"][1]["nonfinite_tensors"] == [f"{NAN_MODULE}.lora_up.weight"]
    assert len(data["samples"]["cells"]) == 6 and data["run"]["status"] == "succeeded"
    assert not (finished_run / "report").exists()
    result = run_cli("report", finished_run, "--json", "-o", tmp_path / "elsewhere")
    assert result.returncode == 0 and json.loads(result.stdout)["saves"]
    assert (tmp_path / "elsewhere" / "report.html").is_file()


def test_missing_logging_dir_still_writes_the_report_and_says_why(tmp_path):
    folder = synth.make_run(tmp_path, logging=False)
    out = tmp_path / "rep"
    result = run_cli("report", tmp_path / "out", "-o", out)  # RUN = output_dir: its newest record
    assert result.returncode == 0, result.stderr
    assert "curves: none (logging_dir was not set" in result.stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "logging_dir was not set, so sd-scripts wrote no TensorBoard events" in page
    assert not (out / "loss.png").exists() and (out / "samples.png").exists()
    assert str(folder) in page


def test_config_as_run_finds_its_record_or_reads_its_folders(tmp_path):
    synth.make_run(tmp_path / "a")
    config = tmp_path / "a.toml"
    config.write_text(
        BASE.replace('output_dir = "/out"', f'output_dir = "{tmp_path / "a" / "out"}"\noutput_name = "mylora"'),
        encoding="utf-8",
    )
    result = run_cli("report", config, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run"]["record"].startswith(str(tmp_path / "a" / "out" / "loratrain-runs"))
    shutil.rmtree(tmp_path / "a" / "out" / "loratrain-runs")
    result = run_cli("report", config)
    assert result.returncode == 0, result.stderr
    assert "note: no run record" in result.stdout and "saves: 4" in result.stdout
    assert (tmp_path / "a" / "out" / "loratrain-report" / "report.html").is_file()


def test_bad_run_argument_is_one_clear_error(tmp_path):
    result = run_cli("report", tmp_path / "nope")
    assert result.returncode == EXIT_CONFIG and "Traceback" not in result.stderr
    assert "no such file or folder" in result.stderr and "RUN" in result.stderr
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    result = run_cli("report", tmp_path / "notes.txt")
    assert (
        result.returncode == EXIT_CONFIG and "not a run record folder, an output_dir or a .toml config" in result.stderr
    )
    bad = tmp_path / "out" / "loratrain-runs" / "r-20260101-000000"
    bad.mkdir(parents=True)
    (bad / "record.json").write_text("{not json", encoding="utf-8")
    result = run_cli("report", bad)
    assert (
        result.returncode == EXIT_CONFIG
        and "the run record is not JSON" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_open_hands_the_page_to_the_browser(finished_run, tmp_path):
    opened = tmp_path / "opened.txt"
    # webbrowser runs $BROWSER with the page's URL for %s.
    browser = f"{sys.executable} -c \"import sys; open(sys.argv[2], 'w').write(sys.argv[1])\" %s {opened}"
    # A real process: webbrowser reads $BROWSER once per process.
    result = run_entry_point("report", finished_run, "--open", env={"BROWSER": browser})
    assert result.returncode == 0, result.stderr
    assert opened.read_text() == (finished_run / "report" / "report.html").resolve().as_uri()


def test_report_never_imports_torch(finished_run):
    """The report reads tensors with numpy: no torch, accelerate, lycoris or transformers in its process."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "report", str(finished_run)], capture_output=True, text=True, timeout=120
    )
    assert (finished_run / "report" / "report.html").is_file(), result.stderr[-2000:]
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY:")] == ["HEAVY:"], result.stderr[-2000:]


def test_the_runs_settings_are_the_effective_view_of_the_recorded_config(tmp_path):
    """A record holds the config it ran; the report shows what sd-scripts did with it (the effective view, as fit,
    plan and check print it): use_8bit_adam runs AdamW8bit, on the one GPU the record saw."""
    from loratrain.config.loader import load_config
    from loratrain.effective import Effective
    from loratrain.launch.record import RECORD_NAME

    folder = synth.make_run(tmp_path)
    path = tmp_path / "run.toml"
    path.write_text(BASE + "[extra]\nuse_8bit_adam = true\n", encoding="utf-8")
    cfg = load_config(str(path), []).config
    record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
    record["config"] = cfg.model_dump(mode="json", exclude_none=True)  # as launch/prepare.py records it
    (folder / RECORD_NAME).write_text(json.dumps(record), encoding="utf-8")

    result = run_cli("report", folder, "--json")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)["run"]["effective"]
    assert facts == Effective.from_config(cfg, 1).facts()
    assert (facts["optimizer_type"], facts["optimizer_class"]) == ("AdamW8bit", "bitsandbytes.optim.AdamW8bit")
    assert run_cli("report", folder).returncode == 0
    page = (folder / "report" / "report.html").read_text(encoding="utf-8")
    assert "<th>optimizer</th><td>AdamW8bit (bitsandbytes.optim.AdamW8bit)</td>" in page


def test_a_record_without_a_readable_config_has_no_effective_view(finished_run):
    from loratrain.launch.record import RECORD_NAME

    record = json.loads((finished_run / RECORD_NAME).read_text(encoding="utf-8"))
    record["config"] = {"no_such_table": {}}  # a schema this loratrain does not read
    (finished_run / RECORD_NAME).write_text(json.dumps(record), encoding="utf-8")
    result = run_cli("report", finished_run, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run"]["effective"] is None
