"""sd-scripts argv parsing: the same values sd-scripts' own argparse rules give, with clearer errors."""

from __future__ import annotations

import argparse
import string

import pytest
from helpers import reference_parse, reference_parser_cached
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loratrain.errors import ConfigError
from loratrain.importers.sd_argv import flag_table, parse_script_argv


def values(*argv: str) -> dict:
    return parse_script_argv(list(argv)).values


def error_text(*argv: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_script_argv(list(argv))
    return str(info.value)


def test_equals_and_space_forms_give_the_same_values():
    assert (
        values("--network_dim=8", "--learning_rate=1e-4", "--output_name=my lora")
        == values("--network_dim", "8", "--learning_rate", "1e-4", "--output_name", "my lora")
        == {"network_dim": 8, "learning_rate": 1e-4, "output_name": "my lora"}
    )


def test_on_off_flags_become_true_and_refuse_a_value():
    assert values("--cache_latents", "--sdpa") == {"cache_latents": True, "sdpa": True}
    assert "takes no value" in error_text("--sdpa=1")


def test_a_unique_prefix_is_expanded_and_reported_as_a_note():
    parsed = parse_script_argv(["--dataset_repeat=3", "--lowr"])
    assert parsed.values == {"dataset_repeats": 3, "lowram": True}
    notes = " ".join(n.message for n in parsed.notes)
    assert "--dataset_repeat" in notes and "--dataset_repeats" in notes and "--lowram" in notes


def test_an_ambiguous_prefix_is_an_error_naming_the_candidates():
    text = error_text("--sample_every_n=10")
    assert "ambiguous" in text and "--sample_every_n_steps" in text and "--sample_every_n_epochs" in text


def test_an_unknown_flag_is_an_error_with_a_did_you_mean():
    text = error_text("--leraning_rate=1e-4")
    assert "--leraning_rate" in text and "did you mean --learning_rate" in text


def test_list_flags_take_every_following_value_and_a_repeat_replaces_the_list():
    assert values("--network_args", "a=1", "b=2", "--sdpa") == {"network_args": ["a=1", "b=2"], "sdpa": True}
    parsed = parse_script_argv(["--network_args", "a=1", "--network_args", "b=2"])
    assert parsed.values == {"network_args": ["b=2"]}
    assert any("last list" in n.message for n in parsed.notes)


def test_list_flag_with_equals_takes_one_item_and_the_rest_is_rejected_with_a_fix():
    text = error_text("--network_args=a=1", "b=2")
    assert "'b=2'" in text and "put a space, not '='" in text


def test_text_encoder_lr_is_a_list_of_floats():
    assert values("--text_encoder_lr", "1e-4", "5e-5") == {"text_encoder_lr": [1e-4, 5e-5]}


def test_int_or_float_follows_sd_scripts():
    assert values("--lr_warmup_steps=100") == {"lr_warmup_steps": 100}
    assert values("--lr_warmup_steps=0.05") == {"lr_warmup_steps": 0.05}
    assert values("--lr_warmup_steps=50%") == {"lr_warmup_steps": 0.5}
    assert "lr_warmup_steps" in error_text("--lr_warmup_steps=1.0")


def test_a_missing_value_is_an_error():
    assert "--seed needs a value" in error_text("--seed", "--sdpa")
    assert "--seed needs a value" in error_text("--seed")


def test_a_negative_number_in_exponent_form_is_read_as_a_flag_and_the_fix_says_so():
    text = error_text("--noise_offset", "-1e-3")
    assert "write --noise_offset=-1e-3" in text
    assert values("--noise_offset", "-0.001") == {"noise_offset": -0.001}


def test_a_wrong_type_and_a_bad_choice_are_errors():
    assert "not a whole number" in error_text("--network_dim=8.5")
    assert "not one of" in error_text("--mixed_precision=fp32")
    assert "not one of" in error_text("--max_token_length=75")


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        parse_script_argv(["--nope", "--seed=x", "--sdpa=1"])
    assert len(info.value.problems) == 3


def test_stray_values_and_double_dash_are_rejected_like_sd_scripts_does():
    assert "not attached to any flag" in error_text("stray")
    assert "'--' ends the options" in error_text("--", "--sdpa")


# --- property: same result as sd-scripts' parser rebuilt with argparse from the recorded flag table ----------

_FLAGS = {d: s for d, s in flag_table().items() if s.kind != "help"}
_ALL_OPTIONS = [o for s in _FLAGS.values() for o in s.option_strings]


def _abbreviations(option: str) -> list[str]:
    out = []
    for end in range(3, len(option)):
        prefix = option[:end]
        if prefix not in _ALL_OPTIONS and sum(o.startswith(prefix) for o in _ALL_OPTIONS) == 1:
            out.append(prefix)
    return out


_SAFE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "_./,=: ", max_size=10).filter(
    lambda t: not t.startswith("-")
)


def _value_text(spec, allow_invalid: bool):
    if spec.choices:
        valid = st.sampled_from([str(c) for c in spec.choices if c is not None])
    elif spec.type == "int":
        valid = st.integers(-50, 10**6).map(str)
    elif spec.type == "float":
        valid = st.floats(0, 1e4, allow_nan=False).map(repr) | st.floats(-1, 0).map(lambda f: f"{f:.3f}")
    elif spec.type == "int_or_float":
        valid = st.integers(1, 5000).map(str) | st.floats(0, 0.99).map(repr) | st.integers(0, 99).map(lambda i: f"{i}%")
    else:
        valid = _SAFE_TEXT
    if allow_invalid and spec.type in ("int", "int_or_float"):
        return valid | st.sampled_from(["1.0", "abc", "2.5"])
    return valid


@st.composite
def _argv(draw):
    argv: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        spec = draw(st.sampled_from(sorted(_FLAGS.values(), key=lambda s: s.dest)))
        option = spec.option_strings[-1]
        abbrevs = _abbreviations(option)
        if abbrevs and draw(st.integers(0, 4)) == 0:
            option = draw(st.sampled_from(abbrevs))
        if spec.kind == "store_true":
            argv.append(option)
        elif spec.kind == "list":
            item = _value_text(spec, False) if spec.type != "float" else st.floats(0, 1, allow_nan=False).map(repr)
            argv += [option, *draw(st.lists(item, max_size=3))]
        else:
            text = draw(_value_text(spec, allow_invalid=draw(st.integers(0, 9)) == 0))
            if text.startswith("-") or draw(st.booleans()):
                argv.append(f"{option}={text}")
            else:
                argv += [option, text]
    return argv


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_argv())
def test_parsing_matches_sd_scripts_argparse_rules_for_generated_command_lines(argv):
    try:
        expected = reference_parse(argv)
    except (argparse.ArgumentError, SystemExit):
        with pytest.raises(ConfigError):
            parse_script_argv(argv)
        return
    parsed = parse_script_argv(argv).values
    parser = reference_parser_cached()
    for dest, value in expected.items():
        if dest in parsed:
            assert parsed[dest] == value, dest
        else:
            assert value == parser.get_default(dest), dest
