"""optimizer_args / lr_scheduler_args through the real CLI: check, run --dry-run, import and explain."""

from __future__ import annotations

import ast
import json
import shlex

from helpers import BASE, run_cli

from loratrain.sdscripts import optimizers as opt
from loratrain.sdscripts.optimizer_docs import OPTIMIZER_ARG_DOCS, OPTIMIZER_DOCS, SCHEDULER_ARG_DOCS

ISSUE_EXAMPLE = (
    BASE
    + """
[optimizer]
optimizer_type = "Adafactor"
optimizer_args = ["decouple=true", "betas=0.9,0.99"]
unet_lr = 1e-4
"""
)


def test_the_issue_example_is_three_errors_with_lines_and_fixes_and_nothing_runs(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(ISSUE_EXAMPLE, encoding="utf-8")
    result = run_cli("run", str(config), "--dry-run")
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err and "accelerate" not in result.stdout
    line = ISSUE_EXAMPLE.splitlines().index('optimizer_args = ["decouple=true", "betas=0.9,0.99"]') + 1
    assert f"run.toml:{line}: optimizer.optimizer_args[0]: decouple=true" in err and "write decouple=True" in err
    assert "optimizer.optimizer_args[1]: the optimizer Adafactor" in err and "did you mean 'beta1'?" in err
    assert "optimizer.unet_lr: Adafactor with relative_step" in err and "relative_step = false" in err


def test_a_typed_table_is_checked_per_key_and_rendered_as_python_literals(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        BASE
        + """
[optimizer]
optimizer_type = "Prodigy"
learning_rate = 1.0
[optimizer.optimizer_args]
decouple = true
betas = [0.9, 0.99]
weight_decay = 0.01
d_coef = 0.8
growth_rate = inf
""",
        encoding="utf-8",
    )
    result = run_cli("run", str(config), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)["argv"]
    start = argv.index("--optimizer_args") + 1
    items = argv[start : start + 5]
    assert items == ["decouple=True", "betas=0.9,0.99", "weight_decay=0.01", "d_coef=0.8", "growth_rate=1e999"]
    read = {k: ast.literal_eval(v) for k, v in (i.split("=") for i in items)}
    assert read == {
        "decouple": True,
        "betas": (0.9, 0.99),
        "weight_decay": 0.01,
        "d_coef": 0.8,
        "growth_rate": float("inf"),
    }


def test_a_wrong_type_in_the_table_names_its_line_and_the_toml_fix(tmp_path):
    text = (
        BASE + '[optimizer]\noptimizer_type = "DAdaptAdam"\nlearning_rate = 1.0\n'
        '[optimizer.optimizer_args]\ndecouple = "true"\n'
    )
    config = tmp_path / "run.toml"
    config.write_text(text, encoding="utf-8")
    result = run_cli("check", "--no-preflight", str(config))
    assert result.returncode == 2
    line = text.splitlines().index('decouple = "true"') + 1
    assert f"run.toml:{line}: optimizer.optimizer_args.decouple: decouple must be true or false" in result.stderr
    assert "(write decouple = true)" in result.stderr


def test_an_unknown_optimizer_is_an_error_with_a_suggestion(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(BASE + '[optimizer]\noptimizer_type = "Prodigyy"\n', encoding="utf-8")
    result = run_cli("check", "--no-preflight", str(config))
    assert result.returncode == 2 and "did you mean 'Prodigy'" in result.stderr


def test_import_turns_the_list_form_into_a_typed_table_that_renders_the_same(tmp_path):
    command = (
        "accelerate launch sdxl_train_network.py --pretrained_model_name_or_path=/m.safetensors "
        "--train_data_dir=/d --resolution=1024,1024 --network_module=networks.lora --output_dir=/o "
        "--optimizer_type=Prodigy --learning_rate=1.0 --optimizer_args decouple=True weight_decay=0.01 "
        "betas=0.9,0.999 d_coef=2 --lr_scheduler=cosine --lr_scheduler_args num_cycles=0.4"
    )
    result = run_cli("import", "-", input=command)
    assert result.returncode == 0, result.stderr
    assert (
        "[optimizer.optimizer_args]\ndecouple = true\nweight_decay = 0.01\nbetas = [0.9, 0.999]\nd_coef = 2\n"
        in result.stdout
    )
    assert "[optimizer.lr_scheduler_args]\nnum_cycles = 0.4" in result.stdout
    config = tmp_path / "imported.toml"
    config.write_text('sd_scripts = "/opt/sd"\n' + result.stdout, encoding="utf-8")
    dry = run_cli("run", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    tokens = shlex.split(dry.stdout.replace("\\\n", " "))
    start = tokens.index("--optimizer_args") + 1
    assert tokens[start : start + 4] == ["decouple=True", "weight_decay=0.01", "betas=0.9,0.999", "d_coef=2"]


def test_explain_a_key_for_one_optimizer_and_refuse_a_key_it_does_not_take():
    result = run_cli("explain", "optimizer_args.d_coef", "--optimizer", "prodigy")
    assert result.returncode == 0, result.stderr
    assert "default:   1.0 (Prodigy)" in result.stdout and "--optimizer_args d_coef=1.0" in result.stdout
    bad = run_cli("explain", "optimizer_args.decoupled", "--optimizer", "Prodigy")
    assert bad.returncode == 2 and "did you mean 'decouple'?" in bad.stderr and "accepted:" in bad.stderr


def test_explain_optimizer_type_lists_each_optimizer_with_its_package():
    result = run_cli("explain", "optimizer_type")
    assert result.returncode == 0
    for name in opt.sd_optimizer_names():
        target = opt.resolve_optimizer(name)
        assert f"{name}: {target.target} ({target.package} {target.version})" in result.stdout


def test_every_key_of_an_sd_scripts_optimizer_or_scheduler_is_documented():
    assert set(OPTIMIZER_DOCS) == set(opt.sd_optimizer_names())
    keys = {k for n in opt.sd_optimizer_names() for k in opt.resolve_optimizer(n).accepted()}
    assert keys <= set(OPTIMIZER_ARG_DOCS), keys - set(OPTIMIZER_ARG_DOCS)
    sched = {k for n in opt.table()["schedulers"] for k in opt.resolve_scheduler(n, None).accepted()}
    assert sched <= set(SCHEDULER_ARG_DOCS), sched - set(SCHEDULER_ARG_DOCS)
