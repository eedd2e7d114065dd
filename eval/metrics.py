"""Retrieval metrics over ranked candidate lists (pure, vectorised numpy; no I/O).

Inputs are ranked candidate arrays ``ranked`` (int, shape ``[Q, N]``): row ``q`` holds gallery
positions, best first; ``-1`` marks padding (no candidate) and may only appear at the end of a row.
A candidate may appear at most once per row. The ranked list of a query is its row without padding;
relevant items that are not in the list count as not retrieved.

Definitions (percent, 0-100, except ``MedR`` and ``MeanR`` which are ranks; ranks are 1-based):

- ``R@K``: 1 if at least one relevant item is in the top K, averaged over queries (the convention
  of CLIP, BLIP, LAVIS and CLIP_benchmark, also called hit@K or success@K).
- ``Recall@K``: ``|relevant in top K| / |relevant|``, averaged over queries (true recall; reported
  for image-to-text, where an image has several captions; for one relevant item it equals R@K).
- ``MRR``: mean of ``1 / rank`` of the first relevant item (0 when none is in the list).
- ``mAP``: mean over queries of average precision: the sum of precision@r over the ranks r of the
  relevant items found in the list, divided by the total number of relevant items.
- ``nDCG@10``: mean over queries of ``DCG@10 / IDCG@10`` with binary gains, ``DCG@10 = sum over the relevant
  items at ranks r <= 10 of 1 / log2(r + 1)`` and ``IDCG@10`` the DCG of ``min(|relevant|, 10)`` relevant items
  at ranks 1, 2, ... (MIEB, BEIR and ranx's ``ndcg@10``).
- ``MedR`` / ``MeanR``: median / mean rank of the first relevant item; a query with no relevant item
  in its list gets rank ``N + 1``. ``MedR`` is ``numpy.median``, so it can end in ``.5``.
- ``rsum``: ``t2i/R@1 + t2i/R@5 + t2i/R@10 + i2t/R@1 + i2t/R@5 + i2t/R@10``.

Metric names carry the direction: ``t2i/R@1``, ``i2t/Recall@5``, ``i2t/mAP``, ``rsum``.
Every query must have at least one relevant item (drop the others before calling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)
NDCG_K = 10
RSUM_KS: tuple[int, ...] = (1, 5, 10)
DIRECTIONS: tuple[str, ...] = ("t2i", "i2t")


def check_ranked(ranked: np.ndarray) -> np.ndarray:
    """Validate a ranked array and return it as int64 ``[Q, N]``.

    Raises ValueError when it is not 2-D integer, holds values below -1, has padding (-1) before a
    real candidate, or repeats a candidate within a row.
    """
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be 2-D [Q, N], got shape {ranked.shape}")
    if ranked.size and not np.issubdtype(ranked.dtype, np.integer):
        raise ValueError(f"ranked must hold integer gallery positions, got dtype {ranked.dtype}")
    ranked = ranked.astype(np.int64, copy=False)
    if ranked.size == 0:
        return ranked
    if ranked.min() < -1:
        raise ValueError("ranked holds values below -1 (-1 is the only padding value)")
    pad = ranked < 0
    bad_rows = np.flatnonzero(np.any(pad[:, :-1] & ~pad[:, 1:], axis=1))
    if bad_rows.size:
        raise ValueError(f"padding (-1) before a real candidate in row {int(bad_rows[0])}")
    ordered = np.sort(ranked, axis=1)
    dup = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    dup_rows = np.flatnonzero(dup.any(axis=1))
    if dup_rows.size:
        raise ValueError(f"row {int(dup_rows[0])} of ranked lists the same candidate twice")
    return ranked


def hits_single_relevant(ranked: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relevance matrix when each query has exactly one relevant item (text-to-image).

    Args:
        ranked: int ``[Q, N]`` gallery positions, best first, -1 padding.
        relevant: int ``[Q]``, the relevant gallery position of each query (>= 0).

    Returns:
        ``hits`` bool ``[Q, N]`` and ``num_relevant`` int64 ``[Q]`` (all ones).
    """
    ranked = check_ranked(ranked)
    relevant = np.asarray(relevant)
    if relevant.shape != (ranked.shape[0],):
        raise ValueError(f"relevant must have shape [{ranked.shape[0]}], got {relevant.shape}")
    if relevant.size and not np.issubdtype(relevant.dtype, np.integer):
        raise ValueError(f"relevant must hold integer positions, got dtype {relevant.dtype}")
    if relevant.size and relevant.min() < 0:
        raise ValueError(f"relevant holds a negative position at query {int(np.argmin(relevant))}")
    hits = ranked == relevant.astype(np.int64)[:, None]
    return hits, np.ones(ranked.shape[0], dtype=np.int64)


