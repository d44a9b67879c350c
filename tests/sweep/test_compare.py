"""`loratrain compare` on runs laid out like the report tests' (helpers.make_run): no validation loss, a
prompt without a seed, and bad input."""

from __future__ import annotations

import json

from helpers import make_run, run_cli


def test_without_validation_loss_it_ranks_by_training_loss_and_says_so(tmp_path):
    a = make_run(tmp_path / "a", name="lora_a")
    b = make_run(tmp_path / "b", name="lora_b")
    result = run_cli("compare", str(a), str(b), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ranking"][0]["metric"] == "loss/epoch_average"
    assert any(
        n.startswith("ranked by training loss (loss/epoch_average): no run logged a validation loss")
        for n in data["notes"]
    )
    # prompt #2 of the report fixture sets no seed: its samples are flagged, never silently compared
    (mismatch,) = data["grid"]["mismatched"]
    assert mismatch["prompt_index"] == 2 and "sets no seed" in mismatch["why"]
    assert {c["comparable"] for c in data["grid"]["cells"] if c["prompt_index"] == 2} == {False}
    assert {c["comparable"] for c in data["grid"]["cells"] if c["prompt_index"] != 2} == {True}
    assert {c["run"] for c in data["grid"]["cells"]} == {"lora_a", "lora_b"}


def test_fewer_than_two_runs_or_a_missing_one_is_exit_2_and_one_json_object(tmp_path):
    a = make_run(tmp_path / "a", name="lora_a")
    one = run_cli("compare", str(a), "--json")
    assert one.returncode == 2
    data = json.loads(one.stdout)
    assert data["ok"] is False and "found 1 run" in data["problems"][0]["message"]
    missing = run_cli("compare", str(a), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr and "Traceback" not in missing.stderr
