"""Resume that counts right: any number of resumes add up to the planned steps, with accumulation 1 and 2.

The fixture trainer writes state folders and honours --resume/--initial_step/--skip_until_initial_step
with sd-scripts' own arithmetic (train_network.py at 48d368f), so a resume that relied on
train_state.json alone would train extra steps here as it does there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import loratrain, make_project, records

from loratrain.launch.resume import simulate

# These are about resuming, not the training interpreter: preflight skips
# the doctor probe (tests/run/test_doctor.py covers it), which would import torch once a launch.
pytestmark = pytest.mark.usefixtures("without_environment_probe")


def project(root: Path, accumulation: int, saving: str, dim: int = 4) -> Path:
    config = make_project(root)
    text = config.read_text()
    text = text.replace("max_train_steps = 5", f"max_train_epochs = 3\ngradient_accumulation_steps = {accumulation}")
    text = text.replace('output_name = "mychar"', f'output_name = "mychar"\nsave_state = true\n{saving}')
    text = text.replace("network_dim = 4", f"network_dim = {dim}")
    config.write_text(text)
    return config


def final_steps(root: Path) -> int:
    return records(root)[-1]["cumulative_steps"]


@pytest.mark.parametrize(
    "accumulation, saving, planned, crashes",
    [
        (1, "save_every_n_steps = 7", 60, ("25", "10")),  # states inside epochs: skip_until_initial_step
        (2, "save_every_n_epochs = 1", 30, ("15", "15")),  # epoch states: the epoch restarts exactly there
    ],
)
def test_two_resumes_add_up_to_the_steps_of_an_uninterrupted_run(tmp_path, accumulation, saving, planned, crashes):
    whole = tmp_path / "whole"
    config = project(whole, accumulation, saving)
    done = loratrain(whole, "run", config.name, "--plain")
    assert done.returncode == 0, done.stderr
    assert final_steps(whole) == planned

    root = tmp_path / "broken"
    config = project(root, accumulation, saving)
    first = loratrain(root, "run", config.name, "--plain", FIXTURE_CRASH_AT=crashes[0])
    assert first.returncode == 1 and "fixture: the machine went away" in first.stderr
    second = loratrain(root, "run", config.name, "--resume", "--plain", FIXTURE_CRASH_AT=crashes[1])
    assert second.returncode == 1, second.stderr
    third = loratrain(root, "run", config.name, "--resume", "--plain")
    assert third.returncode == 0, third.stderr

    runs = records(root)
    assert [r["status"] for r in runs] == ["failed", "failed", "succeeded"]
    assert final_steps(root) == planned == final_steps(whole)
    second_rec, third_rec = runs[1]["resume"], runs[2]["resume"]
    assert "--resume=" + second_rec["state_dir"] in " ".join(runs[1]["argv"]) or any(
        a.startswith("--resume") for a in runs[1]["argv"]
    )
    assert any(a == f"--initial_step={third_rec['cumulative_step']}" for a in runs[2]["argv"])
    # The third launch starts from the state the second one wrote, counted over all launches.
    assert third_rec["cumulative_step"] > second_rec["cumulative_step"]
    assert third_rec["predicted_total"] == planned
    assert (root / "out" / "mychar.safetensors").is_file()


def test_what_train_state_json_alone_would_do_overshoots_which_is_why_loratrain_passes_initial_step():
    # State written by a resumed launch (GA=1, 20 batches/epoch, 60 steps): its current_step is 7 of that launch,
    # really step 27. Passing nothing lets sd-scripts start at epoch 1 again; loratrain's numbers land on 60.
    naive = simulate(20, 1, 60, 7, skip=False)
    assert naive.start_position == 0 and naive.end_position == 60 and naive.steps == 60  # 27 + 60 in all: 33 too many
    right = simulate(20, 1, 60, 27, skip=True)
    assert right.start_position == 27 and right.end_position == 60


def test_a_state_from_a_different_network_is_refused_before_anything_launches(tmp_path):
    root = tmp_path / "p"
    config = project(root, 1, "save_every_n_steps = 7")
    assert loratrain(root, "run", config.name, "--plain", FIXTURE_CRASH_AT="10").returncode == 1
    config.write_text(config.read_text().replace("network_dim = 4", "network_dim = 8"))
    refused = loratrain(root, "run", config.name, "--resume", "--plain")
    assert refused.returncode == 2
    assert "network.network_dim: 4 then, 8 now" in refused.stderr and "rank [4]" in refused.stderr
    assert len(records(root)) == 1  # nothing launched, no record


def test_a_state_from_a_different_dataset_shape_is_refused(tmp_path):
    root = tmp_path / "p"
    config = project(root, 1, "save_every_n_steps = 7")
    assert loratrain(root, "run", config.name, "--plain", FIXTURE_CRASH_AT="10").returncode == 1
    config.write_text(config.read_text().replace("gradient_accumulation_steps = 1", "gradient_accumulation_steps = 2"))
    refused = loratrain(root, "run", config.name, "--resume", "--plain")
    assert refused.returncode == 2 and "training.gradient_accumulation_steps: 1 then, 2 now" in refused.stderr


def test_plan_resume_shows_the_remaining_steps_epochs_saves_and_samples(tmp_path):
    root = tmp_path / "p"
    config = project(root, 1, "save_every_n_steps = 7")
    assert loratrain(root, "run", config.name, "--plain", FIXTURE_CRASH_AT="25").returncode == 1
    shown = loratrain(root, "plan", config.name, "--resume", "--json")
    assert shown.returncode == 0, shown.stderr
    r = json.loads(shown.stdout)["resume"]
    assert r["state_dir"].endswith("mychar-step00000021-state") and r["cumulative_step"] == 21
    assert r["remaining_steps"] == 39 and r["remaining_epochs"] == 2 and r["epoch_to_start"] == 2
    assert [s["step"] for s in r["remaining_saves"]] == [28, 35, 42, 49, 56, 60]
    assert r["arguments"][1:] == ["extra.initial_step=21", "extra.skip_until_initial_step=true"]
    text = loratrain(root, "plan", config.name, "--resume")
    assert "this launch         steps 22-60: 39 steps" in text.stdout


def test_resume_without_any_state_says_how_to_get_one(tmp_path):
    root = tmp_path / "p"
    config = make_project(root)
    refused = loratrain(root, "run", config.name, "--resume")
    assert refused.returncode == 2 and "no state folder of mychar" in refused.stderr and "save_state" in refused.stderr


def finished_project(root: Path) -> Path:
    """A run of 4 steps with a state and a save every 2 steps, finished; then its config raised to 6 steps."""
    config = make_project(root)
    text = config.read_text().replace("max_train_steps = 5", "max_train_steps = 4")
    text = text.replace('output_name = "mychar"', 'output_name = "mychar"\nsave_state = true\nsave_every_n_steps = 2')
    config.write_text(text)
    done = loratrain(root, "run", config.name, "--plain")
    assert done.returncode == 0, done.stderr
    config.write_text(text.replace("max_train_steps = 4", "max_train_steps = 6"))
    return config


def test_resuming_a_finished_run_replaces_its_own_final_model_without_force(tmp_path):
    root = tmp_path / "p"
    config = finished_project(root)
    again = loratrain(root, "run", config.name, "--resume", "--plain")
    assert again.returncode == 0, again.stderr
    (line,) = [ln for ln in again.stderr.splitlines() if "replaces" in ln]
    assert "this launch replaces out/mychar.safetensors: the run's final model from its earlier launch" in line
    first, second = records(root)
    assert second["status"] == "succeeded" and second["cumulative_steps"] == 6
    assert "mychar.safetensors" in {f["path"] for f in second["files"]}


def test_the_guard_still_protects_a_final_model_no_launch_of_this_run_wrote(tmp_path):
    root = tmp_path / "p"
    config = finished_project(root)
    for rec in (root / "out" / "loratrain-runs").glob("*/record.json"):  # the file's origin is now unknown
        data = json.loads(rec.read_text())
        data["files"] = [f for f in data["files"] if f["path"] != "mychar.safetensors"]
        rec.write_text(json.dumps(data))
    again = loratrain(root, "run", config.name, "--resume", "--plain")
    assert again.returncode == 2
    assert "mychar.safetensors already exists and the run would overwrite it" in again.stderr
    assert len(records(root)) == 1  # nothing launched


def test_the_guard_holds_for_a_resume_with_no_preflight_too(tmp_path):
    root = tmp_path / "p"
    config = finished_project(root)
    again = loratrain(root, "run", config.name, "--resume", "--plain", "--no-preflight")
    assert again.returncode == 0, again.stderr
