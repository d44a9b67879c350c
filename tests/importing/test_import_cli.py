"""`loratrain import` through the real CLI: every source kind, every class of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import GUIDE_COMMAND, run_cli, tomllib

DATA = Path(__file__).parent / "data"


def imported(*args: str, stdin: str | None = None) -> dict:
    result = run_cli("import", *args, input=stdin)
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout)


def test_the_guides_full_command_lands_every_flag_in_its_table():
    config = imported(str(GUIDE_COMMAND))
    assert config["model"] == {"lowram": True, "pretrained_model_name_or_path": "/ponydiffusers/"}
    assert config["dataset"]["train_data_dir"] == "/training_dir"
    assert config["dataset"]["resolution"] in ("1024,1024", [1024, 1024])
    assert config["dataset"]["dataset_repeats"] == 0
    assert config["buckets"] == {
        "enable_bucket": True,
        "min_bucket_reso": 256,
        "max_bucket_reso": 1024,
        "bucket_reso_steps": 32,
    }
    assert config["network"]["network_module"] == "lycoris.kohya"
    assert config["network"]["network_dim"] == 8 and config["network"]["network_alpha"] == 4
    assert config["optimizer"]["optimizer_type"] == "AdamW" and config["optimizer"]["text_encoder_lr"] == 0.0001
    assert config["training"]["max_train_steps"] == 400 and config["training"]["sdpa"] is True
    assert config["noise"] == {"multires_noise_iterations": 10, "multires_noise_discount": 0.1}
    assert config["sampling"]["sample_sampler"] == "euler_a"
    assert config["saving"]["output_name"] == "yifftoolkit"
    assert config["precision"] == {"no_half_vae": True, "mixed_precision": "fp16"}
    assert config["logging"] == {"log_prefix": "xl-locon"}
    assert config["accelerate"] == {"num_cpu_threads_per_process": 2}
    leaves = sum(len(t) - isinstance(t.get("network_args"), dict) for t in config.values() if isinstance(t, dict))
    assert leaves == 45 - 1 + 1  # 45 script flags (network_args counted as its table) + 1 accelerate option


def test_the_guides_ten_network_args_become_typed_keys():
    args = imported(str(GUIDE_COMMAND))["network"]["network_args"]
    assert args == {
        "preset": "full",
        "conv_dim": 256,
        "conv_alpha": 4,
        "use_tucker": False,
        "use_scalar": False,
        "rank_dropout_scale": False,
        "algo": "locon",
        "train_norm": False,
        "block_dims": [8] * 25,
        "block_alphas": [0.0625] * 25,
    }


def test_the_output_names_its_source_in_a_header_comment():
    result = run_cli("import", str(GUIDE_COMMAND))
    assert result.stdout.startswith("# Imported by `loratrain import` from the shell command")
    assert str(GUIDE_COMMAND) in result.stdout.splitlines()[0]


def test_a_command_on_stdin_with_several_network_args_and_a_prefix_reports_the_expansion():
    text = "python sdxl_train_network.py --network_args 'algo=loha' 'conv_dim=4' --network_di 16 --sdpa\n"
    result = run_cli("import", "-", input=text)
    assert result.returncode == 0, result.stderr
    config = tomllib.loads(result.stdout)
    assert config["network"]["network_args"] == {"algo": "loha", "conv_dim": 4}
    assert config["network"]["network_dim"] == 16
    assert "--network_di" in result.stderr and "--network_dim" in result.stderr
    assert "without accelerate" in result.stderr


def test_a_script_folder_becomes_sd_scripts_and_an_interpreter_path_becomes_python():
    config = imported("-", stdin="/env/bin/python /opt/sd-scripts/sdxl_train_network.py --sdpa")
    assert config["sd_scripts"] == "/opt/sd-scripts" and config["python"] == "/env/bin/python"


def test_write_with_o_and_refuse_to_overwrite_without_force(tmp_path):
    out = tmp_path / "run.toml"
    first = run_cli("import", str(GUIDE_COMMAND), "-o", str(out))
    assert first.returncode == 0 and first.stdout == ""
    out.write_text("# mine\n")
    again = run_cli("import", str(GUIDE_COMMAND), "-o", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert out.read_text() == "# mine\n"
    forced = run_cli("import", str(GUIDE_COMMAND), "-o", str(out), "--force")
    assert forced.returncode == 0 and tomllib.loads(out.read_text())["saving"]["output_name"] == "yifftoolkit"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("unknown.sh", "accelerate launch sdxl_train_network.py --netwrok_dim=8", "did you mean --network_dim?"),
        ("quote.sh", 'accelerate launch sdxl_train_network.py --output_name="open\n', "never closed"),
        ("missing.sh", "accelerate launch sdxl_train_network.py --seed --sdpa", "--seed needs a value"),
        ("type.sh", "accelerate launch sdxl_train_network.py --network_dim=eight", "not a whole number"),
        ("bad.json", '{"LoRA_type": "Standard",', "not valid JSON"),
        ("bad.toml", "network_dim = \n", "not valid TOML"),
        ("types.toml", '[x]\nnetwork_dim = "8"\n', "write it without quotes"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message_and_writes_nothing(tmp_path, name, text, expected):
    source = tmp_path / name
    source.write_text(text)
    out = tmp_path / "out.toml"
    result = run_cli("import", str(source), "-o", str(out))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_an_sd_scripts_config_file_is_flattened_later_keys_win_and_unknown_keys_are_reported(tmp_path):
    source = tmp_path / "sd.toml"
    source.write_text(
        "pretrained_model_name_or_path = '/m.safetensors'\n"
        "[model_arguments]\nv_parameterization = false\n"
        "[additional_network_arguments]\nnetwork_dim = 16\nnetwork_args = ['algo=lokr', 'factor=8']\n"
        "network_module = 'lycoris.kohya'\n"
        "[training_arguments]\nnetwork_dim = 32\nlr_warmup_steps = 0.1\nlr_scheduler = 'cosine'\n"
        "leraning_rate = 1e-4\n"
    )
    result = run_cli("import", str(source))
    assert result.returncode == 0, result.stderr
    config = tomllib.loads(result.stdout)
    assert config["network"]["network_dim"] == 32
    assert config["network"]["network_args"] == {"algo": "lokr", "factor": 8}
    assert config["optimizer"]["lr_warmup_steps"] == 0.1
    assert "v_parameterization" not in result.stdout.split("\n\n", 1)[1]  # false = not set
    assert "leraning_rate" in result.stderr and "did you mean learning_rate" in result.stderr
    assert "#   leraning_rate:" in result.stdout  # listed as not imported in the header
    # what the source lacks is listed to fill in, not refused
    assert "# Still to fill in before `loratrain run`:" in result.stdout
    assert "#   saving.output_dir: no output folder is set" in result.stdout


def test_a_value_loratrain_knows_sd_scripts_would_reject_refuses_the_import(tmp_path):
    source = tmp_path / "sd.toml"
    source.write_text("lr_warmup_steps = 100\n")  # with the default constant scheduler sd-scripts stops
    out = tmp_path / "out.toml"
    result = run_cli("import", str(source), "-o", str(out))
    assert result.returncode == 2 and "optimizer.lr_warmup_steps" in result.stderr and not out.exists()


def test_a_dataset_config_is_recognised_and_refused(tmp_path):
    source = tmp_path / "dataset.toml"
    source.write_text("[general]\nshuffle_caption = true\n[[datasets]]\nresolution = 1024\n")
    result = run_cli("import", str(source))
    assert result.returncode == 2 and "dataset config" in result.stderr


def test_a_kohya_gui_config_maps_gui_keys_to_the_flags_the_gui_passes():
    result = run_cli("import", str(DATA / "kohya_gui_lokr.json"))
    assert result.returncode == 0, result.stderr
    config = tomllib.loads(result.stdout)
    assert config["network"]["network_module"] == "lycoris.kohya"
    args = config["network"]["network_args"]
    assert args["algo"] == "lokr" and args["preset"] == "attn-mlp" and args["factor"] == 8 and args["conv_dim"] == 8
    assert config["network"]["network_train_unet_only"] is True  # text_encoder_lr "0"
    assert config["optimizer"]["optimizer_type"] == "AdamW8bit"
    assert config["optimizer"]["optimizer_args"] == {"weight_decay": 0.01, "betas": [0.9, 0.99]}  # typed on import
    assert config["optimizer"]["lr_warmup_steps"] == 0.1  # lr_warmup = 10 (%)
    assert "lr_scheduler_num_cycles" not in config["optimizer"]  # "" -> 1 as the GUI reads it: sd-scripts' default
    assert config["dataset"]["resolution"] in ("1024,1024", [1024, 1024])
    assert config["training"]["max_train_epochs"] == 12 and config["training"]["seed"] == 4242
    assert config["training"]["sdpa"] is True
    assert "keep_tokens" not in config["dataset"]  # "0" is dropped, as the GUI drops it
    assert config["dataset"]["max_data_loader_n_workers"] == 0  # ...except this one, which it always passes
    assert "max_token_length" not in config["dataset"]  # 75 is the default and not a valid flag value
    assert config["noise"] == {"multires_noise_iterations": 6}  # the discount 0.3 is sd-scripts' default
    assert config["precision"]["no_half_vae"] is True
    assert config["accelerate"] == {
        "num_cpu_threads_per_process": 2
    }  # bf16 for accelerate: what loratrain passes anyway
    assert config["logging"]["log_prefix"] == "gui-"  # from additional_parameters
    assert "model_list" in result.stderr and "save_as_bool" in result.stderr  # reported, not silently dropped
    assert "#   noise_offset:" in result.stdout


def test_a_non_sdxl_gui_config_is_refused(tmp_path):
    data = json.loads((DATA / "kohya_gui_lokr.json").read_text())
    data["sdxl"] = False
    source = tmp_path / "sd15.json"
    source.write_text(json.dumps(data))
    result = run_cli("import", str(source))
    assert result.returncode == 2 and "the GUI runs train_network.py" in result.stderr


def test_accelerate_options_the_table_cannot_carry_are_errors():
    result = run_cli("import", "-", input="accelerate launch --use_fsdp sdxl_train_network.py --sdpa")
    assert result.returncode == 2 and "--use_fsdp" in result.stderr


def test_a_command_with_config_file_merges_the_file_and_the_command_line_wins(tmp_path):
    (tmp_path / "base.toml").write_text("[x]\nnetwork_dim = 16\nnetwork_alpha = 8\nseed = 1\n")
    (tmp_path / "run.sh").write_text("accelerate launch sdxl_train_network.py --config_file base --network_dim=32\n")
    result = run_cli("import", str(tmp_path / "run.sh"))
    assert result.returncode == 0, result.stderr
    config = tomllib.loads(result.stdout)
    assert config["network"]["network_dim"] == 32 and config["network"]["network_alpha"] == 8
    assert config["training"]["seed"] == 1
    assert "merged the values of --config_file" in result.stderr


def test_a_kohya_json_on_stdin_is_recognised():
    text = (DATA / "kohya_gui_lokr.json").read_text()
    config = imported("-", stdin=text)
    assert config["network"]["network_args"]["algo"] == "lokr"


def test_from_forces_the_source_kind(tmp_path):
    source = tmp_path / "settings.txt"
    source.write_text("network_dim = 4\nnetwork_module = 'networks.lora'\n")
    config = imported(str(source), "--from", "toml")
    assert config["network"] == {"network_module": "networks.lora", "network_dim": 4}
    bad = run_cli("import", str(source), "--from", "yaml")
    assert bad.returncode == 2 and "command, toml, kohya-json" in bad.stderr


def test_an_accelerate_option_written_after_the_script_gets_a_fix_saying_where_it_belongs():
    result = run_cli("import", "-", input="accelerate launch sdxl_train_network.py --num_cpu_threads_per_process=2")
    assert result.returncode == 2 and "move it before the script path" in result.stderr


def test_a_windows_command_gives_the_sd_scripts_folder_with_its_backslashes():
    text = "accelerate.exe launch C:\\sd-scripts\\sdxl_train_network.py ^\n  --output_dir=D:\\out ^\n  --sdpa\n"
    config = imported("-", stdin=text)
    assert config["sd_scripts"] == "C:\\sd-scripts" and config["saving"]["output_dir"] == "D:\\out"


def test_import_into_a_folder_that_does_not_exist_is_exit_2_naming_the_path(tmp_path):
    out = tmp_path / "no-such-folder" / "run.toml"
    result = run_cli("import", str(GUIDE_COMMAND), "-o", str(out))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(out) in result.stderr and "No such file or directory" in result.stderr


def test_import_leaves_no_temporary_file_beside_the_output(tmp_path):
    out = tmp_path / "run.toml"
    assert run_cli("import", str(GUIDE_COMMAND), "-o", str(out)).returncode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["run.toml"]


def test_a_config_file_that_is_not_utf8_is_exit_2_naming_it(tmp_path):
    (tmp_path / "base.toml").write_bytes(b'[x]\nnetwork_dim = 16\noutput_name = "caf\xe9"\n')  # Latin-1
    (tmp_path / "run.sh").write_text("accelerate launch sdxl_train_network.py --config_file base --network_dim=32\n")
    result = run_cli("import", str(tmp_path / "run.sh"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "--config_file base" in result.stderr and "UTF-8" in result.stderr


def test_a_mixed_case_lycoris_algo_is_imported_lower_cased_as_lycoris_reads_it(tmp_path):
    (tmp_path / "run.sh").write_text(
        "accelerate launch /opt/sd-scripts/sdxl_train_network.py --network_module=lycoris.kohya --network_dim=8 "
        "--network_args algo=LoKr factor=8\n"
    )
    result = run_cli("import", str(tmp_path / "run.sh"))
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["network"]["network_args"] == {"algo": "lokr", "factor": 8}
    assert 'algo = "lokr"' in result.stdout