def hits_multi_relevant(
    ranked: np.ndarray, relevant: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Relevance matrix when a query may have several relevant items (image-to-text).

    Args:
        ranked: int ``[Q, N]`` gallery positions, best first, -1 padding.
        relevant: Q integer arrays; ``relevant[q]`` lists the relevant gallery positions of query q
            (duplicates are counted once; each must be non-empty and >= 0).

    Returns:
        ``hits`` bool ``[Q, N]`` and ``num_relevant`` int64 ``[Q]`` (distinct relevant items).
    """
    ranked = check_ranked(ranked)
    num_queries = ranked.shape[0]
    if len(relevant) != num_queries:
        raise ValueError(f"relevant must list {num_queries} arrays (one per query), got {len(relevant)}")
    lengths = np.array([np.size(r) for r in relevant], dtype=np.int64)
    if num_queries == 0:
        return np.zeros(ranked.shape, dtype=bool), lengths
    rel_flat = np.concatenate([np.asarray(r).ravel() for r in relevant])
    if rel_flat.size and not np.issubdtype(rel_flat.dtype, np.integer):
        raise ValueError(f"relevant must hold integer positions, got dtype {rel_flat.dtype}")
    rel_flat = rel_flat.astype(np.int64, copy=False)
    if rel_flat.size and rel_flat.min() < 0:
        raise ValueError("relevant holds a negative position")
    # Encode (query, item) pairs as one int64 key; dedupe and test membership on flat arrays.
    width = int(max(ranked.max(initial=-1), rel_flat.max(initial=-1))) + 2
    query_of = np.repeat(np.arange(num_queries, dtype=np.int64), lengths)
    rel_keys = np.unique(query_of * width + rel_flat)
    num_relevant = np.bincount(rel_keys // width, minlength=num_queries).astype(np.int64)
    run_keys = np.arange(num_queries, dtype=np.int64)[:, None] * width + ranked
    hits = np.isin(run_keys, rel_keys, assume_unique=True, kind="sort") & (ranked >= 0)
    return hits, num_relevant


def first_relevant_rank(hits: np.ndarray) -> np.ndarray:
    """1-based rank of the first relevant item per query; ``N + 1`` when none is in the list."""
    hits = np.asarray(hits, dtype=bool)
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1) + 1, hits.shape[1] + 1).astype(np.int64)


def ranking_metrics(
    hits: np.ndarray,
    num_relevant: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
    true_recall: bool = False,
    prefix: str = "",
) -> dict[str, float]:
    """All metrics of the module docstring from a relevance matrix.

    Args:
        hits: bool ``[Q, N]``; ``hits[q, j]`` is True when the item at rank ``j + 1`` is relevant.
        num_relevant: int ``[Q]``, number of relevant items of each query (>= 1 and >= hits per row).
        ks: cut-offs for ``R@K`` (and ``Recall@K``).
        true_recall: also report ``Recall@K``.
        prefix: prepended to every name, e.g. ``"t2i/"``.

    Returns:
        ``{prefix + "R@K": ..., prefix + "MRR": ..., prefix + "mAP": ..., prefix + "MedR": ...,
        prefix + "MeanR": ...}`` plus ``Recall@K`` when asked; plain Python floats.
    """
    hits = np.asarray(hits, dtype=bool)
    num_relevant = np.asarray(num_relevant, dtype=np.int64)
    if hits.ndim != 2 or num_relevant.shape != (hits.shape[0],):
        raise ValueError(f"hits must be [Q, N] and num_relevant [Q]; got {hits.shape} and {num_relevant.shape}")
    if hits.shape[0] == 0:
        raise ValueError("no queries to evaluate")
    if num_relevant.min() < 1:
        raise ValueError(f"query {int(np.argmin(num_relevant))} has no relevant item; drop such queries first")
    counts = hits.sum(axis=1)
    if np.any(counts > num_relevant):
        raise ValueError("a query has more hits than relevant items (num_relevant too small)")
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"cut-offs must be >= 1, got {list(ks)}")

    values = per_query_values(hits, num_relevant, ks, true_recall)
    out = {f"{prefix}{name}": float(np.mean(column) * 100.0) for name, column in values.items() if name != "rank"}
    out[f"{prefix}MedR"] = float(np.median(values["rank"]))
    out[f"{prefix}MeanR"] = float(np.mean(values["rank"]))
    return out


def per_query_values(hits: np.ndarray, num_relevant: np.ndarray, ks: Sequence[int] = DEFAULT_KS,
                     true_recall: bool = False) -> dict[str, np.ndarray]:
    """Each query's value of each metric (fractions in [0, 1], not percent), float64 ``[Q]`` per name, in the
    order ``R@K`` (for each K), ``Recall@K`` (when asked), ``MRR``, ``mAP``, ``nDCG@10``, plus ``rank``: the
    1-based rank of the first relevant item (``N + 1`` when none is listed). The mean of a column times 100 is
    the metric of :func:`ranking_metrics`; significance tests and confidence intervals resample these columns.
    """
    hits = np.asarray(hits, dtype=bool)
    first = first_relevant_rank(hits)
    found = first <= hits.shape[1]
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"R@{k}"] = (found & (first <= k)).astype(np.float64)
    if true_recall:
        cum_hits = np.cumsum(hits, axis=1)
        for k in ks:
            in_top_k = cum_hits[:, min(int(k), hits.shape[1]) - 1] if hits.shape[1] else np.zeros(len(hits))
            out[f"Recall@{k}"] = in_top_k / np.asarray(num_relevant, dtype=np.float64)
    out["MRR"] = np.where(found, 1.0 / first, 0.0)
    out["mAP"] = average_precision(hits, num_relevant)
    out[f"nDCG@{NDCG_K}"] = ndcg(hits, num_relevant, NDCG_K)
    out["rank"] = first.astype(np.float64)
    return out


def ndcg(hits: np.ndarray, num_relevant: np.ndarray, k: int = NDCG_K) -> np.ndarray:
    """Per-query nDCG@k with binary gains (fraction), float64 ``[Q]``; see the module docstring."""
    hits = np.asarray(hits, dtype=bool)[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(np.asarray(num_relevant, dtype=np.int64), k) - 1]
    return dcg / ideal


def average_precision(hits: np.ndarray, num_relevant: np.ndarray) -> np.ndarray:
    """Per-query average precision (fraction, not percent), float64 ``[Q]``.

    ``AP_q = sum over ranks r with hits[q, r-1] of precision@r, divided by num_relevant[q]``.
    """
    hits = np.asarray(hits, dtype=bool)
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    precision_at_r = np.cumsum(hits, axis=1, dtype=np.float64) / ranks
    return np.where(hits, precision_at_r, 0.0).sum(axis=1) / np.asarray(num_relevant, dtype=np.float64)


def recall_curve(hits: np.ndarray) -> np.ndarray:
    """``R@K`` (hit, percent) for K = 1..N, float64 ``[N]``; entry ``K - 1`` is ``R@K``."""
    hits = np.asarray(hits, dtype=bool)
    num_queries, depth = hits.shape
    if num_queries == 0:
        raise ValueError("no queries to evaluate")
    first = first_relevant_rank(hits)
    per_rank = np.bincount(first, minlength=depth + 2)[1 : depth + 1]
    return np.cumsum(per_rank) / num_queries * 100.0


def text_to_image_metrics(
    ranked: np.ndarray, relevant_image: np.ndarray, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Text-to-image metrics (``t2i/...``): one relevant image per caption query.

    ``ranked`` int ``[Q, N]`` image positions; ``relevant_image`` int ``[Q]``.
    """
    hits, num_relevant = hits_single_relevant(ranked, relevant_image)
    return ranking_metrics(hits, num_relevant, ks, true_recall=False, prefix="t2i/")


def image_to_text_metrics(
    ranked: np.ndarray, relevant_captions: Sequence[np.ndarray], ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Image-to-text metrics (``i2t/...``, with ``Recall@K``): several relevant captions per image.

    ``ranked`` int ``[Q, N]`` caption positions; ``relevant_captions``: Q int arrays.
    """
    hits, num_relevant = hits_multi_relevant(ranked, relevant_captions)
    return ranking_metrics(hits, num_relevant, ks, true_recall=True, prefix="i2t/")


def rsum(metrics: Mapping[str, float], prefix: str = "") -> float:
    """``t2i R@1+R@5+R@10 + i2t R@1+R@5+R@10`` read from a metrics dict (keys ``prefix + "t2i/R@1"``...)."""
    names = [f"{prefix}{d}/R@{k}" for d in DIRECTIONS for k in RSUM_KS]
    missing = [n for n in names if n not in metrics]
    if missing:
        raise KeyError(f"rsum needs {missing}")
    return float(sum(metrics[n] for n in names))


def retrieval_metrics(
    t2i_ranked: np.ndarray,
    relevant_image: np.ndarray,
    i2t_ranked: np.ndarray,
    relevant_captions: Sequence[np.ndarray],
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, float]:
    """Both directions and ``rsum`` in one flat dict (``t2i/...``, ``i2t/...``, ``rsum``).

    ``ks`` must include 1, 5 and 10 (needed by ``rsum``).
    """
    out = text_to_image_metrics(t2i_ranked, relevant_image, ks)
    out.update(image_to_text_metrics(i2t_ranked, relevant_captions, ks))
    out["rsum"] = rsum(out)
    return out


def recall_curves(
    t2i_ranked: np.ndarray,
    relevant_image: np.ndarray,
    i2t_ranked: np.ndarray,
    relevant_captions: Sequence[np.ndarray],
) -> dict[str, list[float]]:
    """``{"t2i": [R@1..R@N], "i2t": [R@1..R@N]}`` as plain lists (the results.json ``curves`` entry)."""
    t2i_hits, _ = hits_single_relevant(t2i_ranked, relevant_image)
    i2t_hits, _ = hits_multi_relevant(i2t_ranked, relevant_captions)
    return {"t2i": recall_curve(t2i_hits).tolist(), "i2t": recall_curve(i2t_hits).tolist()}
