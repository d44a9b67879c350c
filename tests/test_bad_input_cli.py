"""Each class of bad input: one clear line naming file, line and key, exit 2, no traceback, nothing run."""

from __future__ import annotations

import pytest
from helpers import BASE, run_cli


def with_key(table: str, line: str) -> str:
    """BASE with `line` added to `table` (appending the table when BASE lacks it)."""
    header = f"[{table}]\n"
    if header in BASE:
        return BASE.replace(header, header + line + "\n")
    return BASE + header + line + "\n"


def _assert_clean_failure(result, *needles):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_toml_syntax_error_names_line_and_column(write_config):
    path = write_config('[model]\npretrained_model_name_or_path = "/m\n')
    _assert_clean_failure(run_cli("check", str(path)), f"{path}:2:", "TOML syntax error", "column")


def test_missing_config_file_is_reported(tmp_path):
    _assert_clean_failure(run_cli("check", str(tmp_path / "nope.toml")), "nope.toml", "file not found")


def test_unknown_key_gets_a_did_you_mean_with_its_line(write_config):
    path = write_config(BASE + "[training]\ngradient_checkpoint = true\n")
    line = BASE.count("\n") + 2
    _assert_clean_failure(
        run_cli("check", str(path)),
        f"{path}:{line}: training.gradient_checkpoint: unknown key",
        "did you mean 'gradient_checkpointing'",
    )


def test_key_in_the_wrong_table_says_where_it_belongs(write_config):
    path = write_config(BASE + "[training]\nlearning_rate = 0.0001\n")
    _assert_clean_failure(
        run_cli("check", str(path)), "training.learning_rate: unknown key", "learning_rate belongs in [optimizer]"
    )


def test_wrong_type_names_expected_and_given_types(write_config):
    path = write_config(BASE.replace("network_dim = 8", 'network_dim = "8"'))
    _assert_clean_failure(
        run_cli("check", str(path)), "network.network_dim: wrong type: expected an integer, got string '8'"
    )


def test_out_of_range_number_is_rejected(write_config):
    path = write_config(BASE + "[training]\ntrain_batch_size = 0\n")
    _assert_clean_failure(run_cli("check", str(path)), "training.train_batch_size", "greater than or equal to 1")


@pytest.mark.parametrize(
    "table, key, value, suggestion",
    [
        ("sampling", "sample_sampler", '"euler-a"', "euler_a"),
        ("optimizer", "lr_scheduler", '"cosine_restarts"', "cosine_with_restarts"),
        ("precision", "mixed_precision", '"fp32"', "allowed: no, fp16, bf16"),
        ("saving", "save_precision", '"fp32"', "allowed: float, fp16, bf16"),
        ("saving", "save_model_as", '"safetensor"', "safetensors"),
        ("logging", "log_with", '"tensorbord"', "tensorboard"),
    ],
)
def test_bad_choice_lists_allowed_values(write_config, table, key, value, suggestion):
    path = write_config(with_key(table, f"{key} = {value}"))
    _assert_clean_failure(run_cli("check", str(path)), f"{table}.{key}", "is not allowed", suggestion)


def test_unknown_optimizer_gets_a_suggestion(write_config):
    path = write_config(BASE + '[optimizer]\noptimizer_type = "AdamW8bt"\n')
    _assert_clean_failure(run_cli("check", str(path)), "optimizer.optimizer_type", "did you mean 'AdamW8bit'")


def test_lycoris_preset_and_algo_outside_the_known_lists(write_config):
    text = (
        BASE.replace('"networks.lora"', '"lycoris.kohya"') + '[network.network_args]\nalgo = "oft"\npreset = "Full"\n'
    )
    _assert_clean_failure(
        run_cli("check", str(write_config(text))),
        "network.network_args.algo",
        "network.network_args.preset",
        "unknown preset 'Full'",
    )


def test_cross_flag_rule_failure_names_the_fix(write_config):
    path = write_config(with_key("dataset", "cache_text_encoder_outputs = true\nshuffle_caption = true"))
    result = run_cli("check", str(path))
    _assert_clean_failure(result, "dataset.cache_text_encoder_outputs", "shuffle_caption", "network_train_unet_only")


def test_every_problem_is_reported_at_once(write_config):
    path = write_config(
        BASE.replace("network_dim = 8", "network_dim = -1")
        + '[sampling]\nsample_sampler = "nope"\n[extra]\nmin_snr_gama = 5\n'
    )
    result = run_cli("check", str(path))
    _assert_clean_failure(
        result, "network.network_dim", "sampling.sample_sampler", "extra.min_snr_gama", "3 problems found"
    )


def test_unknown_pass_through_flag_is_an_error(write_config):
    path = write_config(BASE + "[extra]\nmin_snr_gama = 5\n")
    _assert_clean_failure(run_cli("check", str(path)), "extra.min_snr_gama", "did you mean 'min_snr_gamma'")


def test_pass_through_flag_is_typed_by_the_flag_table(write_config):
    path = write_config(BASE + '[extra]\nmin_snr_gamma = "5"\nzero_stage = 4\n')
    _assert_clean_failure(run_cli("check", str(path)), "extra.min_snr_gamma: wrong type", "extra.zero_stage")


def test_strict_turns_warnings_into_errors(write_config):
    path = write_config(BASE + '[logging]\nlog_prefix = "run-"\n')
    relaxed = run_cli("check", "--no-preflight", str(path))
    assert relaxed.returncode == 0 and "warning" in relaxed.stderr and "log_prefix" in relaxed.stderr
    _assert_clean_failure(run_cli("check", "--no-preflight", "--strict", str(path)), "logging.log_prefix")


def test_set_override_is_typed_like_the_file(write_config):
    path = write_config(BASE)
    ok = run_cli("run", str(path), "--dry-run", "--set", "network.network_dim=32", "--set", "seed=7")
    assert ok.returncode == 0, ok.stderr
    assert "--network_dim=32" in ok.stdout and "--seed=7" in ok.stdout
    bad = run_cli("check", str(path), "--set", "network.network_dim=big")
    _assert_clean_failure(bad, "network.network_dim: wrong type")


def test_dry_run_with_errors_prints_no_command(write_config):
    path = write_config(BASE.replace("network_dim = 8", "network_dim = 0"))
    result = run_cli("run", str(path), "--dry-run")
    _assert_clean_failure(result, "network.network_dim")
    assert result.stdout == ""


def test_run_without_sd_scripts_launches_nothing(write_config):
    path = write_config(BASE)
    result = run_cli("run", str(path), env={"LORATRAIN_SD_SCRIPTS": ""})
    _assert_clean_failure(result, "sd-scripts folder is unknown")


def test_a_bad_set_value_is_blamed_on_set_not_on_the_files_line(write_config):
    path = write_config(BASE)
    result = run_cli("check", "--no-preflight", str(path), "--set", 'network.network_dim="8"')
    _assert_clean_failure(result, "--set: network.network_dim: wrong type")
    assert f"{path}:" not in result.stderr


def test_flags_that_replace_or_end_the_run_are_refused(write_config):
    path = write_config(with_key("extra", 'output_config = true\nconfig_file = "other.toml"'))
    result = run_cli("check", "--no-preflight", str(path))
    _assert_clean_failure(result, "extra.output_config: unknown key (not allowed here", "extra.config_file")


def test_check_json_reports_failure_on_stdout(write_config):
    import json

    path = write_config("[model]\n")
    result = run_cli("check", "--no-preflight", "--json", str(path))
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False and any("network.network_module" in e for e in data["errors"])
