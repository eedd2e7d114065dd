"""Stage-2 work shared by image between processes: every pair of an image goes to one process, loads balance,
and a process's share scored in the one-process batches and padding has the one-process bits (the property the
two-process run of ``tests/eval/runner/test_distributed.py`` relies on)."""

from __future__ import annotations

import numpy as np

from stage2_rerank.pair_batching import pad_token_batch, planned_batches
from stage2_rerank.pair_scoring import score_missing_pairs
from stage2_rerank.rerank import load_reranker
from stage2_rerank.shared_scoring import assign_images
from stage2_rerank.types import RerankStats
from tests.stage2_rerank.helpers import make_captions


def test_assign_images_keeps_an_image_on_one_process_in_vision_batches_balanced_by_pairs():
    image_of_pair = list("aaaabbbccdde")
    owners: dict[str, int] = {}
    owner = assign_images(image_of_pair, owners, 2, 2)
    # runs of 2 new images in first-seen order: (a, b) 7 pairs, (c, d) 4, (e) 1
    assert owners == {"a": 0, "b": 0, "c": 1, "d": 1, "e": 1}
    assert owner.tolist() == [owners[i] for i in image_of_pair]
    again = assign_images(list("eexxa"), owners, 2, 2)  # known images stay; x joins the lighter process
    assert owners["x"] == 0 and again.tolist() == [1, 1, 0, 0, 0]  # e: 2 pairs on 1, a: 1 on 0


def test_planned_batches_keep_the_one_process_padding_of_each_kept_item():
    order = np.array([3, 0, 2, 1, 4])
    lengths = np.array([5, 9, 6, 2, 9])  # by item
    owned = np.array([True, False, False, True, True])
    # one-process batches of 2 over order: [3, 0] (pad 5), [2, 1] (pad 9), [4] (pad 9)
    plan = planned_batches(order, lengths, 2, owned)
    assert [(items.tolist(), pad) for items, pad in plan] == [([3, 0], 5), ([4], 9)]
    ids, mask = pad_token_batch([[1, 2]], 0, "cpu", 4)
    assert ids.tolist() == [[1, 2, 0, 0]] and mask.tolist() == [[1, 1, 0, 0]]


def test_two_shares_scored_apart_have_the_bits_of_scoring_all_pairs_at_once(tiny_config, tiny_images):
    captions = make_captions(9, seed=2)
    rng = np.random.default_rng(0)
    pairs = np.array(sorted({(int(i), int(c)) for i, c in zip(rng.integers(0, 6, 40), rng.integers(0, 9, 40))}))
    owner = assign_images([str(i) for i in pairs[:, 0]], {}, 2, 2)  # vision_batch_size=2

    def score(owned):
        with load_reranker(tiny_config(pair_batch_size=5)) as reranker:
            prints = {i: image.fingerprint() for i, image in enumerate(tiny_images)}
            stats = RerankStats()
            mine = pairs[:, 0] if owned is None else pairs[owned, 0]
            reranker.encode_images(tiny_images, mine.tolist(), prints, stats, False)
            logits = np.full((len(pairs), 2), np.nan, np.float32)
            itc = np.full(len(pairs), np.nan, np.float32)

            def on_batch(positions, batch_logits, batch_itc):
                logits[positions], itc[positions] = batch_logits, batch_itc

            score_missing_pairs(reranker.model, lambda i: reranker.features.get(prints[i]), captions, pairs,
                                reranker.config, 5, on_batch, stats, False, owned=owned)
            return logits, itc, stats.images_encoded

    all_logits, all_itc, _ = score(None)
    shares = [score(owner == rank) for rank in (0, 1)]
    logits, itc = all_logits.copy() * np.nan, all_itc.copy() * np.nan
    for rank, (part_logits, part_itc, _) in enumerate(shares):
        mine = owner == rank
        assert np.isnan(part_itc[~mine]).all()
        logits[mine], itc[mine] = part_logits[mine], part_itc[mine]
    assert logits.tobytes() == all_logits.tobytes() and itc.tobytes() == all_itc.tobytes()
    assert sum(encoded for _, _, encoded in shares) == len(np.unique(pairs[:, 0]))
