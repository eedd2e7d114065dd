"""Task files: verbatim ids, the bad-input policy (missing images, duplicates, empty fields), answer key."""

from __future__ import annotations

import pytest

from eval.competition.config import CompetitionFiles
from eval.competition.task_files import read_tasks
from eval.data.benchmark import BadInputError
from tests.eval.competition.helpers import make_competition_dir, write_csv


def test_reads_all_four_files_and_the_answer_key(tmp_path):
    ids = make_competition_dir(tmp_path)
    tasks = read_tasks(tmp_path, CompetitionFiles(), "error")
    assert tasks.text_queries.ids == ids["text_ids"]
    assert tasks.text_queries.texts[0] == "红色方块在绿色方块左边"
    assert tasks.text_gallery.ids == ids["text_ids"][::-1]
    assert [i.id for i in tasks.image_queries] == ids["images"]
    assert [i.id for i in tasks.image_gallery] == ids["images"][::-1]
    assert tasks.ground_truth["文本-3"] == {"img3.jpg"} and tasks.skipped == []
    assert tasks.counts()["ground_truth_pairs"] == 20


def test_missing_image_is_named_or_skipped_and_counted(tmp_path):
    make_competition_dir(tmp_path)
    (tmp_path / "ImageData" / "img2.jpg").unlink()
    with pytest.raises(BadInputError, match=r"image_data\.csv:\d+: image 'img2\.jpg': missing image file"):
        read_tasks(tmp_path, CompetitionFiles(), "error")
    tasks = read_tasks(tmp_path, CompetitionFiles(), "skip")
    assert [(s.kind, s.item) for s in tasks.skipped] == [("image", "img2.jpg")] * 2  # gallery and query list
    assert "img2.jpg" not in [i.id for i in tasks.image_queries + tasks.image_gallery]


def test_bad_rows_follow_the_policy(tmp_path):
    make_competition_dir(tmp_path)
    write_csv(tmp_path / "word_test.csv", ["text_id", "caption"],
              [(" 带空格的id ", "红色"), ("dup", "绿色"), ("dup", "蓝色"), ("empty", " "), ("../x", "白色")])
    write_csv(tmp_path / "image_test.csv", ["image_id"], [("img0.jpg",), ("../ImageWordData.csv",)])
    tasks = read_tasks(tmp_path, CompetitionFiles(), "skip")
    # verbatim, the first of a repeated id kept
    assert tasks.text_queries.ids == [" 带空格的id ", "dup", "../x"]
    assert sorted(s.reason.split(" ")[0] for s in tasks.skipped) == ["duplicate", "empty", "path"]
    with pytest.raises(BadInputError, match="duplicate caption id"):
        read_tasks(tmp_path, CompetitionFiles(), "error")


def test_missing_file_and_column_are_errors(tmp_path):
    make_competition_dir(tmp_path)
    (tmp_path / "ground_truth.csv").unlink()
    assert read_tasks(tmp_path, CompetitionFiles(), "error").ground_truth is None
    write_csv(tmp_path / "word_data.csv", ["id", "caption"], [("a", "b")])
    with pytest.raises(BadInputError, match="missing column 'text_id'"):
        read_tasks(tmp_path, CompetitionFiles(), "skip")
    with pytest.raises(BadInputError, match="image folder not found"):
        read_tasks(tmp_path, CompetitionFiles(images="nope"), "skip")
