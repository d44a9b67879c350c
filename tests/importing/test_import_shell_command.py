"""Reading a pasted shell command as data: continuations, quotes, comments, launchers."""

from __future__ import annotations

import pytest

from loratrain.errors import ConfigError
from loratrain.importers.accelerate_argv import CARRIED, OTHER_SWITCHES, parse_accelerate
from loratrain.importers.shell_command import parse_command, split_commands


def test_backslash_continuations_quotes_and_comments_are_read_like_a_shell():
    text = (
        "# train it\n"
        "accelerate launch --num_processes=1 \\\n"
        "  '/opt/sd scripts/sdxl_train_network.py' \\\n"
        '  --output_name="my lora#2" \\\n'
        "  --network_args 'algo=locon' \"conv_dim=4\"  # a comment at the end\n"
    )
    cmd = parse_command(text)
    assert cmd.launcher == "accelerate"
    assert cmd.accelerate_argv == ["--num_processes=1"]
    assert cmd.script == "/opt/sd scripts/sdxl_train_network.py"
    assert cmd.script_argv == ["--output_name=my lora#2", "--network_args", "algo=locon", "conv_dim=4"]


def test_a_hash_inside_a_word_is_not_a_comment():
    cmd = parse_command("python sdxl_train_network.py --output_name=lora#2 --sdpa")
    assert cmd.script_argv == ["--output_name=lora#2", "--sdpa"]


def test_python_without_accelerate_and_its_interpreter_options():
    cmd = parse_command("/venv/bin/python3 -u sdxl_train_network.py --sdpa")
    assert (cmd.launcher, cmd.interpreter, cmd.script, cmd.script_argv) == (
        "python",
        "/venv/bin/python3",
        "sdxl_train_network.py",
        ["--sdpa"],
    )


def test_python_dash_m_accelerate_is_the_accelerate_launcher():
    cmd = parse_command("python -m accelerate.commands.launch --num_processes 2 x/sdxl_train_network.py --sdpa")
    assert (cmd.launcher, cmd.accelerate_argv, cmd.script) == (
        "accelerate",
        ["--num_processes", "2"],
        "x/sdxl_train_network.py",
    )


def test_environment_words_and_other_commands_are_skipped_with_notes():
    cmd = parse_command("cd /sd && HF_HUB_OFFLINE=1 accelerate launch sdxl_train_network.py --sdpa; echo done")
    assert cmd.env == {"HF_HUB_OFFLINE": "1"}
    assert cmd.script_argv == ["--sdpa"]
    assert sum("skipped the command" in n.message for n in cmd.notes) == 2


def test_lines_that_lost_their_backslash_are_joined_with_a_note():
    cmd = parse_command("accelerate launch sdxl_train_network.py\n  --sdpa\n  --seed=1\n")
    assert cmd.script_argv == ["--sdpa", "--seed=1"]
    assert any("joined" in n.message for n in cmd.notes)


def test_windows_caret_continuations_are_accepted():
    cmd = parse_command("accelerate launch sdxl_train_network.py ^\r\n  --sdpa ^\r\n  --seed=1\r\n")
    assert cmd.script_argv == ["--sdpa", "--seed=1"]


def test_an_unbalanced_quote_is_reported_with_the_line_it_opened_on():
    with pytest.raises(ConfigError) as info:
        parse_command('accelerate launch sdxl_train_network.py \\\n  --output_name="oops \\\n  --sdpa\n')
    problem = info.value.problems[0]
    assert "never closed" in problem.message and problem.line == 2


def test_text_without_a_training_script_is_an_error():
    with pytest.raises(ConfigError, match="no training script"):
        parse_command("echo hello")


def test_operators_split_commands():
    commands, _ = split_commands("a b && c | d; e")
    assert commands == [["a", "b"], ["c"], ["d"], ["e"]]


def test_accelerate_options_go_to_the_table_in_either_spelling_and_others_are_errors():
    values, errors = parse_accelerate(["--num-processes", "2", "--mixed_precision=bf16", "--multi_gpu"], "<c>")
    assert values == {"num_processes": 2, "mixed_precision": "bf16", "multi_gpu": True} and not errors
    values, errors = parse_accelerate(["--use_deepspeed", "--config_file", "a.yaml"], "<c>")
    assert values == {} and len(errors) == 2 and "--config_file" in errors[1].message


def test_our_accelerate_table_matches_accelerates_real_launch_parser():
    from accelerate.commands.launch import launch_command_parser

    real = {}
    for action in launch_command_parser()._actions:
        for option in action.option_strings:
            real[option.lstrip("-").replace("-", "_")] = action
    for dest, option in CARRIED.items():
        action = real[dest]
        assert action.dest == dest
        assert (action.nargs == 0) == (option.kind == "store_true"), dest
        if option.choices:
            assert tuple(action.choices) == option.choices, dest
        if option.type == "int":
            assert action.type is int, dest
    real_switches = {name for name, action in real.items() if action.nargs == 0 and name != "help" and name != "h"}
    assert real_switches - set(CARRIED) == set(OTHER_SWITCHES)


def test_a_windows_command_keeps_its_backslash_paths():
    text = (
        "C:\\kohya\\venv\\Scripts\\accelerate.exe launch C:\\kohya\\sd-scripts\\sdxl_train_network.py ^\n"
        '  --train_data_dir=D:\\data\\img ^\n  --output_dir="D:\\out dir" ^\n  --sdpa\n'
    )
    cmd = parse_command(text)
    assert cmd.launcher == "accelerate"
    assert cmd.script == "C:\\kohya\\sd-scripts\\sdxl_train_network.py"
    assert cmd.script_argv == ["--train_data_dir=D:\\data\\img", "--output_dir=D:\\out dir", "--sdpa"]
