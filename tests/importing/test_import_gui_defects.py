"""issue 11: what the kohya_ss GUI really runs for a JSON, and shell variables in pasted commands.

Each defect is checked on a real preset from tests/data/kohya_ss (see its README) or on a small JSON that
differs from one in the one key that matters.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, tomllib
from hypothesis import given, settings
from hypothesis import strategies as st

from loratrain.config.loader import validate
from loratrain.errors import ConfigError
from loratrain.importers import import_text
from loratrain.importers.finish import finish

DATA = Path(__file__).resolve().parents[1] / "data" / "kohya_ss"
LOKR = DATA / "presets/lora/SDXL - LoKR v1.0.json"
STANDARD = DATA / "test/config/SDXL-Standard-Adafactor.json"


def imported(data: dict, source: str = "gui.json"):
    result = finish(import_text(json.dumps(data), source, "kohya-json"))
    return result.doc, result.text


def preset(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def refusal(data) -> str:
    with pytest.raises(ConfigError) as caught:
        finish(import_text(json.dumps(data), "gui.json", "kohya-json"))
    return " ".join(p.render() for p in caught.value.problems)


# 1. no "sdxl": the GUI runs train_network.py
def test_a_gui_json_without_sdxl_is_refused_because_the_gui_would_run_train_network(tmp_path):
    data = preset(LOKR)
    del data["sdxl"]
    source = tmp_path / "no-sdxl.json"
    source.write_text(json.dumps(data))
    out = tmp_path / "run.toml"
    result = run_cli("import", str(source), "-o", str(out))
    assert result.returncode == 2
    assert "has no 'sdxl' key (the GUI's SDXL checkbox starts off), so the GUI runs train_network.py" in result.stderr
    assert not out.exists() and "Traceback" not in result.stderr


def test_sdxl_with_a_flux_lora_type_is_refused():
    assert "another model family" in refusal({**preset(STANDARD), "LoRA_type": "Flux1"})


# 2. other tabs and empty files
@pytest.mark.parametrize(
    "name, reason",
    [
        ("test/config/dreambooth-Prodigy-SDXL.json", "Dreambooth config (GUI training settings without LoRA_type"),
        ("presets/finetune/SDXL - AI_Now PagedAdamW8bit v1.0.json", "Finetuning config"),
        ("test/config/TI-AdamW8bit-SDXL.json", "Textual Inversion config"),
    ],
)
def test_other_gui_tabs_are_refused_naming_the_tab_and_its_script(name, reason):
    text = refusal(preset(DATA / name))
    assert reason in text and "sdxl_train" in text


def test_an_empty_json_is_refused():
    assert "the JSON object is empty" in refusal({})


# 3. LoKr use_cp: LyCORIS 4.1.3 reads it as use_tucker
def test_lokr_use_cp_imports_as_the_tucker_lycoris_really_used():
    doc, text = imported(preset(LOKR))
    args = doc["network"]["network_args"]
    assert preset(LOKR)["use_cp"] is True and preset(LOKR).get("use_tucker", False) is False
    assert args["use_tucker"] is True and "use_cp" not in args
    assert "LyCORIS 4.1.3 reads use_cp as use_tucker" in text


def test_lokr_decompose_both_false_is_imported_on_as_the_gui_run_had_it():
    doc, text = imported(preset(LOKR))
    assert doc["network"]["network_args"]["decompose_both"] is True
    assert "reads as on (any text is on)" in text


# 4. a missing key takes the GUI's field default, not sd-scripts'
def test_missing_keys_take_the_gui_field_defaults():
    doc, text = imported({"LoRA_type": "Standard", "sdxl": True, "max_resolution": "1024,1024"})
    assert doc["buckets"]["max_bucket_reso"] == 2048  # sd-scripts' default is 1024
    assert doc["buckets"]["enable_bucket"] is True and doc["buckets"]["bucket_no_upscale"] is True
    assert doc["dataset"]["caption_extension"] == ".txt"  # sd-scripts' default is .caption
    assert doc["dataset"]["cache_latents"] is True
    assert doc["training"]["xformers"] is True
    assert doc["optimizer"]["optimizer_type"] == "AdamW"  # the GUI fills a missing optimizer from use_8bit_adam
    assert doc["optimizer"]["lr_scheduler"] == "cosine" and doc["optimizer"]["lr_warmup_steps"] == 0.1
    assert doc["optimizer"]["text_encoder_lr"] == [0.0001, 0.0001] and doc["optimizer"]["unet_lr"] == 0.0001
    assert doc["network"]["network_dim"] == 8
    assert "network_alpha" not in doc["network"]  # the GUI's 1 is sd-scripts' default too
    assert doc["precision"]["mixed_precision"] == "fp16" and doc["saving"]["save_precision"] == "fp16"
    assert "its field's default, 1600 steps" in text


# 5. lr_scheduler_num_cycles "" is 1 cycle
def test_empty_num_cycles_is_one_cycle_not_the_epoch_count():
    data = {**preset(STANDARD), "lr_scheduler": "cosine_with_restarts", "lr_scheduler_num_cycles": "", "epoch": 7}
    doc, text = imported(data)
    assert "lr_scheduler_num_cycles" not in doc["optimizer"]  # 1 == sd-scripts' default
    assert "the GUI reads that as 1 cycle" in text
    doc, _ = imported({**data, "lr_scheduler_num_cycles": "3"})
    assert doc["optimizer"]["lr_scheduler_num_cycles"] == 3


# 6. wandb_run_name
def test_logging_to_wandb_names_the_run_after_output_name():
    doc, text = imported({**preset(STANDARD), "log_with": "wandb", "output_name": "my_lora", "wandb_run_name": ""})
    assert doc["logging"]["wandb_run_name"] == "my_lora"
    doc, _ = imported({**preset(STANDARD), "log_with": "wandb", "wandb_run_name": "run7"})
    assert doc["logging"]["wandb_run_name"] == "run7"
    doc, _ = imported({**preset(STANDARD), "log_with": "", "output_name": "my_lora"})
    assert "wandb_run_name" not in doc.get("logging", {})


# Also: steps or epochs, said plainly
def test_without_max_train_steps_the_note_says_the_gui_passes_1600_steps():
    data = preset(LOKR)
    assert "max_train_steps" not in data
    _, text = imported(data)
    assert (
        "the JSON has no max_train_steps, so the GUI passes its field's default, 1600 steps; epoch = 20 is not used"
        in text
    )


def test_an_empty_max_train_steps_becomes_epochs_with_the_reason():
    doc, text = imported({**preset(STANDARD), "max_train_steps": "", "max_train_epochs": "", "epoch": 4})
    assert doc["training"]["max_train_epochs"] == 4
    assert "counts the images in train_data_dir" in text


# Also: one real error, not the unset paths on top of it
def test_a_preset_with_one_real_error_reports_only_that_error():
    text = refusal({**preset(LOKR), "bucket_reso_steps": 1})
    assert "bucket_reso_steps" in text
    assert "no base model" not in text and "no output folder" not in text


# issue 10 class 11: wrong-typed values are named, not skipped
@pytest.mark.parametrize(
    "key, value",
    [
        ("epoch", "twelve"),
        ("num_processes", "two"),
        ("network_dim", "big"),
        ("text_encoder_lr", [1]),
        ("gpu_ids", 0),
        ("multi_gpu", "yes"),
    ],
)
def test_a_wrong_typed_gui_value_is_an_error_naming_the_key(key, value):
    text = refusal({**preset(STANDARD), key: value})
    assert key in text


def test_every_set_value_that_is_not_carried_is_named():
    data = {
        **preset(STANDARD),
        "sd3_t5xxl": "/m/t5.safetensors",
        "my_own_key": 0,
        "lowvram": True,
        "stop_text_encoder_training": 20,
    }
    _, text = imported(data)
    header = text.split("\n\n")[0]
    for key in ("sd3_t5xxl", "my_own_key", "lowvram", "stop_text_encoder_training", "clip_skip"):
        assert f"#   {key}:" in header, key


# Also: a foreign format
def test_a_lora_easy_training_scripts_toml_is_refused_as_foreign(tmp_path):
    source = tmp_path / "lets.toml"
    source.write_text(
        '[general_args.args]\npretrained_model_name_or_path = "/m.safetensors"\n[network_args.args]\nnetwork_dim = 16\n'
    )
    result = run_cli("import", str(source))
    assert result.returncode == 2
    assert "not an sd-scripts config / kohya_ss JSON / command" in result.stderr


def test_a_json_of_something_else_is_refused_as_foreign():
    assert "not an sd-scripts config / kohya_ss JSON / command" in refusal({"img/1.jpg": {"caption": "a cat"}})


# 7. shell variables
def command(text: str, **env):
    return import_text(text, "cmd.sh", "command", env=env or None)


@pytest.mark.parametrize(
    "written, name",
    [
        ("$pretrainedModel", "$pretrainedModel"),
        ("${MODEL}", "${MODEL}"),
        ("%MODEL%", "%MODEL%"),
        ("$env:MODEL", "$env:MODEL"),
    ],
)
def test_a_shell_variable_is_reported_by_name(written, name):
    result = command(f"accelerate launch sdxl_train_network.py --pretrained_model_name_or_path {written}/m.safetensors")
    assert result.script_args["pretrained_model_name_or_path"] == f"{written}/m.safetensors"
    assert any(name in n.message and "the shell would have expanded" in n.message for n in result.notes)


def test_variables_are_replaced_from_the_values_given():
    result = command(
        "accelerate launch sdxl_train_network.py --output_dir ${OUT}/a --pretrained_model_name_or_path $MODEL",
        OUT="/out",
        MODEL="/m.safetensors",
    )
    assert result.script_args["output_dir"] == "/out/a"
    assert result.script_args["pretrained_model_name_or_path"] == "/m.safetensors"
    assert not any("expanded" in n.message for n in result.notes)


def test_a_command_substitution_stays_one_word_and_is_reported():
    result = command("accelerate launch sdxl_train_network.py --output_dir=$(pwd)/out --train_data_dir $(pwd)/data")
    assert result.script_args["output_dir"] == "$(pwd)/out"
    assert result.script_args["train_data_dir"] == "$(pwd)/data"
    assert sum("command substitution ($(...))" in n.message for n in result.notes) == 2


def test_single_quotes_keep_a_dollar_literal_and_unreported():
    result = command("accelerate launch sdxl_train_network.py --output_name 'cost$5'")
    assert result.script_args["output_name"] == "cost$5"
    assert not any("expanded" in n.message for n in result.notes)


def test_the_cli_takes_env_values_and_the_environment(tmp_path):
    source = tmp_path / "cmd.sh"
    source.write_text("accelerate launch sdxl_train_network.py --output_dir $OUT --network_dim 8\n")
    result = run_cli("import", str(source), "--env", "OUT=/from/flag")
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["saving"]["output_dir"] == "/from/flag"
    result = run_cli("import", str(source), "--expand-env", env={"OUT": "/from/env"})
    assert tomllib.loads(result.stdout)["saving"]["output_dir"] == "/from/env"
    result = run_cli("import", str(source), "--env", "OUT")
    assert result.returncode == 2 and "is not NAME=VALUE" in result.stderr


@settings(max_examples=60, deadline=None)
@given(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), st.from_regex(r"/[a-z0-9/._-]{1,20}", fullmatch=True)
)
def test_any_variable_given_a_value_is_replaced_in_every_form(name, value):
    for form in (f"${name}", f"${{{name}}}", f"%{name}%", f"$env:{name}"):
        result = command(f"accelerate launch sdxl_train_network.py --output_dir {form}", **{name: value})
        assert result.script_args["output_dir"] == value, form


# the scheduler warning, as sd-scripts' get_scheduler_fix reads num_cycles
@pytest.mark.parametrize(
    "scheduler, warned",
    [
        ("cosine_with_restarts", False),
        ("cosine_with_min_lr", False),
        ("warmup_stable_decay", False),
        ("cosine", True),
        ("linear", True),
    ],
)
def test_num_cycles_warning_matches_the_schedulers_that_read_it(scheduler, warned):
    doc = {
        "model": {"pretrained_model_name_or_path": "/m"},
        "dataset": {"train_data_dir": "/d", "resolution": "1024,1024"},
        "network": {"network_module": "networks.lora"},
        "saving": {"output_dir": "/o"},
        "optimizer": {"lr_scheduler": scheduler, "lr_scheduler_num_cycles": 3},
    }
    if scheduler == "warmup_stable_decay":
        doc["extra"] = {"lr_decay_steps": 0.2}
    warnings = validate(doc, "c.toml").warnings
    assert any(w.key == "optimizer.lr_scheduler_num_cycles" for w in warnings) is warned
