"""Hugging Face datasets: local save_to_disk directories (embedded images, paths), hub name offline."""

import io

import datasets
import numpy as np
import pytest
from PIL import Image

from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.hf_datasets import HubUnavailableError, load_hf

from .conftest import write_image

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def png_bytes(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def embedded(tmp_path):
    """A DatasetDict (test, train): Image column, caption lists, a split column (flickr30k on the hub style)."""
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.List(datasets.Value("string")),
                                  "sentids": datasets.List(datasets.Value("string")), "split": datasets.Value("string")})
    test = datasets.Dataset.from_dict({
        "image": [{"bytes": png_bytes(c), "path": f"{k}.png"} for k, c in enumerate(COLOURS)],
        "caption": [["red a", "red b"], ["green a", "green b"], ["blue a", "  "]],
        "sentids": [["s0", "s1"], ["s2", "s3"], ["s4", "s5"]],
        "split": ["test", "test", "val"],
    }, features=features)
    train = test.select([0])
    path = tmp_path / "hf_dict"
    datasets.DatasetDict({"test": test, "train": train}).save_to_disk(str(path))
    return path


def cfg(name, cache_dir, **kw) -> DatasetConfig:
    return DatasetConfig(format="hf", hf_dataset=str(name), cache_dir=cache_dir, **kw)


def test_embedded_images_and_caption_lists(embedded, cache_dir):
    bench = load_hf(cfg(embedded, cache_dir, hf_split="test", split_column="split", split="test",
                        caption_id_column="sentids"))
    assert (bench.name, bench.split) == ("hf_dict", "test")
    assert [i.id for i in bench.images] == ["0.png", "1.png"]
    assert [(c.id, c.text, c.image_id) for c in bench.captions] == [
        ("s0", "red a", "0.png"), ("s1", "red b", "0.png"), ("s2", "green a", "1.png"), ("s3", "green b", "1.png")]
    for img, colour in zip(bench.images, COLOURS):
        assert img.path.is_relative_to(cache_dir / "hf_images")
        assert np.asarray(img.open())[0, 0].tolist() == list(colour)


def test_split_selection_and_default_ids(embedded, cache_dir):
    with pytest.raises(BadInputError, match=r"hf_split None not found \(splits found: test, train\)"):
        load_hf(cfg(embedded, cache_dir))
    with pytest.raises(BadInputError, match=r"empty caption"):
        load_hf(cfg(embedded, cache_dir, hf_split="test"))
    bench = load_hf(cfg(embedded, cache_dir, hf_split="test", on_bad_input="skip", limit=2))
    assert [c.id for c in bench.captions] == ["0#0", "0#1", "1#0", "1#1"] and len(bench.images) == 2
    bench = load_hf(cfg(embedded, cache_dir, hf_split="test", on_bad_input="skip"))
    assert [(s.item, s.reason) for s in bench.skipped] == [("2#1", "empty caption")]


def test_single_dataset_pil_and_one_row_per_caption(tmp_path, cache_dir):
    """Rows repeating the same image (no path) merge by content; PIL images are accepted."""
    ds = datasets.Dataset.from_dict({
        "img": [Image.new("RGB", (6, 6), COLOURS[0]), Image.new("RGB", (6, 6), COLOURS[0]),
                Image.new("RGB", (6, 6), COLOURS[2])],
        "text": ["first", "second", "third"]})
    ds.save_to_disk(str(tmp_path / "single"))
    bench = load_hf(cfg(tmp_path / "single", cache_dir, image_column="img", caption_column="text"))
    assert bench.split == "all" and len(bench.images) == 2
    assert [c.image_id for c in bench.captions][0] == [c.image_id for c in bench.captions][1]
    assert len(bench.images[0].id) == 16  # content hash


def test_path_column_needs_root_and_stays_inside(tmp_path, cache_dir):
    write_image(tmp_path / "imgs" / "a.png")
    ds = datasets.Dataset.from_dict({"file": ["a.png", "../escape.png"], "caption": ["a", "b"]})
    ds.save_to_disk(str(tmp_path / "paths"))
    with pytest.raises(ValueError, match="holds image paths; set 'root'"):
        load_hf(cfg(tmp_path / "paths", cache_dir, image_column="file"))
    with pytest.raises(BadInputError, match=r"row 1: image '\.\./escape\.png': path escapes dataset root"):
        load_hf(cfg(tmp_path / "paths", cache_dir, image_column="file", root=tmp_path / "imgs"))
    bench = load_hf(cfg(tmp_path / "paths", cache_dir, image_column="file", root=tmp_path / "imgs", on_bad_input="skip"))
    assert [i.id for i in bench.images] == ["a.png"] and bench.images[0].path == (tmp_path / "imgs" / "a.png").resolve()


def test_missing_column_and_undecodable_bytes(tmp_path, cache_dir):
    ds = datasets.Dataset.from_dict({"image": [{"bytes": b"not an image", "path": "x.jpg"}], "text": ["t"]},
                                    features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")}))
    ds.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(BadInputError, match=r"missing column 'caption' \(columns found: image, text\)"):
        load_hf(cfg(tmp_path / "bad", cache_dir))
    with pytest.raises(BadInputError, match=r"row 0: image 'x\.jpg': undecodable image"):
        load_hf(cfg(tmp_path / "bad", cache_dir, caption_column="text"))


def test_hub_name_offline_gives_clear_error(cache_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(HubUnavailableError, match=r"'rrbench-tests/no-such-dataset'.*save_to_disk.*local directory"):
        load_hf(cfg("rrbench-tests/no-such-dataset", cache_dir))
