"""on_bad_input for images that fail to open; invalid pairs and captions."""

from __future__ import annotations

import numpy as np
import pytest

from eval.data.benchmark import ImageItem
from rrbench_base.image_refs import ImageRef
from stage2_rerank.protocols import RerankInputError
from stage2_rerank.rerank import load_reranker


@pytest.fixture
def images_with_a_broken_one(tiny_images, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    return [tiny_images[0], ImageItem(id="broken", path=broken), tiny_images[1]]


PAIRS = np.array([[0, 0], [1, 0], [1, 1], [2, 1]])


def test_image_item_satisfies_the_protocol(tiny_images):
    assert isinstance(tiny_images[0], ImageRef)


def test_error_policy_names_the_file(tiny_config, images_with_a_broken_one):
    with load_reranker(tiny_config()) as reranker:
        with pytest.raises(RerankInputError, match="broken.jpg"):
            reranker.score_pairs(images_with_a_broken_one, ["red cat", "blue dog"], PAIRS, progress=False)


def test_skip_policy_gives_nan_and_records(tiny_config, images_with_a_broken_one):
    with load_reranker(tiny_config(on_bad_input="skip")) as reranker:
        scores = reranker.score_pairs(images_with_a_broken_one, ["red cat", "blue dog"], PAIRS, progress=False)
    assert np.isnan(scores.itm[1:3]).all() and np.isnan(scores.itc[1:3]).all()
    assert np.isfinite(scores.itm[[0, 3]]).all()
    assert [image for image, _ in scores.stats.skipped] == ["broken"]
    assert "broken.jpg" in scores.stats.skipped[0][1]


def test_skip_policy_when_every_image_is_bad(tiny_config, images_with_a_broken_one):
    with load_reranker(tiny_config(on_bad_input="skip")) as reranker:
        scores = reranker.score_pairs(images_with_a_broken_one, ["red cat", "blue dog"], PAIRS[1:3],
                                      progress=False)
    assert np.isnan(scores.itm_logits).all() and scores.stats.scored == 0


def test_missing_file_is_caught_at_fingerprint(tiny_config, tiny_images, tmp_path):
    missing = ImageItem(id="gone", path=tmp_path / "gone.png")
    with load_reranker(tiny_config(on_bad_input="skip")) as reranker:
        scores = reranker.score_pairs([missing, tiny_images[0]], ["a cat"], np.array([[0, 0], [1, 0]]),
                                      progress=False)
    assert np.isnan(scores.itm[0]) and np.isfinite(scores.itm[1])
    assert scores.stats.skipped[0][0] == "gone"


def test_invalid_pairs_and_captions(tiny_config, tiny_images):
    with load_reranker(tiny_config()) as reranker:
        with pytest.raises(RerankInputError, match="out of range"):
            reranker.score_pairs(tiny_images, ["a"], np.array([[0, 1]]), progress=False)
        with pytest.raises(RerankInputError, match=r"integer array \[P, 2\]"):
            reranker.score_pairs(tiny_images, ["a"], np.array([[0.0, 0.0]]), progress=False)
        with pytest.raises(RerankInputError, match="strings"):
            reranker.score_pairs(tiny_images, [3], np.array([[0, 0]]), progress=False)
        empty = reranker.score_pairs(tiny_images, ["a"], np.zeros((0, 2), int), progress=False)
    assert empty.itm_logits.shape == (0, 2)
