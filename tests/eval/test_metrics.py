"""eval.metrics against a brute-force reference, against ranx, and against the LAVIS convention."""

import math

import numpy as np
import pytest

from eval import metrics
from eval.metrics import (
    check_ranked,
    hits_multi_relevant,
    image_to_text_metrics,
    ranking_metrics,
    recall_curve,
    recall_curves,
    retrieval_metrics,
    text_to_image_metrics,
)

KS = (1, 2, 5, 10, 20, 30)


def random_case(seed: int, num_queries: int = 150, gallery: int = 60, depth: int = 20):
    """Random rankings with padded rows and 1-6 relevant items per query, some outside the list."""
    rng = np.random.default_rng(seed)
    ranked = np.full((num_queries, depth), -1, dtype=np.int64)
    relevant = []
    for q in range(num_queries):
        length = depth if q % 4 else int(rng.integers(0, depth + 1))
        length = 0 if q == 4 else length  # always one query with an empty list
        ranked[q, :length] = rng.choice(gallery, size=length, replace=False)
        rel = rng.choice(gallery, size=int(rng.integers(1, 7)), replace=False)
        if q % 5 == 0 and length:  # make sure many queries do have hits near the top
            rel[0] = ranked[q, int(rng.integers(0, min(length, 3)))]
        relevant.append(rel)
    return ranked, relevant


def brute_force(ranked, relevant, ks, true_recall):
    """Pure-Python reference, one query at a time, straight from the definitions."""
    per_query = {f"R@{k}": [] for k in ks}
    per_query.update({f"Recall@{k}": [] for k in ks})
    per_query.update(MRR=[], mAP=[], first=[], ndcg=[])
    depth = len(ranked[0])
    for row, rel in zip(ranked.tolist(), relevant):
        rel = {int(r) for r in np.atleast_1d(rel)}
        items = [x for x in row if x >= 0]
        first = next((i + 1 for i, x in enumerate(items) if x in rel), depth + 1)
        for k in ks:
            top = items[:k]
            per_query[f"R@{k}"].append(1.0 if any(x in rel for x in top) else 0.0)
            per_query[f"Recall@{k}"].append(sum(x in rel for x in top) / len(rel))
        per_query["MRR"].append(1.0 / first if first <= depth else 0.0)
        found, precisions = 0, []
        for i, x in enumerate(items):
            if x in rel:
                found += 1
                precisions.append(found / (i + 1))
        per_query["mAP"].append(sum(precisions) / len(rel))
        dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(items[:10]) if x in rel)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), 10)))
        per_query["ndcg"].append(dcg / ideal)
        per_query["first"].append(first)
    out = {}
    for k in ks:
        out[f"R@{k}"] = 100 * sum(per_query[f"R@{k}"]) / len(ranked)
        if true_recall:
            out[f"Recall@{k}"] = 100 * sum(per_query[f"Recall@{k}"]) / len(ranked)
    out["MRR"] = 100 * sum(per_query["MRR"]) / len(ranked)
    out["mAP"] = 100 * sum(per_query["mAP"]) / len(ranked)
    out["nDCG@10"] = 100 * sum(per_query["ndcg"]) / len(ranked)
    firsts = sorted(per_query["first"])
    mid = len(firsts) // 2
    out["MedR"] = firsts[mid] if len(firsts) % 2 else (firsts[mid - 1] + firsts[mid]) / 2
    out["MeanR"] = sum(firsts) / len(firsts)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_image_to_text_matches_brute_force(seed):
    ranked, relevant = random_case(seed)
    ours = image_to_text_metrics(ranked, relevant, ks=KS)
    ref = brute_force(ranked, relevant, KS, true_recall=True)
    assert set(ours) == {f"i2t/{name}" for name in ref}
    for name, value in ref.items():
        assert ours[f"i2t/{name}"] == pytest.approx(value, abs=1e-9), name
    # The random case must exercise the interesting branches.
    assert 0 < ours["i2t/R@1"] < ours["i2t/R@30"] < 100
    assert ours["i2t/Recall@5"] < ours["i2t/R@5"]


@pytest.mark.parametrize("seed", [3, 4])
def test_text_to_image_matches_brute_force(seed):
    ranked, relevant = random_case(seed)
    single = np.array([r[0] for r in relevant])
    ours = text_to_image_metrics(ranked, single, ks=KS)
    ref = brute_force(ranked, [[s] for s in single], KS, true_recall=False)
    assert set(ours) == {f"t2i/{name}" for name in ref}
    for name, value in ref.items():
        assert ours[f"t2i/{name}"] == pytest.approx(value, abs=1e-9), name
    assert ours["t2i/mAP"] == pytest.approx(ours["t2i/MRR"])  # one relevant item: AP = RR


