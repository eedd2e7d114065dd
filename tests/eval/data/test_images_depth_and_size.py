"""Images that must simply work (issue 18 case 12): 16-bit/float greyscale scaled to 8 bits, oversized images
loaded but named in the benchmark's notes (results.json), bombs over PIL's error limit refused naming the file."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from eval.data.benchmark import BadInputError, ImageItem
from eval.data.dataset_config import DatasetConfig
from eval.data.tabular import load_table

from .conftest import write_image


def test_16bit_and_float_greyscale_decode_to_their_8bit_values(tmp_path):
    gradient = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)  # 0 .. 64491
    Image.fromarray(gradient).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as raw:
        assert raw.mode == "I;16"
    rgb = np.asarray(ImageItem("g16", tmp_path / "g16.png").open())
    want = (gradient >> 8).astype(np.uint8)
    assert rgb.shape == (48, 64, 3) and (rgb == want[..., None]).all()
    assert abs(rgb.mean() - want.mean()) < 1e-9 and rgb.mean() < 200  # not the all-white of convert("RGB")

    Image.fromarray(gradient.astype(np.int32)).save(tmp_path / "i32.tif")  # mode "I", 16-bit values
    assert (np.asarray(ImageItem("i", tmp_path / "i32.tif").open())[..., 0] == want).all()
    unit = gradient.astype(np.float32) / 65535.0
    Image.fromarray(unit).save(tmp_path / "f.tif")  # mode "F" in [0, 1]
    decoded = np.asarray(ImageItem("f", tmp_path / "f.tif").open())[..., 0].astype(int)
    assert np.abs(decoded - np.rint(unit * 255)).max() <= 1


def load(root, cache_dir, policy="error"):
    (root / "caps.csv").write_text("image,caption\nsmall.png,a small one\nbig.png,a big one\n", encoding="utf-8")
    return load_table(DatasetConfig(format="table", annotations=root / "caps.csv", cache_dir=cache_dir,
                                    on_bad_input=policy))


def test_oversized_image_loads_with_a_note_and_a_bomb_is_refused_naming_the_file(tmp_path, monkeypatch, caplog):
    root = tmp_path / "data"
    write_image(root / "small.png", size=(10, 10))
    write_image(root / "big.png", size=(100, 60))  # 6000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # warning limit 5000, PIL's error limit 10000
    for attempt in range(2):  # the second load reads the verification cache: same note
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            bench = load(root, tmp_path / "cache")
        assert [i.id for i in bench.images] == ["small.png", "big.png"]
        assert [n.as_dict() for n in bench.notes] == [{
            "item": "big.png", "source": str((root / "big.png").resolve()),
            "note": "large image: 6000 pixels, over PIL's decompression-bomb limit of 5000; loaded anyway"}]
        assert bench.summary()["notes"] == [n.as_dict() for n in bench.notes]
        assert "big.png (6000 pixels)" in caplog.text and "small.png" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert bench.images[1].open().size == (100, 60)
    assert "big.png: 6000 pixels, over PIL's decompression-bomb limit" in caplog.text

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2500)  # 6000 > 2 * 2500: PIL refuses to decode
    with pytest.raises(BadInputError, match=r"image 'big\.png': undecodable image: cannot decode image .*big\.png: "
                                            r"Image size \(6000 pixels\) exceeds limit"):
        load(root, tmp_path / "cache2")
    with pytest.raises(BadInputError, match=r"cannot decode image .*big\.png"):
        bench.images[1].open()
    assert load(root, tmp_path / "cache3", "skip").notes == []
