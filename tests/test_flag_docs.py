"""The documentation data behind `loratrain explain` covers every sd-scripts flag and stays consistent.

The flag table in src/loratrain/data/sd_scripts_args.json is the argparse dump of sdxl_train_network.py at
sd-scripts 48d368fa (names, types, defaults; no help texts).
"""

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest

from loratrain.sdscripts import flag_docs

ARGS_JSON = Path(__file__).parent.parent / "src" / "loratrain" / "data" / "sd_scripts_args.json"
MAX_LEN = 450

ALL_TABLES = {
    "FLAG_DOCS": flag_docs.FLAG_DOCS,
    "GUIDE_ADVICE": flag_docs.GUIDE_ADVICE,
    "LYCORIS_ARG_DOCS": flag_docs.LYCORIS_ARG_DOCS,
    "LORA_ARG_DOCS": flag_docs.LORA_ARG_DOCS,
    "NETWORK_ARGS_GUIDE_ADVICE": flag_docs.NETWORK_ARGS_GUIDE_ADVICE,
    "ACCELERATE_DOCS": flag_docs.ACCELERATE_DOCS,
    "ACCELERATE_GUIDE_ADVICE": flag_docs.ACCELERATE_GUIDE_ADVICE,
}
ALL_ENTRIES = [(table, key, text) for table, docs in ALL_TABLES.items() for key, text in docs.items()]


def _arguments() -> list[dict]:
    return json.loads(ARGS_JSON.read_text(encoding="utf-8"))["arguments"]


def _dests() -> list[str]:
    return [a["dest"] for a in _arguments() if a["dest"] != "help"]


def test_every_sdxl_train_network_flag_has_a_description_and_nothing_else_does():
    dests = _dests()
    assert len(dests) == 196
    missing = sorted(set(dests) - set(flag_docs.FLAG_DOCS))
    unknown = sorted(set(flag_docs.FLAG_DOCS) - set(dests))
    assert missing == [], f"flags without a description: {missing}"
    assert unknown == [], f"descriptions for flags sd-scripts does not have: {unknown}"
    empty = [d for d in dests if not flag_docs.FLAG_DOCS[d].strip()]
    assert empty == []


def test_guide_advice_only_names_real_flags():
    assert set(flag_docs.GUIDE_ADVICE) <= set(_dests())


@pytest.mark.parametrize("table,key,text", ALL_ENTRIES, ids=[f"{t}.{k}" for t, k, _ in ALL_ENTRIES])
def test_each_entry_is_a_short_finished_sentence(table, key, text):
    assert text.strip() == text, "no stray whitespace at either end"
    assert text.endswith("."), "entries end with a period"
    assert len(text) <= MAX_LEN, f"{len(text)} characters; keep it to three sentences"
    assert "  " not in text, "a doubled space usually means two string pieces were joined badly"


def test_no_entry_is_a_copy_of_another():
    seen: dict[str, str] = {}
    for table, key, text in ALL_ENTRIES:
        normalized = " ".join(text.lower().split())
        assert normalized not in seen, f"{table}.{key} repeats {seen[normalized]}"
        seen[normalized] = f"{table}.{key}"


def test_defaults_named_in_descriptions_match_sd_scripts():
    # "default 64", "the default is .caption": whatever follows must be sd-scripts' real default.
    # Flags whose argparse default is None are skipped: their effective default lives in code.
    pattern = re.compile(r"(?<![-\w])default (?:is )?(?:'([^']*)'|([^\s,;)]+))", re.IGNORECASE)
    checked = 0
    for arg in _arguments():
        text = flag_docs.FLAG_DOCS.get(arg["dest"], "")
        if arg["default"] is None or isinstance(arg["default"], bool):
            continue
        for match in pattern.finditer(text):
            said = match.group(1) if match.group(1) is not None else match.group(2).rstrip(".")
            real = arg["default"]
            try:
                assert float(said) == float(real), arg["dest"]
            except ValueError:
                assert said == str(real), f"{arg['dest']}: text says {said!r}, sd-scripts has {real!r}"
            checked += 1
    assert checked >= 20


def test_documented_choices_are_the_parser_choices():
    # A description that lists choices must list exactly the accepted ones (None aside).
    for dest in ("console_log_level", "mixed_precision", "loss_type", "huber_schedule", "resize_interpolation",
                 "save_precision", "save_model_as", "log_with"):
        arg = next(a for a in _arguments() if a["dest"] == dest)
        for choice in arg["choices"]:
            if choice is not None:
                assert str(choice) in flag_docs.FLAG_DOCS[dest], f"{dest} omits choice {choice}"