def test_duplicate_relevant_items_count_once():
    ranked = np.array([[3, 1, 2]])
    once = image_to_text_metrics(ranked, [np.array([1, 7])])
    twice = image_to_text_metrics(ranked, [np.array([1, 1, 7])])
    assert once == twice
    assert once["i2t/Recall@5"] == pytest.approx(50.0)
    assert once["i2t/mAP"] == pytest.approx(25.0)  # precision 1/2 at rank 2, two relevant items


@pytest.mark.parametrize("seed", [5, 6])
def test_matches_ranx(seed):
    ranx = pytest.importorskip("ranx")
    ranked, relevant = random_case(seed)
    depth = ranked.shape[1]
    qrels = {f"q{q}": {f"d{int(d)}": 1 for d in rel} for q, rel in enumerate(relevant)}
    # Strictly decreasing scores, so ranx's sort by score reproduces our order (no ties to break).
    # Queries with an empty list are left out of the run; ranx then scores them 0 (make_comparable).
    run = {
        f"q{q}": {f"d{int(d)}": float(depth - j) for j, d in enumerate(row) if d >= 0}
        for q, row in enumerate(ranked)
        if row[0] >= 0
    }
    assert len(run) < len(qrels)
    names = [f"hit_rate@{k}" for k in KS] + [f"recall@{k}" for k in KS] + ["mrr", "map", "ndcg@10"]
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), names, make_comparable=True)
    ours = image_to_text_metrics(ranked, relevant, ks=KS)
    for k in KS:
        assert ours[f"i2t/R@{k}"] == pytest.approx(100 * theirs[f"hit_rate@{k}"])
        assert ours[f"i2t/Recall@{k}"] == pytest.approx(100 * theirs[f"recall@{k}"])
    assert ours["i2t/MRR"] == pytest.approx(100 * theirs["mrr"])
    assert ours["i2t/mAP"] == pytest.approx(100 * theirs["map"])
    assert ours["i2t/nDCG@10"] == pytest.approx(100 * theirs["ndcg@10"])
    assert 0 < ours["i2t/nDCG@10"] < 100


# A hand-made similarity matrix: 3 images, 6 captions, captions 2i and 2i+1 describe image i.
SIMS_I2T = np.array(
    [
        [0.90, 0.10, 0.30, 0.20, 0.50, 0.40],  # image 0: caption 0 first            -> best rank 1
        [0.80, 0.70, 0.10, 0.60, 0.20, 0.30],  # image 1: captions 0, 1, then 3      -> best rank 3
        [0.20, 0.30, 0.40, 0.10, 0.05, 0.90],  # image 2: caption 5 first            -> best rank 1
    ]
)
TXT2IMG = np.array([0, 0, 1, 1, 2, 2])
IMG2TXT = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])]


def lavis_style_r_at_k(sims_i2t, img2txt, txt2img, ks):
    """The LAVIS evaluation loop, written out: ranks over the full similarity ranking, 0-based.

    Image-to-text rank of an image = the best (minimum) rank among its captions; R@K is the
    percentage of queries whose rank is < K.
    """
    i2t_ranks = []
    for img, row in enumerate(sims_i2t):
        order = np.argsort(row)[::-1]
        i2t_ranks.append(min(int(np.where(order == t)[0][0]) for t in img2txt[img]))
    t2i_ranks = []
    for txt, col in enumerate(sims_i2t.T):
        order = np.argsort(col)[::-1]
        t2i_ranks.append(int(np.where(order == txt2img[txt])[0][0]))
    i2t_ranks, t2i_ranks = np.array(i2t_ranks), np.array(t2i_ranks)
    i2t = {k: 100.0 * np.mean(i2t_ranks < k) for k in ks}
    t2i = {k: 100.0 * np.mean(t2i_ranks < k) for k in ks}
    return i2t, t2i


