"""Karpathy split JSON (Flickr30K and COCO variants) with an image root."""

import pytest

from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.karpathy import load_karpathy

from .conftest import karpathy_entry, write_image, write_karpathy


def cfg(tmp_path, cache_dir, **kw) -> DatasetConfig:
    return DatasetConfig(format="karpathy", root=tmp_path / "images", annotations=tmp_path / "dataset_flickr30k.json",
                         cache_dir=cache_dir, **kw)


@pytest.fixture
def flickr30k(tmp_path):
    for name in ("1.jpg", "2.jpg", "3.jpg", "4.jpg"):
        write_image(tmp_path / "images" / name, fmt="JPEG")
    entries = [karpathy_entry(0, "1.jpg", "train", ["one a", "one b"], first_sentid=0),
               karpathy_entry(1, "2.jpg", "test", ["two a", "two b"], first_sentid=2),
               karpathy_entry(2, "3.jpg", "test", ["three a", "three b"], first_sentid=4),
               karpathy_entry(3, "4.jpg", "restval", ["four a"], first_sentid=6)]
    write_karpathy(tmp_path / "dataset_flickr30k.json", entries)
    return entries


def test_flickr30k_test_split(tmp_path, cache_dir, flickr30k):
    bench = load_karpathy(cfg(tmp_path, cache_dir))
    assert (bench.name, bench.split) == ("flickr30k", "test")
    assert [i.id for i in bench.images] == ["2.jpg", "3.jpg"]
    assert [(c.id, c.text, c.image_id) for c in bench.captions] == [
        ("2", "two a", "2.jpg"), ("3", "two b", "2.jpg"), ("4", "three a", "3.jpg"), ("5", "three b", "3.jpg")]


def test_split_union_and_unknown_split(tmp_path, cache_dir, flickr30k):
    bench = load_karpathy(cfg(tmp_path, cache_dir, split="train+restval"))
    assert [i.id for i in bench.images] == ["1.jpg", "4.jpg"] and len(bench.captions) == 3
    with pytest.raises(BadInputError, match=r"no images with split 'dev' \(splits found: restval, test, train\)"):
        load_karpathy(cfg(tmp_path, cache_dir, split="dev"))


def test_coco_filepath(tmp_path, cache_dir):
    write_image(tmp_path / "images" / "val2014" / "COCO_val2014_1.jpg", fmt="JPEG")
    path = write_karpathy(tmp_path / "dataset_coco.json", [
        karpathy_entry(0, "COCO_val2014_1.jpg", "test", ["a cat"], filepath="val2014", first_sentid=9)])
    bench = load_karpathy(DatasetConfig(format="karpathy", root=tmp_path / "images", annotations=path, cache_dir=cache_dir))
    assert bench.name == "coco" and bench.images[0].id == "val2014/COCO_val2014_1.jpg"
    assert bench.images[0].path.is_file() and bench.captions[0].id == "9"


def test_duplicate_entry_and_missing_keys(tmp_path, cache_dir, flickr30k):
    dup = karpathy_entry(9, "2.jpg", "test", ["dup a"], first_sentid=20)
    broken = {"filename": "3.jpg", "sentences": []}  # no split
    write_karpathy(tmp_path / "dataset_flickr30k.json", flickr30k + [dup, broken])
    with pytest.raises(BadInputError, match=r"image '2\.jpg': duplicate image id: first listed at .*images\[1\]"):
        load_karpathy(cfg(tmp_path, cache_dir))
    bench = load_karpathy(cfg(tmp_path, cache_dir, on_bad_input="skip"))
    assert [c.id for c in bench.captions] == ["2", "3", "4", "5"]  # dup's sentence not given to 2.jpg
    assert [(s.kind, s.item, s.reason.split(":")[0]) for s in bench.skipped] == [
        ("image", "2.jpg", "duplicate image id"), ("caption", "20", "image skipped"),
        ("image", "images[5]", "missing field")]
    assert "keys found: filename, sentences" in bench.skipped[2].reason


def test_non_utf8_bytes(tmp_path, cache_dir, flickr30k):
    path = tmp_path / "dataset_flickr30k.json"
    path.write_bytes(path.read_bytes().replace(b"three b", b"three \xff b").replace(b'"imgid": 2', b'\n"imgid": 2'))
    # two newlines precede the bad byte (before entry imgid 2 and before its first sentence)
    with pytest.raises(BadInputError, match=r"dataset_flickr30k\.json:3: non-UTF-8 bytes"):
        load_karpathy(cfg(tmp_path, cache_dir))
    bench = load_karpathy(cfg(tmp_path, cache_dir, on_bad_input="skip"))
    assert [c.id for c in bench.captions] == ["2", "3", "4"]
    assert [(s.item, s.reason) for s in bench.skipped] == [("5", "non-UTF-8 bytes in caption")]


def test_invalid_json_names_line(tmp_path, cache_dir):
    (tmp_path / "dataset_flickr30k.json").write_text('{"images": [\n{"filename": }]}')
    with pytest.raises(BadInputError, match=r"dataset_flickr30k\.json:2: invalid JSON"):
        load_karpathy(cfg(tmp_path, cache_dir))
