"""Flag documentation has one home per fact, and every text `explain` and `schema` show comes from it.

Typed config keys are documented by their field (`flag(description, advice=...)` in loratrain/schema/);
the pass-through `[extra]` flags by the one table `loratrain.sdscripts.flag_docs.FLAG_DOCS`; the keys of
`optimizer_args` / `lr_scheduler_args` (which depend on the optimizer, so no field can hold them) and each
optimizer's one-line summary by `loratrain.sdscripts.optimizer_docs`. The flag table in
src/loratrain/data/sd_scripts_args.json is the argparse dump of sdxl_train_network.py at sd-scripts 48d368fa.
"""

import ast
import functools
import importlib.util
import json
import re
from pathlib import Path

import pytest
from helpers import FLAG_TABLE as ARGS_JSON

from loratrain.explain import build_index
from loratrain.schema.accelerate import AccelerateArgs
from loratrain.schema.common import field_extra
from loratrain.schema.network_args import LoraArgs, LycorisArgs
from loratrain.schema.root import SCRIPT_GROUPS, ExtraArgs, TrainConfig
from loratrain.sdscripts import flag_docs, optimizer_docs
from loratrain.sdscripts import optimizers as opt

MAX_LEN = 450
ENTRIES = sorted(flag_docs.FLAG_DOCS.items())


def _arguments() -> list[dict]:
    return json.loads(ARGS_JSON.read_text(encoding="utf-8"))["arguments"]


def _source(key: str):
    """(model, field name) that owns the text of an explain key."""
    table, _, name = key.rpartition(".")
    if table == "network.network_args":
        return (LycorisArgs if name in LycorisArgs.model_fields else LoraArgs), name
    if table == "accelerate":
        return AccelerateArgs, name
    if table == "extra":
        return ExtraArgs, name
    if table == "":
        return TrainConfig, name
    return SCRIPT_GROUPS[table], name


@functools.lru_cache(maxsize=1)
def _index():
    return build_index()


def shown(dest: str) -> str:
    """What `explain DEST` shows as description and advice."""
    entry = next(e for k, e in _index().items() if e.name == dest and "network_args." not in k)
    return f"{entry.description} {entry.advice}"


def test_every_pass_through_flag_has_one_text_and_no_typed_flag_has_one():
    assert set(flag_docs.FLAG_DOCS) == set(ExtraArgs.model_fields)
    typed = {name for group in SCRIPT_GROUPS.values() for name in group.model_fields}
    assert typed & set(flag_docs.FLAG_DOCS) == set()
    assert all(text.strip() for text in flag_docs.FLAG_DOCS.values())


ARG_DOCS = {
    "optimizer.optimizer_args": optimizer_docs.OPTIMIZER_ARG_DOCS,
    "optimizer.lr_scheduler_args": optimizer_docs.SCHEDULER_ARG_DOCS,
}


def _check_optimizer_arg_texts(index) -> int:
    """optimizer_args / lr_scheduler_args keys show optimizer_docs' text (or its UNDOCUMENTED line), no advice."""
    checked = 0
    for key, entry in index.items():
        table, _, name = key.rpartition(".")
        if table not in ARG_DOCS:
            continue
        docs = ARG_DOCS[table]
        if name in docs:
            assert entry.description == docs[name], key
        else:
            owner = entry.notes[0].split(":", 1)[0]  # the first optimizer/scheduler that takes the key
            target = (
                opt.resolve_optimizer(owner) if table.endswith("optimizer_args") else opt.resolve_scheduler(owner, None)
            )
            assert entry.description == optimizer_docs.UNDOCUMENTED.format(target=target.target), key
        assert entry.advice == "", key
        checked += 1
    return checked