def test_lavis_convention_on_hand_made_case():
    ks = (1, 2, 3, 5)
    lavis_i2t, lavis_t2i = lavis_style_r_at_k(SIMS_I2T, IMG2TXT, TXT2IMG, ks)
    i2t_ranked = np.argsort(-SIMS_I2T, axis=1, kind="stable")
    t2i_ranked = np.argsort(-SIMS_I2T.T, axis=1, kind="stable")
    ours = {**image_to_text_metrics(i2t_ranked, IMG2TXT, ks), **text_to_image_metrics(t2i_ranked, TXT2IMG, ks)}
    for k in ks:
        assert ours[f"i2t/R@{k}"] == pytest.approx(lavis_i2t[k])
        assert ours[f"t2i/R@{k}"] == pytest.approx(lavis_t2i[k])
    # And the values worked out by hand from the comments above.
    assert ours["i2t/R@1"] == pytest.approx(200 / 3)
    assert ours["i2t/R@3"] == pytest.approx(100.0)
    assert ours["i2t/Recall@1"] == pytest.approx(100 / 3)  # halves for images 0 and 2, none for image 1
    assert ours["i2t/MedR"] == 1.0
    # Text-to-image ranks of captions 0..5: 1, 3, 3, 1, 3, 1.
    assert ours["t2i/R@1"] == pytest.approx(50.0)
    assert ours["t2i/R@2"] == pytest.approx(50.0)
    assert ours["t2i/MRR"] == pytest.approx(100 * (3 * 1 + 3 / 3) / 6)
    assert ours["t2i/MedR"] == 2.0
    # Truncated to the top 2 candidates: captions with rank 3 are "not in the list" (rank N + 1).
    short = text_to_image_metrics(t2i_ranked[:, :2], TXT2IMG, ks)
    assert short["t2i/R@1"] == pytest.approx(50.0) and short["t2i/R@5"] == pytest.approx(50.0)
    assert short["t2i/MRR"] == pytest.approx(50.0)
    assert short["t2i/MeanR"] == pytest.approx((1 + 3 + 3 + 1 + 3 + 1) / 6)


def test_retrieval_metrics_and_rsum():
    i2t_ranked = np.argsort(-SIMS_I2T, axis=1, kind="stable")
    t2i_ranked = np.argsort(-SIMS_I2T.T, axis=1, kind="stable")
    out = retrieval_metrics(t2i_ranked, TXT2IMG, i2t_ranked, IMG2TXT)
    expected = sum(out[f"{d}/R@{k}"] for d in ("t2i", "i2t") for k in (1, 5, 10))
    assert out["rsum"] == pytest.approx(expected)
    assert out["rsum"] == pytest.approx(50 + 100 + 100 + 200 / 3 + 100 + 100)
    assert not any("txt_r" in name or "img_r" in name for name in out)
    with pytest.raises(KeyError, match="t2i/R@10"):
        metrics.rsum({"t2i/R@1": 1.0})


def test_recall_curve_matches_r_at_k():
    ranked, relevant = random_case(7)
    hits, num_relevant = hits_multi_relevant(ranked, relevant)
    curve = recall_curve(hits)
    depth = ranked.shape[1]
    assert curve.shape == (depth,)
    at_k = ranking_metrics(hits, num_relevant, ks=range(1, depth + 1))
    np.testing.assert_allclose(curve, [at_k[f"R@{k}"] for k in range(1, depth + 1)])
    assert np.all(np.diff(curve) >= 0)
    curves = recall_curves(ranked, np.array([r[0] for r in relevant]), ranked, relevant)
    assert set(curves) == {"t2i", "i2t"} and len(curves["i2t"]) == depth
    np.testing.assert_allclose(curves["i2t"], curve)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="padding"):
        check_ranked(np.array([[1, -1, 2]]))
    with pytest.raises(ValueError, match="twice"):
        check_ranked(np.array([[1, 2, 1]]))
    with pytest.raises(ValueError, match="below -1"):
        check_ranked(np.array([[1, -2]]))
    with pytest.raises(ValueError, match="integer"):
        check_ranked(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="no relevant"):
        image_to_text_metrics(np.array([[0, 1]]), [np.array([], dtype=np.int64)])
    with pytest.raises(ValueError, match="shape"):
        text_to_image_metrics(np.array([[0, 1]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="negative"):
        text_to_image_metrics(np.array([[0, 1]]), np.array([-1]))


def test_all_padding_and_no_hits():
    ranked = np.array([[-1, -1], [4, 5]])
    out = image_to_text_metrics(ranked, [np.array([1]), np.array([7, 8])])
    assert out["i2t/R@10"] == 0.0 and out["i2t/MRR"] == 0.0 and out["i2t/mAP"] == 0.0
    assert out["i2t/MedR"] == 3.0  # N + 1
