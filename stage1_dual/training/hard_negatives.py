"""Hard-negative mining by similarity: for each query, a random pick among its ``top_k`` most similar
gallery items that are NOT positives of the query, and batches that put such pairs together.

``sample_hard_negatives`` never returns a positive: positives are masked to -inf before the top-k, and
a query whose non-positive gallery is empty gets -1. ``pair_batches`` uses, for every image, one hard
negative image (mined from one of its captions against all images) and places the two in the same
training batch, so the contrastive loss sees confusable pairs as in-batch negatives.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def sample_hard_negatives(queries: torch.Tensor, gallery: torch.Tensor, positives: Sequence[Sequence[int]],
                          top_k: int, rng: np.random.Generator, chunk_size: int = 4096) -> np.ndarray:
    """int64 ``[Q]``: for query ``q``, a gallery position drawn uniformly among its ``top_k`` most similar
    (inner product of ``queries [Q, D]`` and ``gallery [G, D]``) non-positive items; -1 when none.

    ``positives[q]``: gallery positions that are positives of query ``q`` (never returned).
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if len(positives) != len(queries):
        raise ValueError(f"positives has {len(positives)} entries for {len(queries)} queries")
    out = np.full(len(queries), -1, dtype=np.int64)
    k = min(top_k, gallery.shape[0])
    for start in range(0, len(queries), chunk_size):
        scores = (queries[start:start + chunk_size].float() @ gallery.float().T).clone()
        for row in range(scores.shape[0]):
            banned = list(positives[start + row])
            if banned:
                scores[row, banned] = float("-inf")
        values, indices = scores.topk(k, dim=1)
        for row in range(scores.shape[0]):
            allowed = indices[row][torch.isfinite(values[row])].numpy()
            if len(allowed):
                out[start + row] = int(allowed[rng.integers(len(allowed))])
    return out


def pair_batches(order: np.ndarray, partner: np.ndarray, fraction: float, batch_size: int) -> list[np.ndarray]:
    """Image positions of each batch: ``order`` traversed, each image followed (with probability set
    by ``fraction``: the first ``fraction`` of anchors in ``order``) by its unused ``partner``.

    Every image of ``order`` appears exactly once; incomplete last batches are dropped.
    """
    used: set[int] = set()
    sequence: list[int] = []
    with_partner = set(order[: int(round(fraction * len(order)))].tolist())
    allowed = set(order.tolist())
    for image in order.tolist():
        if image in used:
            continue
        sequence.append(image)
        used.add(image)
        mate = int(partner[image]) if image < len(partner) else -1
        if image in with_partner and mate >= 0 and mate in allowed and mate not in used:
            sequence.append(mate)
            used.add(mate)
    batches = len(sequence) // batch_size
    return [np.asarray(sequence[b * batch_size:(b + 1) * batch_size], dtype=np.int64) for b in range(batches)]
