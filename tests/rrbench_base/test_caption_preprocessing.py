"""``blip_caption`` behaves as LAVIS's BLIP caption processor is described (lower-case; . ! " ( ) * # : ; ~ to
spaces; runs of 2+ whitespace to one space; trailing newlines, then outer spaces, removed; at most max_words
space-separated words), on tricky captions and on random strings against a reference written from that
description; ``none`` changes nothing; an emptied caption is refused by name."""

from __future__ import annotations

import random
import re

import pytest

from rrbench_base.caption_preprocessing import (
    CaptionPreprocessing,
    EmptyCaptionError,
    blip_caption,
)
from rrbench_base.config_errors import ConfigFieldError


def described_blip_caption(text: str, max_words: int) -> str:
    """The processor as its description reads, step by step, written with regular expressions only."""
    text = re.sub(r'[.!"()*#:;~]', " ", text.lower())
    text = re.sub(r"\s{2,}", " ", text)
    text = text.rstrip("\n").strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


@pytest.mark.parametrize("text, expected", [
    ("A man's dog.", "a man's dog"),  # apostrophe kept, full stop gone
    ("Two well-dressed men (smiling)!", "two well-dressed men smiling"),  # hyphen kept
    ("  Hello   World \n", "hello world"),
    ("wait... what?!", "wait what?"),  # ? and , are not stripped
    ('#1: the ~best~ "dog", ok;', "1 the best dog , ok"),
    ("Café ÜBER naïve", "café über naïve"),  # Unicode lower-casing
    ("İstanbul", "İstanbul".lower()),  # Python's lower(): i + combining dot
    ("一只狗在草地上奔跑。", "一只狗在草地上奔跑。"),  # Chinese: full-width marks are kept
    ("狗：在 草地上", "狗：在 草地上"),  # the full-width colon is not the ASCII one
    ("a\tdog", "a\tdog"),  # a lone tab is kept, as LAVIS keeps it
    ("a dog\t", "a dog\t"),  # only newlines and spaces are trimmed at the ends
    ("a dog\n", "a dog"),
    ("a\u3000\u3000dog", "a dog"),  # a run of ideographic spaces is whitespace
    ("a\u00a0dog", "a\u00a0dog"),  # one no-break space is not a run
])
def test_tricky_captions(text, expected):
    assert blip_caption(text, 50) == expected
    assert described_blip_caption(text, 50) == expected


def test_max_words_keeps_the_first_words():
    words = [f"w{i}" for i in range(60)]
    assert blip_caption(" ".join(words), 50) == " ".join(words[:50])
    assert blip_caption(" ".join(words[:50]), 50) == " ".join(words[:50])
    assert blip_caption("a b. c d", 3) == "a b c"  # counted after punctuation became spaces
    assert blip_caption("a\tb c d", 2) == "a\tb c"  # words are split on spaces only
    assert blip_caption("一只狗在草地上奔跑", 1) == "一只狗在草地上奔跑"  # no spaces: one word


def test_matches_the_described_processor_on_random_strings():
    alphabet = list("abcXYZ .!\"()*#:;~,'-?\t\n\r\u3000\u00a0éÄ狗。：") + ["  ", "\n\n"]
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        max_words = rng.randint(1, 6)
        assert blip_caption(text, max_words) == described_blip_caption(text, max_words), repr(text)


def test_none_changes_nothing():
    prep = CaptionPreprocessing()
    texts = ["A Dog.", "...", "", "  x  "]
    assert prep.name == "none" and not prep.changes_text and prep.identity() == "none"
    assert prep.apply_all(texts) == texts
    assert all(prep.apply(t) == t for t in texts)


def test_blip_caption_choice_applies_the_processor_with_its_max_words():
    prep = CaptionPreprocessing("blip_caption", max_words=2)
    assert prep.changes_text and prep.identity() == "blip_caption(max_words=2)"
    assert prep.apply_all(["A Red. Dog!", "One"]) == ["a red", "one"]
    assert CaptionPreprocessing("blip_caption").max_words == 50


@pytest.mark.parametrize("emptied", ["...", "(*)", "~ ~", "!\n", "\"\"", "."])
def test_a_caption_left_empty_is_refused_by_id_or_position(emptied):
    prep = CaptionPreprocessing("blip_caption")
    with pytest.raises(EmptyCaptionError, match=r"caption 'c2' is empty after caption preprocessing "
                                                r"blip_caption\(max_words=50\)"):
        prep.apply_all(["a dog", "a cat", emptied], ids=["c0", "c1", "c2"])
    with pytest.raises(EmptyCaptionError, match="caption at position 1 is empty"):
        prep.apply_all(["a dog", emptied])


def test_a_caption_left_whitespace_only_is_refused():
    with pytest.raises(EmptyCaptionError, match="position 0"):
        CaptionPreprocessing("blip_caption").apply_all(["\t"])


@pytest.mark.parametrize("kwargs, key", [({"name": "lowercase"}, "name"), ({"max_words": 0}, "max_words"),
                                         ({"max_words": True}, "max_words")])
def test_invalid_settings_name_the_field(kwargs, key):
    with pytest.raises(ConfigFieldError) as info:
        CaptionPreprocessing(**kwargs)
    assert info.value.key == key
