"""Held-out task files: deterministic, disjoint, consistent with the answer key."""

from __future__ import annotations

import csv

import pytest

from eval.competition.holdout import make_holdout
from tests.eval.competition.helpers import write_csv


def _rows(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))[1:]


@pytest.fixture
def train_file(tmp_path):
    # 20 images, 2 captions each
    rows = [(f"im{k // 2}.jpg", f"图片{k // 2}的说明,第{k % 2}句") for k in range(40)]
    return write_csv(tmp_path / "src" / "ImageWordData.csv", ["image_id", "caption"], rows)


def test_split_is_deterministic_disjoint_and_complete(train_file, tmp_path):
    summary = make_holdout(train_file, tmp_path / "a", 0.25, seed=3)
    make_holdout(train_file, tmp_path / "b", 0.25, seed=3)
    make_holdout(train_file, tmp_path / "c", 0.25, seed=4)
    names = ["ImageWordData.csv", "word_test.csv", "word_data.csv", "image_test.csv", "image_data.csv",
             "ground_truth.csv"]
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    assert (tmp_path / "a" / "image_test.csv").read_bytes() != (tmp_path / "c" / "image_test.csv").read_bytes()
    sizes = (summary.train_images, summary.held_out_images, summary.train_pairs, summary.held_out_pairs)
    assert sizes == (15, 5, 30, 10)
    train_images = {r[0] for r in _rows(tmp_path / "a" / "ImageWordData.csv")}
    held = [r[0] for r in _rows(tmp_path / "a" / "image_test.csv")]
    assert len(train_images) == 15 and not train_images & set(held)
    assert sorted(r[0] for r in _rows(tmp_path / "a" / "image_data.csv")) == sorted(held)


def test_answer_key_matches_the_source_pairs(train_file, tmp_path):
    make_holdout(train_file, tmp_path / "a", 0.25, seed=3, text_id_prefix="文-")
    source = _rows(train_file)
    texts = dict(_rows(tmp_path / "a" / "word_test.csv"))
    assert sorted(texts.items()) == sorted(map(tuple, _rows(tmp_path / "a" / "word_data.csv")))
    for text_id, image_id in _rows(tmp_path / "a" / "ground_truth.csv"):
        row = int(text_id.removeprefix("文-"))
        assert source[row] == [image_id, texts[text_id]]


def test_fraction_must_leave_both_parts(train_file, tmp_path):
    with pytest.raises(ValueError, match="empty part"):
        make_holdout(train_file, tmp_path / "a", 0.01)
    with pytest.raises(ValueError, match="held_out_fraction"):
        make_holdout(train_file, tmp_path / "a", 1.0)
