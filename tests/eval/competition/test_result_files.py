"""Result files: exact template (header, ranks 1..k, consecutive queries, known ids), verbatim ids."""

from __future__ import annotations

import pytest

from eval.competition.result_files import (RESULT1_COLUMNS, RESULT2_COLUMNS, ResultFileError, validate_result_file,
                                           write_result_file)

QUERIES = ["文本-1", "Word 2", "q,3"]
GALLERY = ["a.jpg", "b.jpg", "c.jpg", "图.jpg", "e.jpg", "f.jpg"]


def _write(tmp_path, results=None, encoding="utf-8"):
    results = results or [GALLERY[:5], GALLERY[1:6], GALLERY[::-1][:5]]
    return write_result_file(tmp_path / "result1.csv", RESULT1_COLUMNS, QUERIES, results, encoding)


def test_written_file_is_exactly_the_template(tmp_path):
    path = _write(tmp_path)
    lines = path.read_bytes().decode("utf-8").split("\n")
    assert lines[0] == "text_id,similarity_ranking,result_image_id"
    assert lines[1:6] == [f"文本-1,{k},{g}" for k, g in zip(range(1, 6), GALLERY[:5])]
    assert lines[6] == "Word 2,1,b.jpg" and lines[11] == '"q,3",1,f.jpg' and lines[-1] == ""
    summary = validate_result_file(path, RESULT1_COLUMNS, QUERIES, GALLERY, 5)
    assert (summary.queries, summary.rows) == (3, 15)


def test_bom_variant_validates(tmp_path):
    path = _write(tmp_path, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert validate_result_file(path, RESULT1_COLUMNS, QUERIES, GALLERY, 5).rows == 15


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("text_id,similarity_ranking", "text_id, similarity_ranking"), "header"),
    (lambda t: t.replace("文本-1,5,e.jpg", "文本-1,6,e.jpg"), "ranks"),
    (lambda t: t.replace("文本-1,5,e.jpg\n", ""), "ranks"),
    (lambda t: t.replace("文本-1,2,b.jpg", "文本-1,2,zzz.jpg"), "unknown id"),
    (lambda t: t.replace("文本-1,2,b.jpg", "文本-1,2,a.jpg"), "twice"),
    (lambda t: t.replace("Word 2,", "文本-9,"), "unknown query"),
    (lambda t: t.replace("Word 2,1,b.jpg", "Word 2,1,b.jpg,x"), "3 fields"),
])
def test_validator_rejects_template_violations(tmp_path, edit, message):
    path = _write(tmp_path)
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ResultFileError, match=message):
        validate_result_file(path, RESULT1_COLUMNS, QUERIES, GALLERY, 5)


def test_validator_rejects_queries_out_of_order_and_split_groups(tmp_path):
    path = write_result_file(tmp_path / "r.csv", RESULT2_COLUMNS, ["Word 2", "文本-1"], [["a.jpg"], ["b.jpg"]])
    with pytest.raises(ResultFileError, match="not consecutive"):
        validate_result_file(path, RESULT2_COLUMNS, QUERIES, GALLERY, 1)
    path = write_result_file(tmp_path / "r.csv", RESULT2_COLUMNS, ["文本-1", "Word 2", "文本-1"],
                             [["a.jpg"], ["b.jpg"], ["c.jpg"]])
    with pytest.raises(ResultFileError, match="not consecutive"):
        validate_result_file(path, RESULT2_COLUMNS, QUERIES, GALLERY, 1)


def test_small_gallery_gives_fewer_ranks(tmp_path):
    path = write_result_file(tmp_path / "r.csv", RESULT2_COLUMNS, QUERIES[:1], [GALLERY[:2]])
    assert validate_result_file(path, RESULT2_COLUMNS, QUERIES, GALLERY[:2], 5).rows == 2
    with pytest.raises(ResultFileError, match="ranks"):
        validate_result_file(path, RESULT2_COLUMNS, QUERIES, GALLERY, 5)
