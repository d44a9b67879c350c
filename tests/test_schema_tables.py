"""Each config table on its own: what it accepts, what it refuses, and the message a user gets."""

from __future__ import annotations

import pytest
from helpers import BASE, tomllib

from loratrain.config.loader import validate
from loratrain.errors import ConfigError
from loratrain.render import build_command
from loratrain.schema.accelerate import AccelerateArgs
from loratrain.schema.common import field_extra
from loratrain.schema.network_args import LoraArgs, LycorisArgs
from loratrain.schema.root import SCRIPT_GROUPS

TABLES = {**SCRIPT_GROUPS, "accelerate": AccelerateArgs}
# network_args, optimizer_args and lr_scheduler_args are tables themselves, typed by another key (below).
TYPED_TABLES = ("network_args", "optimizer_args", "lr_scheduler_args")
FIELDS = [
    (table, name)
    for table, model in TABLES.items()
    for name in model.model_fields
    if name not in (*TYPED_TABLES, "kind")
]
# Keys a rule asks for alongside an example (sd-scripts would fail without them).
COMPANIONS = {
    "lr_warmup_steps": {"optimizer": {"lr_scheduler": "constant_with_warmup"}},
    "sample_every_n_steps": {"sampling": {"sample_prompts": "/p.txt"}},
    "log_with": {"logging": {"logging_dir": "/logs"}},
}
EXAMPLES = [(t, n, field_extra(TABLES[t], n)["example"]) for t, n in FIELDS if "example" in field_extra(TABLES[t], n)]


def load(extra: dict) -> object:
    data = tomllib.loads(BASE)
    for table, values in extra.items():
        data.setdefault(table, {}).update(values)
    return validate(data, "t.toml").config


def problems(extra: dict) -> list:
    with pytest.raises(ConfigError) as exc:
        load(extra)
    return exc.value.problems


@pytest.mark.parametrize("table", list(TABLES) + ["extra"])
def test_a_misspelt_key_is_an_error_naming_it_with_a_suggestion(table):
    model = TABLES.get(table)
    name = next(iter(n for n in model.model_fields if n not in ("kind", "network_args"))) if model else "v2"
    [p] = problems({table: {name + "x": 1}})
    assert p.key == f"{table}.{name}x" and p.message == "unknown key"
    assert f"did you mean {name!r}?" == p.fix


@pytest.mark.parametrize(("table", "name"), FIELDS, ids=[f"{t}.{n}" for t, n in FIELDS])
def test_a_table_value_where_a_plain_value_belongs_is_a_type_error(table, name):
    found = problems({table: {name: {"x": 1}}})
    assert [p.key for p in found] == [f"{table}.{name}"]
    assert "expected" in found[0].message or "not allowed" in found[0].message or "must be" in found[0].message


@pytest.mark.parametrize(("table", "name", "example"), EXAMPLES, ids=[f"{t}.{n}" for t, n, _ in EXAMPLES])
def test_every_documented_example_is_accepted_and_reaches_the_command(table, name, example):
    extra = {table: {name: example}}
    for other, values in COMPANIONS.get(name, {}).items():
        extra.setdefault(other, {}).update(values)
    if table == "accelerate" and name in ("num_machines", "machine_rank") and example != 1:
        extra[table].update(main_process_ip="10.0.0.1", main_process_port=29500)
    cfg = load(extra)
    assert getattr(getattr(cfg, table), name) is not None
    argv = build_command(cfg, "/sd").argv
    assert any(t == f"--{name}" or t.startswith(f"--{name}=") for t in argv), name


def test_dataset_resolution_and_buckets_keep_what_sd_scripts_reads():
    cfg = load({"dataset": {"resolution": "1024,768"}, "buckets": {"enable_bucket": True, "bucket_reso_steps": 32}})
    assert "--resolution=1024,768" in build_command(cfg, "/sd").argv
    assert [p.key for p in problems({"buckets": {"bucket_reso_steps": 0}})] == ["buckets.bucket_reso_steps"]


def test_network_args_are_typed_by_the_network_module():
    lycoris = load({"network": {"network_module": "lycoris.kohya", "network_args": {"algo": "locon", "conv_dim": 4}}})
    assert isinstance(lycoris.network.network_args, LycorisArgs)
    lora = load({"network": {"network_args": {"conv_dim": 4}}})
    assert isinstance(lora.network.network_args, LoraArgs)
    [p] = problems({"network": {"network_module": "lycoris.kohya", "network_args": {"algo": "lokra"}}})
    assert p.key == "network.network_args.algo" and "lokr" in p.fix


@pytest.mark.parametrize(("name", "owner"), [("optimizer_args", "AdamW"), ("lr_scheduler_args", "constant")])
def test_optimizer_and_scheduler_args_are_typed_by_the_optimizer_and_scheduler(name, owner):
    [p] = problems({"optimizer": {name: {"x": 1}}})  # unset optimizer_type / lr_scheduler: AdamW, constant
    assert p.key == f"optimizer.{name}.x" and owner in p.message and "accepted:" in p.fix


def test_optimizer_names_are_checked_with_a_suggestion():
    [p] = problems({"optimizer": {"optimizer_type": "AdamW8bt"}})
    assert p.key == "optimizer.optimizer_type" and "AdamW8bit" in p.message


@pytest.mark.parametrize(
    ("table", "name", "wrong", "right"),
    [
        ("saving", "save_precision", "fp32", "float"),
        ("saving", "save_model_as", "bin", "safetensors"),
        ("precision", "mixed_precision", "fp8", "bf16"),
        ("sampling", "sample_sampler", "euler-a", "euler_a"),
        ("logging", "log_with", "tensorbord", "tensorboard"),
    ],
)
def test_sd_scripts_choices_name_the_allowed_values(table, name, wrong, right):
    [p] = problems({table: {name: wrong}})
    assert p.key == f"{table}.{name}" and right in p.fix


def test_training_noise_and_model_values_are_range_checked():
    assert [p.key for p in problems({"training": {"train_batch_size": 0}})] == ["training.train_batch_size"]
    assert [p.key for p in problems({"noise": {"noise_offset": "a lot"}})] == ["noise.noise_offset"]
    assert [p.key for p in problems({"model": {"pretrained_model_name_or_path": 5}})] == [
        "model.pretrained_model_name_or_path"
    ]


def test_accelerate_gpu_ids_are_normalised_and_checked():
    assert load({"accelerate": {"gpu_ids": [0, 1]}}).accelerate.gpu_ids == "0,1"
    assert [p.key for p in problems({"accelerate": {"gpu_ids": "0,0"}})] == ["accelerate.gpu_ids"]


def test_extra_is_typed_by_the_flag_table():
    assert load({"extra": {"lr_decay_steps": "5%"}}).extra.lr_decay_steps == 0.05  # sd-scripts' int_or_float
    assert [p.key for p in problems({"extra": {"lr_warmup_steps": 5}})] == ["extra.lr_warmup_steps"]  # typed home
    assert [p.key for p in problems({"extra": {"config_file": "x.toml"}})] == ["extra.config_file"]
    assert [p.key for p in problems({"extra": {"max_token_length": 100}})] == ["extra.max_token_length"]
