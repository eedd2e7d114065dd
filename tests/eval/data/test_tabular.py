"""CSV / TSV / JSONL caption tables with configurable columns."""

import json

import pytest

from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.tabular import load_table

from .conftest import write_image

ROWS = [  # (file, text, image id, caption id, split)
    ("imgs/a.png", "a red square", "A", "c1", "test"),
    ("imgs/b.png", "a blue square", "B", "c2", "test"),
    ("imgs/a.png", "a square, red", "A", "c3", "test"),
    ("imgs/c.png", "a green square", "C", "c4", "train"),
]


@pytest.fixture
def images(tmp_path):
    for name in ("a", "b", "c"):
        write_image(tmp_path / "imgs" / f"{name}.png")
    return tmp_path


def write(path, rows, header=("file", "text", "img", "cid", "part")):
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, r)), ensure_ascii=False) + "\n" for r in rows))
    else:
        sep = "\t" if path.suffix == ".tsv" else ","
        body = [sep.join(header)] + [sep.join(f'"{v}"' if sep == "," and "," in v else v for v in r) for r in rows]
        path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return path


def cfg(path, cache_dir, **kw) -> DatasetConfig:
    return DatasetConfig(format="table", annotations=path, image_column="file", caption_column="text",
                         cache_dir=cache_dir, **kw)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_default_ids_same_for_every_format(images, cache_dir, suffix):
    bench = load_table(cfg(write(images / f"caps{suffix}", ROWS), cache_dir))
    assert (bench.name, bench.split) == ("caps", "all")
    assert [i.id for i in bench.images] == ["imgs/a.png", "imgs/b.png", "imgs/c.png"]
    assert [(c.id, c.text, c.image_id) for c in bench.captions] == [
        ("0", "a red square", "imgs/a.png"), ("1", "a blue square", "imgs/b.png"),
        ("2", "a square, red", "imgs/a.png"), ("3", "a green square", "imgs/c.png")]


def test_id_and_split_columns(images, cache_dir):
    path = write(images / "caps.csv", ROWS)
    bench = load_table(cfg(path, cache_dir, image_id_column="img", caption_id_column="cid",
                           split_column="part", split="test", language="de"))
    assert [i.id for i in bench.images] == ["A", "B"] and bench.split == "test"
    assert [(c.id, c.image_id, c.language) for c in bench.captions] == [("c1", "A", "de"), ("c2", "B", "de"), ("c3", "A", "de")]
    with pytest.raises(BadInputError, match=r"no rows with part='dev' \(values found: test, train\)"):
        load_table(cfg(path, cache_dir, split_column="part", split="dev"))
    with pytest.raises(ValueError, match="no split_column is set"):
        load_table(cfg(path, cache_dir, split="test"))


def test_root_separate_from_annotations(images, cache_dir, tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    bench = load_table(cfg(write(ann / "caps.tsv", ROWS), cache_dir, root=images))
    assert bench.images[0].path == (images / "imgs" / "a.png").resolve()


def test_rows_may_refer_to_an_image_by_id(images, cache_dir):
    rows = [("", "first by id", "A", "c0", "x"), ("imgs/a.png", "with path", "A", "c1", "x"),
            ("", "never given a path", "Z", "c2", "x")]
    path = write(images / "caps.csv", rows)
    with pytest.raises(BadInputError, match=r"caps\.csv:4: caption 'c2': unknown image: 'Z'"):
        load_table(cfg(path, cache_dir, image_id_column="img", caption_id_column="cid"))
    bench = load_table(cfg(path, cache_dir, image_id_column="img", caption_id_column="cid", on_bad_input="skip"))
    assert [c.id for c in bench.captions] == ["c0", "c1"] and [i.id for i in bench.images] == ["A"]


def test_jsonl_row_problems(images, cache_dir):
    path = images / "caps.jsonl"
    path.write_text('{"file": "imgs/a.png", "text": "ok"}\n\n{"file": "imgs/b.png"}\nnot json\n'
                    '["a list"]\n{"file": "imgs/b.png", "text": 7}\n')
    with pytest.raises(BadInputError, match=r"caps\.jsonl:3: caption 'row 1': missing field: 'text' \(fields found: file\)"):
        load_table(cfg(path, cache_dir))
    bench = load_table(cfg(path, cache_dir, on_bad_input="skip"))
    assert [c.text for c in bench.captions] == ["ok"]
    assert [(s.source.rsplit(":", 1)[1], s.reason.split(":")[0]) for s in bench.skipped] == [
        ("3", "missing field"), ("4", "invalid JSON"), ("5", "invalid JSON"), ("6", "caption is not text")]


def test_wrong_field_count_and_unknown_suffix(images, cache_dir):
    path = images / "caps.tsv"
    path.write_text("file\ttext\nimgs/a.png\tok\nimgs/b.png\textra\tfield\n")
    with pytest.raises(BadInputError, match=r"caps\.tsv:3: caption 'row 1': wrong field count: expected 2 fields, found 3"):
        load_table(cfg(path, cache_dir))
    assert len(load_table(cfg(path, cache_dir, on_bad_input="skip")).captions) == 1
    with pytest.raises(BadInputError, match=r"unknown annotation file type '\.xml'"):
        load_table(cfg(images / "caps.xml", cache_dir))
