"""A caption the experiment's caption preprocessing empties is bad input under ``dataset.on_bad_input``: ``error``
names the caption id; ``skip`` drops it, then each image it leaves without a caption, and records both."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.data.benchmark import BadInputError, Benchmark, CaptionItem, ImageItem
from eval.data.caption_checks import drop_captions_empty_after
from rrbench_base.caption_preprocessing import CaptionPreprocessing

NONE, BLIP = CaptionPreprocessing(), CaptionPreprocessing("blip_caption")


def bench() -> Benchmark:
    images = [ImageItem(name, Path(f"/nowhere/{name}.png")) for name in ("A", "B", "G")]  # G: gallery only
    captions = [CaptionItem("a1", "A red square.", "A"), CaptionItem("a2", "(...)", "A"),
                CaptionItem("b1", "~!~", "B")]
    return Benchmark("toy", "test", images, captions)


def test_none_changes_nothing():
    original = bench()
    assert drop_captions_empty_after(original, [NONE], "error") is original


def test_error_names_the_caption():
    with pytest.raises(BadInputError, match=r"toy: caption 'a2': empty after caption preprocessing: "
                                            r"blip_caption\(max_words=50\) turns '\(\.\.\.\)' into an empty caption"):
        drop_captions_empty_after(bench(), [NONE, BLIP], "error")


def test_skip_drops_and_records_captions_and_the_images_left_without_one():
    out = drop_captions_empty_after(bench(), [BLIP], "skip")
    assert [c.id for c in out.captions] == ["a1"]
    assert [i.id for i in out.images] == ["A", "G"]  # B lost its only caption; G never had one
    assert [(s.kind, s.item, s.reason.split(":")[0]) for s in out.skipped] == [
        ("caption", "a2", "empty after caption preprocessing"), ("caption", "b1", "empty after caption preprocessing"),
        ("image", "B", "no captions")]
    assert out.summary()["skipped_by_reason"] == {"empty after caption preprocessing": 2, "no captions": 1}


def test_unaffected_benchmark_is_returned_as_is():
    clean = Benchmark("toy", "test", [ImageItem("A", Path("/nowhere/A.png"))], [CaptionItem("a1", "A dog.", "A")])
    assert drop_captions_empty_after(clean, [BLIP], "error") is clean
