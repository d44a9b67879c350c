"""One source per fact: choices, defaults, secret keys and table order are read from one table each."""

from __future__ import annotations

import typing

import pytest
from helpers import BASE, tomllib
from pydantic import ValidationError

from loratrain.config.loader import validate
from loratrain.importers.output import table_order
from loratrain.launch import record
from loratrain.render import build_command
from loratrain.schema import choices
from loratrain.schema.accelerate import LAUNCH_OPTIONS, AccelerateArgs
from loratrain.schema.root import SCRIPT_GROUPS, TrainConfig
from loratrain.sdscripts import flags, install


@pytest.mark.parametrize(
    ("literal", "dest"),
    [
        (choices.Sampler, "sample_sampler"),
        (choices.MixedPrecision, "mixed_precision"),
        (choices.SavePrecision, "save_precision"),
        (choices.SaveFormat, "save_model_as"),
        (choices.LogWith, "log_with"),
        (choices.MaxTokenLength, "max_token_length"),
    ],
)
def test_sd_scripts_choices_are_the_flag_tables(literal, dest):
    assert typing.get_args(literal) == flags.choices(dest)


@pytest.mark.parametrize("dest", ["mixed_precision", "dynamo_backend"])
def test_accelerate_table_accepts_exactly_the_launch_tables_choices(dest):
    for value in LAUNCH_OPTIONS[dest].choices:
        assert getattr(AccelerateArgs(**{dest: value}), dest) == value
    for wrong in ("ipex", "hpu_backend", "fp4"):
        with pytest.raises(ValidationError):
            AccelerateArgs(**{dest: wrong})


def test_every_accepted_accelerate_value_is_one_accelerates_real_parser_takes():
    launch = pytest.importorskip("accelerate.commands.launch")
    parser = launch.launch_command_parser()
    for dest in ("mixed_precision", "dynamo_backend"):
        for value in LAUNCH_OPTIONS[dest].choices:
            cfg = validate(_toml(BASE + f'[accelerate]\n{dest} = "{value}"\n'), "t.toml").config
            argv = build_command(cfg, "/sd").argv
            script_at = next(i for i, t in enumerate(argv) if t.endswith(flags.SCRIPT_NAME))
            args = parser.parse_args(argv[2 : script_at + 1])
            assert getattr(args, dest) == value


def test_unset_accelerate_keys_render_the_launch_tables_defaults():
    argv = build_command(validate(_toml(BASE), "t.toml").config, "/sd").argv
    for dest, option in LAUNCH_OPTIONS.items():
        if option.default is not None:
            assert f"--{dest}={option.default}" in argv


def test_secret_keys_are_one_list():
    assert record.SECRET_KEYS == frozenset(choices.SECRET_ENV)


def test_table_order_is_the_config_models():
    assert table_order() == (*SCRIPT_GROUPS, "accelerate", "extra")
    assert list(table_order()) == [n for n in TrainConfig.model_fields if n not in ("sd_scripts", "python")]


def test_the_flag_tables_commit_and_script_are_named_once():
    assert install.SCRIPT_NAME is flags.SCRIPT_NAME
    assert install.FLAG_TABLE_COMMIT == flags.source_commit()
    assert len(flags.source_commit()) == 40


def _toml(text: str) -> dict:
    return tomllib.loads(text)