def test_every_text_explain_shows_is_its_fields_text():
    index = build_index()
    assert _check_optimizer_arg_texts(index) > 30
    for name in opt.sd_optimizer_names():  # optimizer_type's notes: one summary per optimizer, from optimizer_docs
        assert any(
            note.endswith(f"). {optimizer_docs.OPTIMIZER_DOCS[name]}") and note.startswith(f"{name}: ")
            for note in index["optimizer.optimizer_type"].notes
        ), name
    for key, entry in index.items():
        if key.rpartition(".")[0] in ARG_DOCS:
            continue
        if key == "network.network_args":
            model, name = TrainConfig.model_fields["network"].annotation, "network_args"
        else:
            model, name = _source(key)
        info = model.model_fields[name]
        assert entry.description == info.description, key
        assert entry.advice == field_extra(model, name).get("advice", ""), key
        if model is ExtraArgs:
            assert entry.description == flag_docs.FLAG_DOCS[name], key
    # A LoRA-only text for a key LyCORIS also has is shown as a note, read from LoraArgs.
    notes = " ".join(index["network.network_args.conv_dim"].notes)
    assert LoraArgs.model_fields["conv_dim"].description in notes


@pytest.mark.parametrize("optimizer_type", ["SGD", "RMSprop", "Prodigy", "bitsandbytes.optim.LAMB"])
def test_explain_for_one_optimizer_shows_only_optimizer_docs_texts(optimizer_type):
    # `explain --optimizer X` narrows the keys to X's constructor; a torch.optim or dotted class may take keys
    # loratrain has no text for, and then the one UNDOCUMENTED line of optimizer_docs is shown, never another.
    index = build_index(optimizer_type)
    assert _check_optimizer_arg_texts(index) > 0


def test_every_description_in_the_json_schema_is_its_fields_text():
    schema = TrainConfig.model_json_schema()
    defs = schema["$defs"]
    by_title = {d.get("title"): d for d in defs.values()}
    models = [*SCRIPT_GROUPS.values(), AccelerateArgs, LycorisArgs, LoraArgs, ExtraArgs]
    checked = 0
    for model in models:
        props = by_title[model.__name__]["properties"]
        for name, info in model.model_fields.items():
            if name == "kind" or name not in props:
                continue
            assert props[name].get("description") == info.description, f"{model.__name__}.{name}"
            checked += 1
    assert checked > 200


@pytest.mark.parametrize("key,text", ENTRIES, ids=[k for k, _ in ENTRIES])
def test_each_entry_is_a_short_finished_sentence(key, text):
    assert text.strip() == text, "no stray whitespace at either end"
    assert text.endswith("."), "entries end with a period"
    assert len(text) <= MAX_LEN, f"{len(text)} characters; keep it to three sentences"
    assert "  " not in text, "a doubled space usually means two string pieces were joined badly"


def test_no_entry_is_a_copy_of_another():
    seen: dict[str, str] = {}
    for key, text in ENTRIES:
        normalized = " ".join(text.lower().split())
        assert normalized not in seen, f"{key} repeats {seen[normalized]}"
        seen[normalized] = key


def test_defaults_named_in_descriptions_match_sd_scripts():
    # "default 64", "the default is .caption": whatever follows must be sd-scripts' real default.
    # Flags whose argparse default is None are skipped: their effective default lives in code.
    pattern = re.compile(r"(?<![-\w])default (?:is )?(?!an? |is )(?:'([^']*)'|([^\s,;)]+))", re.IGNORECASE)
    checked = 0
    for arg in _arguments():
        if arg["dest"] not in flag_docs.FLAG_DOCS and not any(
            arg["dest"] in g.model_fields for g in SCRIPT_GROUPS.values()
        ):
            continue
        text = shown(arg["dest"])
        if arg["default"] is None or isinstance(arg["default"], bool):
            continue
        for match in pattern.finditer(text):
            said = match.group(1) if match.group(1) is not None else match.group(2).rstrip(".")
            said = {"comma": ","}.get(said, said)
            real = arg["default"]
            try:
                assert float(said) == float(real), arg["dest"]
            except ValueError:
                assert said == str(real), f"{arg['dest']}: text says {said!r}, sd-scripts has {real!r}"
            checked += 1
    assert checked >= 20


