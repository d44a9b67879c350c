"""`loratrain sweep`: the configs it writes, what it refuses, and how it reports a combination that breaks a rule.
No training here (tests/sweep/test_sweep_trained.py trains a sweep with the fixture trainer)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import PROBE, cli_env, make_project, run_cli, tomllib
from hypothesis import given, settings
from hypothesis import strategies as st

from loratrain.config.loader import load_config, parse_override
from loratrain.sweep import build

AXES = ["--vary", "network.network_dim=4,8", "--vary", "optimizer.learning_rate=1e-4,2e-4,4e-4"]


def _sweep(root: Path, *args: str):
    return run_cli("sweep", "mychar.toml", *args, cwd=root)


def test_a_2x3_sweep_writes_six_distinct_valid_configs_sharing_the_dataset(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    result = _sweep(root, *AXES, "-o", "sw")
    assert result.returncode == 0, result.stderr
    assert "6 runs (grid of 2 x 3)" in result.stdout
    configs = sorted((root / "sw").glob("mychar_*.toml"))
    assert len(configs) == 6
    seen = set()
    names, dirs = set(), set()
    for path in configs:
        cfg = load_config(path).config  # valid on its own, as `check --no-preflight` reads it
        dim, lr = cfg.network.network_dim, cfg.optimizer.learning_rate
        seen.add((dim, lr))
        names.add(cfg.saving.output_name)
        dirs.add(cfg.saving.output_dir)
        assert cfg.dataset.train_data_dir == "train" and cfg.model.pretrained_model_name_or_path == "sdxl.safetensors"
        assert path.stem == cfg.saving.output_name and f"network_dim-{dim}" in cfg.saving.output_name
        assert cfg.saving.output_dir.startswith("out/")
    # values are typed exactly as --set types them
    lrs = {parse_override(f"optimizer.learning_rate={v}")[1] for v in ("1e-4", "2e-4", "4e-4")}
    assert seen == {(d, lr) for d in (4, 8) for lr in lrs}
    assert len(names) == 6 and len(dirs) == 6
    record = tomllib.loads((root / "sw" / "sweep.toml").read_text())
    assert record["mode"] == "grid" and record["base"] == str((root / "mychar.toml").resolve())
    assert record["axes"] == {"network.network_dim": [4, 8], "optimizer.learning_rate": sorted(lrs)}
    assert len(record["runs"]) == 6
    for name, run in record["runs"].items():
        assert (root / "sw" / run["config"]).is_file() and run["output_name"] == name
        assert set(run["values"]) == {"network.network_dim", "optimizer.learning_rate"}


def test_zip_pairs_the_lists_and_refuses_lists_of_different_lengths(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    ok = _sweep(root, "--zip", "--vary", "network.network_dim=4,8", "--vary", "network_alpha=2,4", "-o", "z")
    assert ok.returncode == 0, ok.stderr
    pairs = {(c.network.network_dim, c.network.network_alpha) for c in map(_cfg, (root / "z").glob("mychar_*.toml"))}
    assert pairs == {(4, 2), (8, 4)}
    bad = _sweep(root, "--zip", *AXES, "-o", "z2")
    assert bad.returncode == 2 and "different lengths" in bad.stderr and "network.network_dim 2" in bad.stderr
    assert not (root / "z2").exists()


def _cfg(path: Path):
    return load_config(path).config


def test_keys_that_cannot_vary_are_refused_with_exit_2(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    for key in ("dataset.train_data_dir=a,b", "train_data_dir=a,b", "saving.output_name=x,y", "output_dir=o1,o2"):
        result = _sweep(root, "--vary", key, "-o", "sw")
        assert result.returncode == 2, (key, result.stderr)
        assert "cannot vary" in result.stderr and "Traceback" not in result.stderr
        assert not (root / "sw").exists()


def test_a_key_that_shapes_cached_latents_is_refused_with_a_disk_cache_and_allowed_without(tmp_path):
    root = tmp_path / "p"
    base = make_project(root)
    base.write_text(base.read_text().replace("[dataset]\n", "[dataset]\ncache_latents_to_disk = true\n"))
    refused = _sweep(root, "--vary", "dataset.resolution=512,1024", "-o", "sw")
    assert refused.returncode == 2, refused.stderr
    assert "dataset.resolution" in refused.stderr and "_sdxl.npz" in refused.stderr
    assert "cache_latents_to_disk = false" in refused.stderr
    ok = _sweep(root, "--vary", "network.network_dim=4,8", "-o", "sw")  # nothing that shapes latents varies
    assert ok.returncode == 0, ok.stderr
    flip = _sweep(root, "--vary", "dataset.flip_aug=false,true", "-o", "sw2")
    assert flip.returncode == 0 and "adds" not in flip.stdout and "flip_aug varies" in flip.stderr
    base.write_text(base.read_text().replace("cache_latents_to_disk = true", "cache_latents = true"))
    assert _sweep(root, "--vary", "dataset.resolution=512,1024", "-o", "sw3").returncode == 0


def test_a_combination_that_breaks_a_rule_is_reported_with_its_values_and_skip_invalid_leaves_it_out(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    axes = ["--vary", "network.network_dim=4,8", "--vary", "precision.full_bf16=false,true"]
    result = _sweep(root, *axes, "-o", "sw")
    assert result.returncode == 2
    assert result.stderr.count("precision.full_bf16=true breaks a rule") == 2  # both runs with it, each with its values
    assert "network.network_dim=4" in result.stderr and "needs mixed_precision" in result.stderr
    assert "--skip-invalid" in result.stderr and not (root / "sw").exists()
    skipped = _sweep(root, *axes, "-o", "sw", "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert len(list((root / "sw").glob("mychar_*.toml"))) == 2
    record = tomllib.loads((root / "sw" / "sweep.toml").read_text())
    assert len(record["runs"]) == 2 and len(record["skipped"]) == 2
    assert all(s["values"]["precision.full_bf16"] is True for s in record["skipped"].values())
    again = _sweep(root, *axes, "-o", "sw", "--skip-invalid")
    assert again.returncode == 2 and "already holds a sweep" in again.stderr


def test_json_failure_is_one_object_with_problems(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    result = _sweep(root, "--vary", "dataset.train_data_dir=a,b", "-o", "sw", "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False
    (problem,) = data["problems"]
    assert set(problem) == {"file", "line", "key", "severity", "message", "fix"}
    assert problem["key"] == "dataset.train_data_dir" and problem["severity"] == "error"
    ok = json.loads(_sweep(root, *AXES, "-o", "sw", "--json").stdout)
    assert ok["ok"] is True and len(ok["runs"]) == 6 and ok["skipped"] == []


def test_bad_vary_text_is_exit_2_without_a_traceback(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    for text in ("network_dim", "network.network_dim=", "network.network_dim=4,,8", "network.network_dim=[1,"):
        result = _sweep(root, "--vary", text, "-o", "sw")
        assert result.returncode == 2 and "Traceback" not in result.stderr, (text, result.stderr)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8))
def test_run_labels_are_filesystem_safe_and_distinct_for_any_values(tmp_path_factory, texts):
    labels = build.distinct([build.safe(t) for t in texts])
    for label in labels:
        assert label and all(c.isascii() and (c.isalnum() or c in ".+-") for c in label)
        assert not label.startswith((".", "-"))
    assert len({label.lower() for label in labels}) == len(texts)
    folder = tmp_path_factory.mktemp("names")
    for label in labels:  # each one a folder of its own
        (folder / label).mkdir()


def test_split_values_keeps_lists_and_quoted_commas_whole():
    assert build.split_values("8,16") == ["8", "16"]
    assert build.split_values("[0.9,0.99], [0.9,0.999]") == ["[0.9,0.99]", "[0.9,0.999]"]
    assert build.split_values('"a,b",c') == ['"a,b"', "c"]


def test_sweep_and_plan_of_a_sweep_import_no_heavy_package(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    for args in (["sweep", "mychar.toml", *AXES, "-o", "sw"], ["plan", "sw"], ["fit", "sw", "--vram", "24"]):
        result = subprocess.run(
            [sys.executable, "-c", PROBE, *args], cwd=root, env=cli_env(), capture_output=True, text=True, timeout=60
        )
        line = [ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY:")]
        assert line == ["HEAVY:"], (args, result.stderr[-2000:])


def test_fit_on_a_sweep_folder_gives_each_runs_verdict_and_its_own_fix(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    assert _sweep(root, "--vary", "training.train_batch_size=1,8", "-o", "sw").returncode == 0
    result = run_cli("fit", "sw", "--vram", "48", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    one, eight = json.loads(result.stdout)["runs"]
    assert one["values"] == {"training.train_batch_size": 1} and eight["values"] == {"training.train_batch_size": 8}
    assert eight["peak_gib"] > one["peak_gib"]
    assert one["fits"] is True and one["advice"] == []
    assert eight["fits"] is False and eight["advice"][0]["set"].startswith("--set")
    assert eight["advice"][0]["peak_gib"] <= 48
    text = run_cli("fit", "sw", "--vram", "48", cwd=root).stdout
    assert text.count("to fit: --set") == 1 and "train_batch_size=8): predicted peak" in text


def test_detach_goes_with_run(tmp_path):
    root = tmp_path / "p"
    make_project(root)
    result = _sweep(root, *AXES, "-o", "sw", "--detach")
    assert result.returncode == 2 and "--detach goes with --run" in result.stderr and not (root / "sw").exists()
