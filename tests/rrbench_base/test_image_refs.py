"""Both stages take dataset items, PIL images and file paths; anything else is a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eval.data.benchmark import ImageItem
import stage1_dual
import stage2_rerank
from rrbench_base.image_refs import BadImageError, ImageRef, PathImageRef, PilImageRef, as_image_ref, as_image_refs


def test_pil_path_and_item(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    path = tmp_path / "a.png"
    image.save(path)
    item = ImageItem(id="a", path=path)
    refs = as_image_refs([image, path, str(path), item])
    assert isinstance(refs[0], PilImageRef) and isinstance(refs[1], PathImageRef) and refs[3] is item
    assert all(isinstance(ref, ImageRef) for ref in refs)
    assert refs[1].fingerprint() == refs[2].fingerprint() == item.fingerprint()
    assert refs[0].fingerprint() == PilImageRef(Image.fromarray(pixels.copy())).fingerprint()
    assert np.array_equal(np.asarray(refs[0].open()), np.asarray(refs[1].open()))


def test_other_types_are_rejected_by_position():
    with pytest.raises(BadImageError, match="image 3: expected a PIL image, a file path.*got int"):
        as_image_ref(42, 3)


def test_unreadable_path_names_the_file(tmp_path):
    with pytest.raises(BadImageError, match="missing.png"):
        as_image_ref(tmp_path / "missing.png").fingerprint()


def test_unreadable_file_names_the_file_when_opened(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not an image")
    with pytest.raises(BadImageError, match="broken.jpg: cannot be opened"):
        as_image_ref(path).open()


def test_both_stages_export_the_one_adapter():
    for stage in (stage1_dual, stage2_rerank):
        assert stage.as_image_refs is as_image_refs and stage.as_image_ref is as_image_ref
        assert stage.ImageRef is ImageRef and stage.BadImageError is BadImageError
