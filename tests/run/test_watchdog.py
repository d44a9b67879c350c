"""The watchdog: NaN/inf loss stops the run within 3 logged steps, slow steps and stalls warn once; all recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import loratrain, make_project, records

from loratrain.launch.watchdog import Watchdog, WatchSettings, last_progress_in_log

# These are about the watchdog and the run records, not the training interpreter: preflight skips
# the doctor probe (tests/run/test_doctor.py covers it), which would import torch once a launch.
pytestmark = pytest.mark.usefixtures("without_environment_probe")


def bar(step: int, total: int, loss: str | None) -> bytes:
    post = f", avr_loss={loss}" if loss is not None else ""
    return f"\rsteps:  {100 * step // total:2d}%|#         | {step}/{total} [00:01<00:09,  1.00s/it{post}]".encode()


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_nan_loss_asks_for_the_stop_at_the_step_it_appears_and_names_the_usual_causes():
    seen = []
    dog = Watchdog(None, WatchSettings(on_nan="stop"), on_event=seen.append)
    for step in range(1, 5):
        dog.feed(bar(step, 100, "0.08"))
        assert dog.poll() is None
    dog.feed(bar(5, 100, "nan"))
    assert dog.poll() == "loss became NaN at step 5"
    assert dog.poll() is None  # asked once
    (event,) = seen
    assert event["kind"] == "nan" and event["step"] == 5
    assert "learning rate" in event["advice"] and "no_half_vae" in event["advice"] and "image" in event["advice"]


def test_inf_counts_like_nan_and_warn_mode_only_warns():
    dog = Watchdog(None, WatchSettings(on_nan="warn"))
    dog.feed(bar(3, 10, "inf"))
    assert dog.poll() is None
    assert dog.events[0]["kind"] == "nan" and "infinite" in dog.events[0]["message"] and dog.nan_step == 3


def test_steps_three_times_slower_than_before_warn_once_but_one_slow_step_does_not():
    clock = Clock()
    dog = Watchdog(None, WatchSettings(), clock=clock)
    step = 0
    for dt in [1.0] * 8 + [9.0] + [1.0] * 3:  # a sample image: one slow step
        clock.t += dt
        step += 1
        dog.feed(bar(step, 100, "0.1"))
    dog.poll()
    assert dog.events == []
    for dt in [3.5, 3.6, 3.4]:
        clock.t += dt
        step += 1
        dog.feed(bar(step, 100, "0.1"))
        dog.poll()
    (event,) = dog.events
    # Two slow steps in a row make the median of the last three slow: the warning comes at the second.
    assert event["kind"] == "slow" and event["step"] == step - 1 and event["seconds_per_step"] == 3.5
    clock.t += 40
    dog.feed(bar(step + 1, 100, "0.1"))
    dog.poll()
    assert len(dog.events) == 1


def test_no_progress_for_the_stall_time_warns_once():
    clock = Clock()
    dog = Watchdog(None, WatchSettings(stall_s=60), clock=clock)
    dog.feed(bar(1, 10, "0.1"))
    clock.t = 59
    dog.poll()
    assert dog.events == []
    clock.t = 61
    dog.poll()
    clock.t = 500
    dog.poll()
    assert [e["kind"] for e in dog.events] == ["stall"] and "after step 1" in dog.events[0]["message"]


def test_bytes_pass_through_unchanged_to_the_display():
    class Sink:
        data = b""

        def feed(self, d):
            self.data += d

        def close(self):
            pass

    inner = Sink()
    dog = Watchdog(inner)
    for chunk in (b"hello\n", bar(1, 2, "0.1"), "é".encode()[:1], "é".encode()[1:]):
        dog.feed(chunk)
    assert inner.data == b"hello\n" + bar(1, 2, "0.1") + "é".encode()


def test_last_progress_in_a_log_reads_the_final_redraw():
    text = (bar(1, 5, "0.2") + bar(2, 5, "0.1") + b"\nother line\n").decode()
    p = last_progress_in_log(text)
    assert (p.step, p.total, p.avr_loss) == (2, 5, 0.1)


def test_a_nan_run_is_stopped_within_3_logged_steps_and_recorded(tmp_path, launcher):
    root = tmp_path / "p"
    config = make_project(root, steps=200, python=launcher.python)
    done = loratrain(root, "run", config.name, "--plain", FIXTURE_NAN_AT="4", FIXTURE_STEP_S="0.05")
    assert done.returncode != 0, done.stderr
    (rec,) = records(root)
    assert rec["status"] == "stopped" and rec["nan_step"] == 4 and "NaN at step 4" in rec["stopped_by"]
    assert rec["steps_done"] <= 4 + 3
    assert rec["watchdog"]["events"][0]["kind"] == "nan"
    assert "failure" not in rec  # the stop is ours, not a failure to explain
    assert "the loss became NaN at step 4; stopping the run" in done.stderr and "no_half_vae" in done.stderr
    assert not (root / "out" / "mychar.safetensors").exists()  # no broken final file


def test_a_failed_run_says_why_in_one_or_two_lines_and_records_it(tmp_path, launcher):
    log = tmp_path / "fail.log"
    log.write_text(
        'Traceback (most recent call last):\n  File "train_util.py", line 3618, in get_optimizer\n'
        "ImportError: No bitsandbytes / bitsandbytesがインストールされていないようです\n",
        encoding="utf-8",
    )
    root = tmp_path / "p"
    config = make_project(root, python=launcher.python)
    done = loratrain(root, "run", config.name, "--plain", FIXTURE_FAIL_LOG=str(log))
    assert done.returncode == 1
    (rec,) = records(root)
    assert rec["status"] == "failed" and rec["failure"]["cause_id"] == "missing_package"
    assert "-m pip install bitsandbytes" in rec["failure"]["fix"]
    assert "cause: a Python package is missing or broken in the training environment (bitsandbytes)" in done.stderr
    assert rec["steps_done"] == 5 and rec["last_loss"] is not None


def test_runs_lists_every_record_with_status_steps_loss_and_cause(tmp_path):
    log = tmp_path / "fail.log"
    log.write_text("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n", encoding="utf-8")
    root = tmp_path / "p"
    config = make_project(root)
    assert loratrain(root, "run", config.name, "--plain").returncode == 0
    assert loratrain(root, "run", config.name, "--plain", "--force", FIXTURE_FAIL_LOG=str(log)).returncode == 1
    listed = loratrain(root, "runs", "out", "--json")
    assert listed.returncode == 0, listed.stderr
    ok, failed = json.loads(listed.stdout)
    assert ok["status"] == "succeeded" and ok["steps_done"] == 5 and ok["cause"] == "" and ok["last_loss"] > 0
    assert failed["status"] == "failed" and failed["cause"].startswith("the GPU ran out of memory")
    assert (root / failed["record"] / "record.json").is_file() or (Path(failed["record"]) / "record.json").is_file()
    table = loratrain(root, "runs", "out", COLUMNS="250")
    assert "succeeded" in table.stdout and "failed" in table.stdout and "GPU ran out of memory" in table.stdout
    empty = loratrain(root, "runs", str(tmp_path))
    assert empty.returncode == 0 and "no runs recorded" in empty.stderr


def test_a_silent_start_and_slower_steps_each_warn_once_and_are_recorded(tmp_path):
    root = tmp_path / "p"
    config = make_project(root, steps=14)
    done = loratrain(
        root,
        "run",
        config.name,
        "--plain",
        "--stall-after",
        "1",
        FIXTURE_SILENT_S="2.5",
        FIXTURE_STEP_S="0.05",
        FIXTURE_SLOW_FROM="10",
        FIXTURE_SLOW_S="0.8",
    )
    assert done.returncode == 0, done.stderr
    (rec,) = records(root)
    kinds = [e["kind"] for e in rec["watchdog"]["events"]]
    assert kinds == ["stall", "slow"], rec["watchdog"]
    assert rec["watchdog"]["events"][1]["step"] >= 10 and rec["status"] == "succeeded"
    assert "warning: no progress for 1s" in done.stderr and "warning: steps got slower" in done.stderr
