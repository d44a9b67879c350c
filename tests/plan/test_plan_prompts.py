"""Sample-prompt files are read exactly as sd-scripts reads them, quirks included."""

from __future__ import annotations

import json

import pytest

from loratrain.plan.prompts import load_prompt_file, parse_prompt_line

GUIDE_LINE = "score_9, solo, photo --n low quality, worst quality, blurry --w 1024 --h 1024 --d 1 --l 6.0 --s 40"


def test_guide_style_line_gives_prompt_and_every_option():
    found, notes = parse_prompt_line(GUIDE_LINE)
    assert found == {
        "prompt": "score_9, solo, photo",
        "negative_prompt": "low quality, worst quality, blurry",
        "width": 1024,
        "height": 1024,
        "seed": 1,
        "scale": 6.0,
        "sample_steps": 40,
    }
    assert notes == []


def test_options_are_case_insensitive_and_sampler_is_read():
    found, _ = parse_prompt_line("a cat --W 768 --SS euler_a --G 3.5")
    assert (found["width"], found["sample_sampler"], found["guidance_scale"]) == (768, "euler_a", 3.5)


def test_steps_are_clamped_and_unknown_options_are_reported_as_ignored():
    found, notes = parse_prompt_line("a cat --s 5000 --steps 20 --neg blurry")
    assert found["sample_steps"] == 1000
    assert any("clamped to 1000" in n for n in notes)
    assert any("unknown option --steps 20" in n for n in notes)
    assert any("unknown option --neg blurry" in n for n in notes)


def test_a_prompt_that_starts_like_an_option_is_read_as_one_like_sd_scripts_does():
    found, notes = parse_prompt_line("w 512 wide landscape")
    assert found["width"] == 512 and found["prompt"] == "w 512 wide landscape"
    assert notes and "starts like an option" in notes[0]


def test_unreadable_option_value_is_ignored_with_a_note():
    found, notes = parse_prompt_line("a cat --l 1.2.3")
    assert "scale" not in found and "cannot read" in notes[0]


def test_txt_skips_blank_lines_and_first_column_comments_but_not_indented_ones(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# comment\n\nfirst --w 1024\r\n  # indented\nlast\n", encoding="utf-8")
    result = load_prompt_file(path)
    assert [(p.prompt, p.line) for p in result.prompts] == [("first", 3), ("# indented", 4), ("last", 5)]
    assert any("indented '#'" in p.message and p.line == 4 for p in result.problems)


def test_effective_size_is_floored_to_multiples_of_8_with_sd_scripts_defaults(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a --w 1023 --h 20\nb\n", encoding="utf-8")
    first, second = load_prompt_file(path).prompts
    assert (first.effective()["width"], first.effective()["height"]) == (1016, 64)
    assert second.effective("euler_a") == {
        "width": 512,
        "height": 512,
        "sample_steps": 30,
        "scale": 7.5,
        "sample_sampler": "euler_a",
        "seed": None,
    }


def test_toml_subsets_inherit_the_shared_prompt_table(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(
        "[prompt]\nwidth = 1024\nheight = 1024\nsample_steps = 28\n"
        '[[prompt.subset]]\nprompt = "a cat"\nseed = 1\n'
        '[[prompt.subset]]\nprompt = "a dog"\nnegative_prompt = "blurry"\n',
        encoding="utf-8",
    )
    result = load_prompt_file(path)
    assert not result.problems
    assert [p.prompt for p in result.prompts] == ["a cat", "a dog"]
    assert result.prompts[0].options == {"width": 1024, "height": 1024, "sample_steps": 28, "seed": 1}
    assert result.prompts[1].negative_prompt == "blurry"


def test_toml_key_in_both_shared_table_and_subset_is_the_typeerror_sd_scripts_stops_on(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[prompt]\nwidth = 1024\n[[prompt.subset]]\nprompt = "a"\nwidth = 512\n', encoding="utf-8")
    (problem,) = load_prompt_file(path).problems
    assert problem.severity == "error" and "width" in problem.message and "TypeError" in problem.message


def test_json_holds_prompt_objects_and_prompt_lines(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"prompt": "a cat", "width": 768}, "a dog --n blurry --s 20"]), encoding="utf-8")
    result = load_prompt_file(path)
    assert [(p.prompt, p.options) for p in result.prompts] == [
        ("a cat", {"width": 768}),
        ("a dog", {"negative_prompt": "blurry", "sample_steps": 20}),
    ]


@pytest.mark.parametrize(
    "name,content,needle",
    [
        ("p.yaml", "a cat\n", "only .txt, .toml or .json"),
        ("p.toml", "[prompt]\nwidth = 1\n", "[[prompt.subset]]"),
        ("p.toml", "prompt = \n", "TOML syntax error"),
        ("p.json", '{"prompt": "a"}', "must hold a list"),
        ("p.json", "[1]", "neither a prompt object nor a prompt line"),
    ],
)
def test_broken_prompt_files_are_errors_naming_the_file(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    problems = load_prompt_file(path).problems
    assert problems and problems[0].severity == "error" and needle in problems[0].message
    assert problems[0].file == str(path)


def test_missing_and_non_utf8_prompt_files_are_errors(tmp_path):
    assert "not found" in load_prompt_file(tmp_path / "none.txt").problems[0].message
    path = tmp_path / "latin1.txt"
    path.write_bytes("café --w 512\n".encode("latin-1"))
    assert "not UTF-8" in load_prompt_file(path).problems[0].message


def test_unknown_sampler_is_flagged_because_sd_scripts_falls_back_to_ddim(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a cat --ss euler_ancestral\n", encoding="utf-8")
    assert any("silently uses DDIM" in p.message for p in load_prompt_file(path).problems)


def test_toml_values_of_the_wrong_type_are_errors_because_the_sampler_would_crash(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(
        '[prompt]\nsample_steps = 20\n[[prompt.subset]]\nprompt = "a"\nwidth = "1024"\nscale = 7\n', encoding="utf-8"
    )
    result = load_prompt_file(path)
    assert [p.message.split(";")[0] for p in result.problems] == ["prompt.subset[0]: width = '1024' is not an integer"]
    assert result.prompts[0].options == {"sample_steps": 20, "scale": 7}