def test_documented_choices_are_the_parser_choices():
    # A description that lists choices must list exactly the accepted ones (None aside).
    for dest in ("console_log_level", "loss_type", "huber_schedule", "resize_interpolation"):
        arg = next(a for a in _arguments() if a["dest"] == dest)
        for choice in arg["choices"]:
            if choice is not None:
                assert str(choice) in flag_docs.FLAG_DOCS[dest], f"{dest} omits choice {choice}"


@pytest.mark.parametrize(
    "dest,must_mention",
    [
        ("cache_text_encoder_outputs", ["cannot be trained"]),
        ("dataset_repeats", ["folder mode", "in_json"]),
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
        ("min_bucket_reso", ["256"]),
        ("max_bucket_reso", ["resolution"]),
    ],
)
def test_descriptions_warn_about_the_traps_users_hit(dest, must_mention):
    text = shown(dest)
    for needle in must_mention:
        assert needle in text, f"{dest} should mention {needle!r}"


def test_guide_advice_carries_the_guides_recommended_values():
    advice = {key.rsplit(".", 1)[-1]: e.advice for key, e in _index().items() if "network_args" not in key}
    assert "1e-4" in advice["learning_rate"] and "AdamW" in advice["learning_rate"]
    assert "6" in advice["multires_noise_iterations"] and "10" in advice["multires_noise_iterations"]
    assert "0.1" in advice["multires_noise_discount"]
    assert "euler_a" in advice["sample_sampler"] and "k_dpm_2" in advice["sample_sampler"]
    assert "1024" in advice["resolution"]
    assert "NaN" in advice["no_half_vae"]
    # Where the guide's advice is wrong for sd-scripts, the advice says so.
    assert "folder mode" in advice["dataset_repeats"]
    assert "logging_dir" in advice["log_prefix"]
    assert "23" in _index()["network.network_args.block_dims"].advice


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
    # Deprecated spellings and other model families' keys are left out on purpose (a typo check names them).
    left_out = {
        "use_cp",
        "use_conv_cp",
        "disable_conv_cp",
        "constrain",
        "train_t5xxl",
        "train_llm_adapter",
        "warn_on_unmatched",
        "weight_decompose",
    }
    missing = sorted(keys - set(LycorisArgs.model_fields) - left_out)
    assert missing == [], f"lycoris network_args keys without a typed, documented field: {missing}"


def test_guide_keys_that_lycoris_ignores_are_documented_as_ignored():
    for key in ("block_dims", "block_alphas", "rank_dropout_scale", "use_reentrant"):
        text = (LycorisArgs.model_fields[key].description or "").lower()
        assert "ignore" in text or "not read" in text, key


def test_every_network_arg_of_sd_scripts_lora_is_documented():
    expected = {
        "conv_dim",
        "conv_alpha",
        "block_dims",
        "block_alphas",
        "conv_block_dims",
        "conv_block_alphas",
        "down_lr_weight",
        "mid_lr_weight",
        "up_lr_weight",
        "block_lr_zero_threshold",
        "rank_dropout",
        "module_dropout",
        "loraplus_lr_ratio",
        "loraplus_unet_lr_ratio",
        "loraplus_text_encoder_lr_ratio",
    }
    assert expected <= set(LoraArgs.model_fields)


def test_accelerate_table_names_real_accelerate_launch_options():
    launch = pytest.importorskip("accelerate.commands.launch")
    parser = launch.launch_command_parser()
    known = {action.dest for action in parser._actions}
    wanted = {
        "num_processes",
        "num_machines",
        "machine_rank",
        "gpu_ids",
        "num_cpu_threads_per_process",
        "main_process_ip",
        "main_process_port",
        "mixed_precision",
        "dynamo_backend",
        "multi_gpu",
    }
    assert set(AccelerateArgs.model_fields) == wanted
    assert wanted <= known


def test_module_is_plain_data_that_imports_nothing_heavy():
    tree = ast.parse(Path(flag_docs.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"typing", "__future__"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in flag_docs.FLAG_DOCS.items())
