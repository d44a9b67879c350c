"""Failure explanation: a corpus of real log tails is named right, successful logs get no cause at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loratrain.launch import failures

DATA = Path(__file__).resolve().parents[1] / "data"
FAILURES = json.loads((DATA / "failure_logs" / "sources.json").read_text(encoding="utf-8"))
SUCCESSES = json.loads((DATA / "success_logs" / "sources.json").read_text(encoding="utf-8"))


def _text(folder: str, name: str) -> str:
    return (DATA / folder / name).read_text(encoding="utf-8")


def test_the_corpus_has_at_least_30_real_failures_with_sources():
    assert len(FAILURES) >= 30
    for entry in FAILURES:
        assert entry["source"].startswith("https://github.com/"), entry
        assert entry["expected"] in {row[0] for row in failures.CAUSES}
        assert (DATA / "failure_logs" / entry["file"]).is_file()


def test_the_corpus_is_classified_at_least_90_percent_right():
    wrong = []
    for entry in FAILURES:
        found = failures.classify(_text("failure_logs", entry["file"]))
        got = found.cause_id if found else None
        if got != entry["expected"]:
            wrong.append((entry["file"], entry["expected"], got))
    accuracy = 1 - len(wrong) / len(FAILURES)
    print(f"failure corpus: {len(FAILURES) - len(wrong)}/{len(FAILURES)} right ({accuracy:.1%}); wrong: {wrong}")
    assert accuracy >= 0.9, wrong


@pytest.mark.parametrize("entry", SUCCESSES, ids=lambda e: e["file"])
def test_no_cause_is_claimed_for_a_successful_runs_log(entry):
    assert failures.classify(_text("success_logs", entry["file"])) is None


def test_a_successful_exit_is_never_explained_even_with_scary_words():
    assert failures.classify("CUDA out of memory\n", exit_code=0) is None


def test_missing_package_names_the_pip_line_for_the_training_python():
    d = failures.classify(_text("failure_logs", "prodigy-musubi-365.log"), exit_code=1, python="/venv/bin/python")
    assert d.cause_id == "missing_package" and "prodigyopt" in d.cause
    assert "/venv/bin/python -m pip install prodigyopt" in d.fix
    lyco = failures.classify(_text("failure_logs", "lycoris-sdscripts-396.log"), exit_code=1)
    assert "pip install lycoris-lora" in lyco.fix


def test_sd_scripts_messages_are_reported_by_their_english_half():
    d = failures.classify(_text("failure_logs", "sd-initial-step.log"), exit_code=1)
    assert d.cause.startswith("sd-scripts stopped: max_train_steps should be greater than initial step")
    assert "初期" not in d.cause


def test_a_sigkill_without_words_in_the_log_is_the_host_running_out_of_memory():
    d = failures.classify(
        "steps:  10%|#         | 10/100 [00:10<01:30,  1.00s/it, avr_loss=0.1]\n", exit_code=137, child_code=-9
    )
    assert d.cause_id == "host_killed"


def test_an_unknown_failure_shows_the_real_exception_not_the_launchers_exit_status():
    log = (
        "steps:   5%|5         | 5/100 [00:05<01:35,  1.00s/it, avr_loss=0.1]\n"
        'Traceback (most recent call last):\n  File "train_network.py", line 10, in train\n    foo()\n'
        "ZeroDivisionError: division by zero\n"
        'Traceback (most recent call last):\n  File "/venv/bin/accelerate", line 8, in <module>\n'
        "subprocess.CalledProcessError: Command '['python', 'x.py']' returned non-zero exit status 1.\n"
    )
    d = failures.classify(log, exit_code=1)
    assert d.cause_id is None and d.cause == "unknown failure: ZeroDivisionError: division by zero"
    assert d.lines[-1] == "ZeroDivisionError: division by zero"
    assert all("CalledProcessError" not in line for line in d.lines)


def test_the_last_sd_scripts_message_is_the_cause_not_an_earlier_one_the_run_survived():
    log = (
        "2025-01-01 ERROR    illegal char in file (not UTF-8) / ファイルにUTF-8以外の文字があります: a.txt\n"
        "steps:  10%|#         | 10/100 [00:10<01:30,  1.00s/it, avr_loss=0.1]\n"
        "AssertionError: caption file is empty / キャプションファイルが空です: b.txt\n"
    )
    d = failures.classify(log, exit_code=1)
    assert d.cause == "sd-scripts stopped: caption file is empty"
