"""CLIP token counts equal transformers' slow CLIPTokenizer (openai/clip-vit-large-patch14), offline."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import ftfy
import pytest
import regex
from helpers import GUIDE_PROMPT_1, GUIDE_PROMPT_2
from hypothesis import given, settings
from hypothesis import strategies as st

from loratrain.plan import clip_tokenizer
from loratrain.plan.clip_tokenizer import ClipTokenizer, VocabularyNotFound, find_vocabulary


@pytest.fixture(scope="module")
def tok() -> ClipTokenizer:
    try:
        return ClipTokenizer(find_vocabulary())
    except VocabularyNotFound as exc:
        pytest.skip(f"no CLIP vocabulary on this machine: {exc}")


def test_a_photo_of_a_cat_gives_the_known_ids(tok):
    assert tok.encode("a photo of a cat") == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_the_guides_two_sample_prompts_count_65_and_75_tokens(tok):
    assert tok.count(GUIDE_PROMPT_1) == 65
    assert tok.count(GUIDE_PROMPT_2) == 75
    assert len(tok.encode(GUIDE_PROMPT_2)) == 77


@pytest.mark.parametrize(
    "text,expected",
    [
        ("ＡＢＣ１２３", ["abc", "1", "2", "3"]),  # ftfy folds fullwidth characters
        ("ﬁne", ["fine"]),  # and ligatures
        ("Tom&amp;Jerry", ["tom", "&", "jerry"]),  # and HTML entities in text without "<"
        ("it's", ["it", "'s"]),
    ],
)
def test_text_is_cleaned_like_the_slow_tokenizer_before_bpe(tok, text, expected):
    assert [t.removesuffix("</w>") for t in tok.tokens(text)] == expected


def test_literal_special_tokens_count_once_and_split_the_text_for_ftfy(tok):
    assert tok.count("<|endoftext|>") == 1
    # transformers cuts the special token out first, so "&lt;" in the rest is still unescaped to "<".
    assert tok.count("<|endoftext|>&lt;b") == 1 + tok.count("<b")


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != "&")
        | st.sampled_from(["\t", "\n", "\r"]),
        max_size=60,
    )
)
def test_plain_ascii_shortcut_is_what_ftfy_would_return(text):
    cleaned = regex.sub(r"\s+", " ", ftfy.fix_text(text)).strip()
    assert cleaned == " ".join(text.split())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fast_count_equals_the_token_list_length_for_any_text(tok, text):
    assert tok.count(text) == len(tok.tokens(text))


def test_hugging_face_vocab_json_and_merges_txt_give_the_same_counts(tok, tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps(tok.encoder), encoding="utf-8")
    merges = sorted(tok.ranks, key=tok.ranks.get)
    (tmp_path / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )
    other = ClipTokenizer(clip_tokenizer.VocabSource("json", tmp_path, "test"))
    for text in ("a photo of a cat", GUIDE_PROMPT_1, "日本語 ﬁne ＡＢＣ"):
        assert other.encode(text) == tok.encode(text)


def test_sd_scripts_tokenizer_cache_dir_is_searched(tok, tmp_path, monkeypatch):
    monkeypatch.delenv("LORATRAIN_CLIP_VOCAB", raising=False)
    folder = tmp_path / "cache" / "openai_clip-vit-large-patch14"
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(tok.encoder), encoding="utf-8")
    merges = sorted(tok.ranks, key=tok.ranks.get)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges), encoding="utf-8")
    source = find_vocabulary(str(tmp_path / "cache"))
    assert (source.origin, source.path) == ("tokenizer_cache_dir", folder)


def test_a_file_that_is_not_the_clip_vocabulary_is_refused(tmp_path, monkeypatch):
    bogus = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    bogus.write_bytes(gzip.compress(b"#version\na b\n"))
    monkeypatch.setenv("LORATRAIN_CLIP_VOCAB", str(bogus))
    with pytest.raises(VocabularyNotFound, match="not the CLIP"):
        clip_tokenizer.ClipTokenizer(find_vocabulary())


def test_a_wrong_vocabulary_path_in_the_environment_says_what_it_wants(tmp_path, monkeypatch):
    monkeypatch.setenv("LORATRAIN_CLIP_VOCAB", str(tmp_path / "nothing"))
    with pytest.raises(VocabularyNotFound, match="vocab.json and merges.txt"):
        find_vocabulary()


def test_counting_tokens_imports_neither_torch_nor_transformers(tok):
    code = (
        "import sys; from loratrain.plan.clip_tokenizer import load_tokenizer; load_tokenizer().count('a cat'); "
        "print(sorted(m for m in ('torch', 'transformers', 'clip', 'open_clip') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
