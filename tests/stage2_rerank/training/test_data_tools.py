"""Feature store, top-k candidates, in-memory reranking, caption order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rrbench_base.candidates import Candidates
from stage2_rerank.config import FusionConfig
from stage2_rerank.protocols import RerankInputError
from stage2_rerank.training.feature_store import cached_features
from stage2_rerank.training.validation import candidates_from_similarity, rerank_in_memory, top_candidates
from tests.stage2_rerank.training.helpers import tiny_feature_data, tiny_trainable


class CountingProvider:
    """Features = the image's mean colour repeated over 2 positions; counts encoded images."""

    identity = "counting|v1"
    feature_shape = (2, 3)

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, images):
        self.encoded += len(images)
        means = torch.tensor(np.stack([np.asarray(i, dtype=np.float32).mean(axis=(0, 1)) for i in images]))
        return means[:, None, :].repeat(1, 2, 1)


class BrokenImage:
    id = "broken"

    def open(self):
        raise OSError("cannot decode /data/broken.png")

    def fingerprint(self):
        return "deadbeef"


def test_feature_store_computes_once_and_reuses(tmp_path, tiny_images):
    provider = CountingProvider()
    store = cached_features(provider, tiny_images, tmp_path / "store", batch_size=4, progress=False)
    assert store.features.shape == (len(tiny_images), 2, 3) and store.features.dtype == np.float16
    expected = np.asarray(tiny_images[2].open(), dtype=np.float32).mean(axis=(0, 1))
    np.testing.assert_allclose(store.features[2, 1], expected, rtol=1e-3)
    again = cached_features(provider, tiny_images, tmp_path / "store", progress=False)
    assert provider.encoded == len(tiny_images)  # nothing recomputed
    assert again.ids == [i.id for i in tiny_images]
    assert list(again.rows(["img3", "img0"])) == [3, 0]
    cached_features(provider, tiny_images[:3], tmp_path / "store", progress=False)  # other images: recompute
    assert provider.encoded == len(tiny_images) + 3


def test_feature_store_bad_image_policy(tmp_path, tiny_images):
    images = [tiny_images[0], BrokenImage(), tiny_images[1]]
    with pytest.raises(RerankInputError, match="broken"):
        cached_features(CountingProvider(), images, tmp_path / "a", progress=False)
    store = cached_features(CountingProvider(), images, tmp_path / "b", on_bad_input="skip", progress=False)
    assert store.ids == ["img0", "img1"] and store.features.shape[0] == 2
    assert store.skipped[0][0] == "broken" and "cannot decode" in store.skipped[0][1]


def test_top_candidates_match_a_stable_full_sort_including_ties():
    rng = np.random.default_rng(0)
    similarity = rng.integers(0, 4, size=(30, 25)).astype(np.float32)
    for depth in (1, 5, 25, 40):
        ids, scores = top_candidates(similarity, depth)
        reference = np.argsort(-similarity, axis=1, kind="stable")[:, :depth]
        np.testing.assert_array_equal(ids, reference)
        np.testing.assert_array_equal(scores, np.take_along_axis(similarity, reference, axis=1))


def test_candidates_from_similarity_gives_both_directions_as_read_only_candidate_lists():
    similarity = np.random.default_rng(2).normal(size=(7, 4)).astype(np.float32)
    lists = candidates_from_similarity(similarity, 3)
    assert sorted(lists) == ["i2t", "t2i"]
    for direction, matrix in (("t2i", similarity), ("i2t", similarity.T)):
        c = lists[direction]
        assert isinstance(c, Candidates) and c.direction == direction
        ids, scores = top_candidates(matrix, 3)
        np.testing.assert_array_equal(c.ids, ids)
        np.testing.assert_array_equal(c.scores, scores)
        np.testing.assert_array_equal(c.query_positions, np.arange(len(matrix)))
        with pytest.raises(ValueError):
            c.ids[0, 0] = 1


def test_rerank_in_memory_keeps_depth_semantics():
    trainable, processor = tiny_trainable()
    data = tiny_feature_data(processor)
    similarity = np.random.default_rng(1).normal(size=(len(data.caption_tokens), len(data.image_inputs)))
    candidates = candidates_from_similarity(similarity, 6)
    rankings = rerank_in_memory(trainable, data, candidates, depth=3, fusions={"itm": FusionConfig(rule="itm")})
    t2i, i2t = rankings["itm"]
    stage1_t2i = candidates["t2i"].ids
    assert t2i.shape == stage1_t2i.shape and i2t.shape == candidates["i2t"].ids.shape
    np.testing.assert_array_equal(t2i[:, 3:], stage1_t2i[:, 3:])  # below depth: stage-1 order
    np.testing.assert_array_equal(np.sort(t2i[:, :3], axis=1), np.sort(stage1_t2i[:, :3], axis=1))
    assert (t2i[:, :3] != stage1_t2i[:, :3]).any()  # the ITM really reordered something


def test_grouped_caption_order_is_a_permutation_that_keeps_groups_together():
    from stage2_rerank.training.trainable import grouped_caption_order

    caption_image = torch.as_tensor(np.repeat(np.arange(12), 3))
    group = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])
    order = grouped_caption_order(caption_image, group, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(36))
    images = caption_image[order]
    groups_in_order = group[images].tolist()
    for r in range(3):  # each round visits every image once, a group's images consecutively
        round_images = images[r * 12: (r + 1) * 12].tolist()
        assert sorted(round_images) == list(range(12))
        round_groups = groups_in_order[r * 12: (r + 1) * 12]
        runs = [g for i, g in enumerate(round_groups) if i == 0 or g != round_groups[i - 1]]
        assert sorted(runs) == [0, 1, 2, 3, 4]
    again = grouped_caption_order(caption_image, group, torch.Generator().manual_seed(0))
    assert torch.equal(order, again)
