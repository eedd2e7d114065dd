"""Benchmark ground truth, id checks and the skip policy."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.data.bad_input import BadInputLog, resolve_under
from eval.data.benchmark import BadInputError, Benchmark, CaptionItem, ImageItem


def make(tmp_path: Path, n_images=3, caps_per_image=2):
    images = []
    for i in range(n_images):
        path = tmp_path / f"im{i}.png"
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(path)
        images.append(ImageItem(f"im{i}", path))
    captions = [CaptionItem(f"im{i}#{k}", f"caption {i} {k}", f"im{i}")
                for i in range(n_images) for k in range(caps_per_image)]
    return images, captions


def test_ground_truth_both_directions(tmp_path):
    images, captions = make(tmp_path)
    captions = captions[::-1]  # order must not matter
    bench = Benchmark("t", "test", images, captions)
    t2i = bench.text_to_image()
    assert t2i.dtype == np.int64
    assert [images[j].id for j in t2i] == [c.image_id for c in captions]
    i2t = bench.image_to_texts()
    assert [sorted(captions[p].id for p in pos) for pos in i2t] == [["im0#0", "im0#1"], ["im1#0", "im1#1"], ["im2#0", "im2#1"]]


def test_duplicate_and_unknown_ids_raise(tmp_path):
    images, captions = make(tmp_path)
    with pytest.raises(BadInputError, match="duplicate image id 'im0'"):
        Benchmark("t", "test", images + [images[0]], captions)
    with pytest.raises(BadInputError, match="duplicate caption id 'im1#0'"):
        Benchmark("t", "test", images, captions + [captions[2]])
    with pytest.raises(BadInputError, match="unknown image 'nope'"):
        Benchmark("t", "test", images, captions + [CaptionItem("x", "y", "nope")])


def test_images_without_captions_dropped_on_request(tmp_path):
    images, captions = make(tmp_path)
    bench = Benchmark("t", "test", images, [c for c in captions if c.image_id != "im1"])
    assert [i.id for i in bench.drop_images_without_captions().images] == ["im0", "im2"]


def test_fingerprint_is_content_hash(tmp_path):
    images, _ = make(tmp_path, n_images=2)
    same = tmp_path / "copy.png"
    same.write_bytes(images[0].path.read_bytes())
    assert ImageItem("c", same).fingerprint() == images[0].fingerprint() != images[1].fingerprint()
    with pytest.raises(BadInputError, match="not found"):
        ImageItem("m", tmp_path / "missing.png").fingerprint()


def test_bad_input_log_policies(tmp_path):
    with pytest.raises(BadInputError, match=r"data\.csv: image 'a\.jpg': missing"):
        BadInputLog("error").bad("image", "a.jpg", "data.csv", "missing")
    log = BadInputLog("skip")
    log.bad("caption", "7", "data.csv:8", "empty caption")
    assert [r.as_dict() for r in log.records] == [
        {"kind": "caption", "item": "7", "source": "data.csv:8", "reason": "empty caption"}]
    with pytest.raises(ValueError):
        BadInputLog("ignore")  # type: ignore[arg-type]


def test_resolve_under_rejects_escapes(tmp_path):
    assert resolve_under(tmp_path, "a/b.jpg") == (tmp_path / "a/b.jpg").resolve()
    assert resolve_under(tmp_path, "../x.jpg") is None
    assert resolve_under(tmp_path, "/etc/passwd") is None
