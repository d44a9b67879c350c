"""A 2x3 sweep trained as a queue (`sweep --run`, through `run`) with the fixture trainer, which writes
sd-scripts' output layout: TensorBoard events with the validation-loss tags, samples under sd-scripts' file
names, saves. Then `compare`, `plan` and `fit` on the sweep folder. One training for the whole module (~20 s)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers import FIXTURE_SD_SCRIPTS, browser_dom, loratrain, make_project, tomllib

from loratrain.launch import preflight
from loratrain.report.samples import parse_name

PROMPTS = "# the sweep's prompts\na red fox in the snow --d 7\nportrait of an old man --d 1234\n"
EXTRA = """[logging]
logging_dir = "logs"
[sampling]
sample_prompts = "prompts.txt"
sample_every_n_steps = 2
[extra]
validation_split = 0.25
validate_every_n_steps = 2
"""


def _fixture_trainer():
    spec = importlib.util.spec_from_file_location("fixture_trainer", FIXTURE_SD_SCRIPTS / "sdxl_train_network.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep") / "p"
    make_project(root, extra=EXTRA)
    (root / "prompts.txt").write_text(PROMPTS, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:  # about queues and outputs, not the training interpreter
        mp.setattr(preflight, "CHECKS", [c for c in preflight.CHECKS if c is not preflight.check_training_env])
        result = loratrain(
            root,
            "sweep",
            "mychar.toml",
            "--vary",
            "network.network_dim=4,8",
            "--vary",
            "optimizer.learning_rate=1e-4,2e-4,4e-4",
            "-o",
            "sw",
            "--run",
            timeout=300,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("succeeded") == 6
    return root


def test_compare_json_ranks_by_validation_loss_and_every_cell_is_its_own_runs_sample(trained):
    result = loratrain(trained, "compare", "sw", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    sweep = tomllib.loads((trained / "sw" / "sweep.toml").read_text())
    runs = sweep["runs"]
    assert data["notes"][0].startswith("ranked by the last loss/validation/epoch_average")
    # the order the fixture's validation loss gives (its formula, evaluated on each run's own arguments)
    trainer = _fixture_trainer()

    def expected(name: str) -> float:
        v = runs[name]["values"]
        args = trainer.setup_parser().parse_args(
            [f"--network_dim={v['network.network_dim']}", f"--learning_rate={v['optimizer.learning_rate']}"]
        )
        return trainer.validation_loss(args, 5)

    ranking = data["ranking"]
    assert [r["run"] for r in ranking] == sorted(runs, key=expected)
    for r in ranking:
        assert r["metric"] == "loss/validation/epoch_average" and r["value"] == pytest.approx(expected(r["run"]))
        assert r["values"] == runs[r["run"]]["values"] and r["steps"] == 5 and r["status"] == "succeeded"
        assert r["saves"] == 1 and r["flagged_saves"] == []
    # every grid cell: the run's own sample, for its prompt and step, in the run's own output_dir
    cells = data["grid"]["cells"]
    assert len(cells) == 6 * 2 * 2  # runs x sample steps (2, 4) x prompts
    assert {(c["run"], c["step"], c["prompt_index"]) for c in cells} == {
        (name, step, i) for name in runs for step in (2, 4) for i in (0, 1)
    }
    for c in cells:
        path = Path(c["file"])
        assert path.is_file() and path.parent == Path(c["output_dir"]) / "sample"
        assert Path(c["output_dir"]) == trained / runs[c["run"]]["output_dir"]
        s = parse_name(path.name, runs[c["run"]]["output_name"])
        assert s is not None and (s.kind, s.number, s.index) == ("step", c["step"], c["prompt_index"])
        assert s.seed == (7, 1234)[c["prompt_index"]] and c["comparable"] is True
    assert data["grid"]["mismatched"] == []
    assert [p["prompt"] for p in data["grid"]["prompts"]] == ["a red fox in the snow", "portrait of an old man"]


def test_compare_page_loads_every_image_in_chromium_with_cells_in_place(trained, chromium, tmp_path):
    result = loratrain(trained, "compare", "sw", "--html", str(tmp_path / "page"))
    assert result.returncode == 0, result.stderr
    assert "1. mychar_network_dim-8_learning_rate-2e-4" in result.stdout
    dom = browser_dom(chromium, tmp_path / "page" / "compare.html", tmp_path / "profile")
    assert len(dom.images) == 1 + 24  # the loss plot + one thumbnail per sample
    assert dom.body.get("data-images") == "25/25"
    assert all(int(img["data-natural-width"]) > 0 for img in dom.images)
    for cell in dom.cells:
        s = parse_name(Path(cell["data-file"]).name, cell["data-run"])
        assert s is not None and f"step {s.number}" == cell["data-column"] and str(s.index) == cell["data-prompt"]
        assert int(cell["img"]["data-natural-width"]) == 32
    assert len(dom.cells) == 24


def test_mismatched_seeds_are_flagged_not_mixed(trained, tmp_path):
    # A second prompt file with another seed for prompt #1, as a run trained with it would have drawn.
    sweep = tomllib.loads((trained / "sw" / "sweep.toml").read_text())
    first, second = list(sweep["runs"].values())[:2]
    sample = trained / second["output_dir"] / "sample"
    for f in list(sample.glob("*_01_*_1234.png")):
        f.rename(f.with_name(f.name.replace("_1234.png", "_99.png")))
    try:
        result = loratrain(
            trained, "compare", str(trained / first["output_dir"]), str(trained / second["output_dir"]), "--json"
        )
    finally:
        for f in list(sample.glob("*_01_*_99.png")):
            f.rename(f.with_name(f.name.replace("_99.png", "_1234.png")))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (mismatch,) = data["grid"]["mismatched"]
    assert mismatch["prompt_index"] == 1 and "seed differs" in mismatch["why"] and "99" in mismatch["why"]
    assert any(n.startswith("prompt #1 does not compare") for n in data["notes"])
    assert {c["comparable"] for c in data["grid"]["cells"] if c["prompt_index"] == 1} == {False}
    # runs given one by one: what varies is read from their records
    assert {json.dumps(r["values"], sort_keys=True) for r in data["ranking"]} == {
        json.dumps({"optimizer.learning_rate": v}) for v in (1e-4, 2e-4)
    }


def test_plan_and_fit_on_the_sweep_folder(trained):
    plan = loratrain(trained, "plan", "sw", "--json")
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert data["total_steps"] == 6 * 5 and len(data["runs"]) == 6
    assert all(r["status"] == "succeeded" and r["duration_s"] > 0 for r in data["runs"]), data["runs"]
    assert data["time_s"] == pytest.approx(sum(r["duration_s"] for r in data["runs"]))
    assert data["time_basis"].startswith("measured")
    text = loratrain(trained, "plan", "sw")
    assert "total: 30 steps" in text.stdout
    fit = loratrain(trained, "fit", "sw", "--vram", "24")
    assert fit.returncode == 0, fit.stderr
    lines = [line for line in fit.stdout.splitlines() if line.startswith("mychar_")]
    assert len(lines) == 6 and all("network.network_dim=" in line for line in lines)
    fit_json = json.loads(loratrain(trained, "fit", "sw", "--vram", "24", "--json").stdout)
    peaks = {r["values"]["network.network_dim"]: r["peak_gib"] for r in fit_json["runs"]}
    assert peaks[8] > peaks[4]  # a larger adapter needs more memory: the advice is per run
