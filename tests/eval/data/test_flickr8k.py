"""Flickr8k layout loader on a 4-image fixture (English and Chinese, every split)."""

import pytest

from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.flickr8k import load_flickr8k


def cfg(root, cache_dir, **kw) -> DatasetConfig:
    return DatasetConfig(format="flickr8k", root=root, cache_dir=cache_dir, **kw)


def test_test_split_english(flickr8k_dir, cache_dir):
    bench = load_flickr8k(cfg(flickr8k_dir, cache_dir))
    assert (bench.name, bench.split) == ("flickr8k-en", "test")
    assert [i.id for i in bench.images] == ["a.jpg", "b.jpg"]
    assert bench.images[0].path == (flickr8k_dir / "images" / "a.jpg").resolve()
    assert [c.id for c in bench.captions] == ["a.jpg#0", "a.jpg#1", "b.jpg#0", "b.jpg#1"]
    assert bench.captions[0].text == 'A "quoted" photo a number 0 .'  # TSV: quotes are plain characters
    assert {c.language for c in bench.captions} == {"en"}


def test_chinese_unsorted_and_other_splits(flickr8k_dir, cache_dir):
    bench = load_flickr8k(cfg(flickr8k_dir, cache_dir, language="zh", split="test"))
    assert sorted(c.id for c in bench.captions) == ["a.jpg#0", "a.jpg#1", "b.jpg#0", "b.jpg#1"]
    assert {c.image_id: c.text for c in bench.captions}["a.jpg"].startswith("图片a")
    assert [[bench.captions[p].image_id for p in pos] for pos in bench.image_to_texts()] == [["a.jpg"] * 2, ["b.jpg"] * 2]
    assert [i.id for i in load_flickr8k(cfg(flickr8k_dir, cache_dir, split="train")).images] == ["d.jpg"]
    assert load_flickr8k(cfg(flickr8k_dir, cache_dir, split="val", language="zh")).summary()["captions"] == 2


def test_limit_takes_first_images_of_split_file(flickr8k_dir, cache_dir):
    bench = load_flickr8k(cfg(flickr8k_dir, cache_dir, limit=1))
    assert [i.id for i in bench.images] == ["a.jpg"] and len(bench.captions) == 2


def test_unknown_split_lists_available(flickr8k_dir, cache_dir):
    with pytest.raises(BadInputError, match=r"splits found: test, train, val"):
        load_flickr8k(cfg(flickr8k_dir, cache_dir, split="dev"))


def test_missing_column_names_file_and_columns(flickr8k_dir, cache_dir):
    path = flickr8k_dir / "captions_en.tsv"
    path.write_text(path.read_text().replace("caption_idx", "idx", 1))
    with pytest.raises(BadInputError, match=r"captions_en\.tsv: missing column 'caption_idx' \(columns found: image, idx, caption\)"):
        load_flickr8k(cfg(flickr8k_dir, cache_dir))


def test_non_utf8_caption_line(flickr8k_dir, cache_dir):
    path = flickr8k_dir / "captions_en.tsv"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b"a.jpg\t1\tA caf\xe9 .\n"  # latin-1 byte in line 3 (caption a.jpg#1)
    path.write_bytes(b"".join(lines))
    with pytest.raises(BadInputError, match=r"captions_en\.tsv:3: caption 'line 3': non-UTF-8 bytes"):
        load_flickr8k(cfg(flickr8k_dir, cache_dir))
    bench = load_flickr8k(cfg(flickr8k_dir, cache_dir, on_bad_input="skip"))
    assert [c.id for c in bench.captions] == ["a.jpg#0", "b.jpg#0", "b.jpg#1"]
    assert [(s.item, s.reason.split(":")[0]) for s in bench.skipped] == [("line 3", "non-UTF-8 bytes")]


def test_duplicate_caption_id_and_missing_image(flickr8k_dir, cache_dir):
    path = flickr8k_dir / "captions_en.tsv"
    path.write_text(path.read_text() + "b.jpg\t1\tsame index again\n")
    with pytest.raises(BadInputError, match=r"caption 'b\.jpg#1': duplicate caption id"):
        load_flickr8k(cfg(flickr8k_dir, cache_dir))
    (flickr8k_dir / "images" / "a.jpg").unlink()
    bench = load_flickr8k(cfg(flickr8k_dir, cache_dir, on_bad_input="skip"))
    assert [i.id for i in bench.images] == ["b.jpg"]
    assert [(s.kind, s.item, s.reason.split(":")[0]) for s in bench.skipped] == [
        ("image", "a.jpg", "missing image file"), ("caption", "a.jpg#0", "image skipped"),
        ("caption", "a.jpg#1", "image skipped"), ("caption", "b.jpg#1", "duplicate caption id")]


def test_split_image_without_captions(flickr8k_dir, cache_dir):
    (flickr8k_dir / "splits" / "test.txt").write_text("a.jpg\nd.jpg\nb.jpg\na.jpg\n")
    path = flickr8k_dir / "captions_en.tsv"
    path.write_text("".join(l for l in path.read_text().splitlines(keepends=True) if not l.startswith("d.jpg")))
    with pytest.raises(BadInputError, match=r"test\.txt:4: image 'a\.jpg': duplicate image id: first listed at .*test\.txt:1"):
        load_flickr8k(cfg(flickr8k_dir, cache_dir))
    bench = load_flickr8k(cfg(flickr8k_dir, cache_dir, on_bad_input="skip"))
    assert [i.id for i in bench.images] == ["a.jpg", "b.jpg"]
    assert [(s.item, s.reason.split(":")[0]) for s in bench.skipped] == [
        ("a.jpg", "duplicate image id"), ("d.jpg", "no captions")]
    (flickr8k_dir / "splits" / "test.txt").write_text("a.jpg\nd.jpg\nb.jpg\n")
    with pytest.raises(BadInputError, match=r"test\.txt:2: image 'd\.jpg': no captions"):
        load_flickr8k(cfg(flickr8k_dir, cache_dir))