@pytest.mark.parametrize(
    "dest,must_mention",
    [
        ("cache_text_encoder_outputs", ["network_train_unet_only", "shuffle_caption", "dropout", "warmup"]),
        ("dataset_repeats", ["folder mode", "does nothing"]),
        ("log_prefix", ["logging_dir"]),
        ("sample_every_n_steps", ["sample_every_n_epochs"]),
        ("max_train_steps", ["max_train_epochs"]),
        ("cache_latents", ["color_aug", "random_crop"]),
        ("bucket_reso_steps", ["32"]),
        ("adaptive_noise_scale", ["noise_offset"]),
        ("multires_noise_discount", ["multires_noise_iterations"]),
        ("full_fp16", ["mixed_precision fp16"]),
        ("full_bf16", ["mixed_precision bf16"]),
        ("lr_warmup_steps", ["constant"]),
        ("v2", ["SDXL"]),
        ("clip_skip", ["warning"]),
        ("text_encoder_lr", ["first"]),
        ("conditioning_data_dir", ["never reads"]),
        ("learning_rate", ["2e-6", "1e-4"]),
        ("save_precision", ["float"]),
        ("min_bucket_reso", ["bucket_no_upscale"]),
        ("max_bucket_reso", ["bucket_no_upscale"]),
    ],
)
def test_descriptions_warn_about_the_traps_users_hit(dest, must_mention):
    text = flag_docs.FLAG_DOCS[dest]
    for needle in must_mention:
        assert needle in text, f"{dest} should mention {needle!r}"


def test_guide_advice_carries_the_guides_recommended_values():
    advice = flag_docs.GUIDE_ADVICE
    assert "1e-4" in advice["learning_rate"] and "AdamW" in advice["learning_rate"]
    assert "6" in advice["multires_noise_iterations"] and "10" in advice["multires_noise_iterations"]
    assert "0.1" in advice["multires_noise_discount"]
    assert "euler_a" in advice["sample_sampler"] and "k_dpm_2" in advice["sample_sampler"]
    assert "1024" in advice["resolution"]
    assert "NaN" in advice["no_half_vae"]
    # Where the guide's advice is wrong for sd-scripts, the advice says so.
    assert "folder mode" in advice["dataset_repeats"]
    assert "logging_dir" in advice["log_prefix"]
    assert "23" in flag_docs.NETWORK_ARGS_GUIDE_ADVICE["block_dims"]


def _lycoris_create_network_keys() -> set[str]:
    """Keys lycoris.kohya.create_network looks up, read from the installed source without importing it."""
    spec = importlib.util.find_spec("lycoris")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lycoris_lora is not installed")
    source = Path(list(spec.submodule_search_locations)[0], "kohya.py").read_text(encoding="utf-8")
    create = next(
        node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef) and node.name == "create_network"
    )
    keys = {
        call.args[0].value
        for call in ast.walk(create)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "get"
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "kwargs"
        and call.args
        and isinstance(call.args[0], ast.Constant)
    }
    keys |= {a.arg for a in create.args.kwonlyargs + create.args.args[6:]}  # named extras such as warn_on_unmatched
    return keys


def test_every_network_arg_lycoris_reads_is_documented():
    keys = _lycoris_create_network_keys()
    assert "algo" in keys and "preset" in keys  # the scan found the real function
    # weight_decompose is looked up by a nested helper but never reaches the modules from network_args.
    missing = sorted(keys - set(flag_docs.LYCORIS_ARG_DOCS))
    assert missing == [], f"undocumented lycoris network_args keys: {missing}"


def test_guide_keys_that_lycoris_ignores_are_documented_as_ignored():
    for key in ("block_dims", "block_alphas", "rank_dropout_scale", "use_reentrant"):
        text = flag_docs.LYCORIS_ARG_DOCS[key].lower()
        assert "ignore" in text or "not read" in text, key


def test_every_network_arg_of_sd_scripts_lora_is_documented():
    expected = {
        "conv_dim", "conv_alpha", "block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas",
        "down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_lr_zero_threshold", "rank_dropout",
        "module_dropout", "loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio",
    }
    assert expected <= set(flag_docs.LORA_ARG_DOCS)
    assert "23" in flag_docs.LORA_ARG_DOCS["block_dims"]


def test_accelerate_docs_name_real_accelerate_launch_options():
    launch = pytest.importorskip("accelerate.commands.launch")
    parser = launch.launch_command_parser()
    known = {action.dest for action in parser._actions}
    wanted = {
        "num_processes", "num_machines", "machine_rank", "gpu_ids", "num_cpu_threads_per_process",
        "main_process_ip", "main_process_port", "mixed_precision", "dynamo_backend", "multi_gpu",
    }
    assert set(flag_docs.ACCELERATE_DOCS) == wanted
    assert wanted <= known
    assert set(flag_docs.ACCELERATE_GUIDE_ADVICE) <= wanted


def test_module_is_plain_data_that_imports_nothing_heavy():
    tree = ast.parse(Path(flag_docs.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"typing", "__future__"}
    for table in ALL_TABLES.values():
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in table.items())
