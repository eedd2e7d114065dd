"""Validation helpers for ITM training: rerank stage-1 candidates with the in-memory model (no files, no caches).

- :func:`itc_similarity`: the model's own ITC similarity ``[N_cap, N_img]`` (max over queries of the cosine),
  usable as a stand-in stage 1 when none is given.
- :func:`top_candidates`: the best ``depth`` columns per row of a similarity matrix (best first);
  :func:`candidates_from_similarity`: both directions' lists as ``{"t2i": Candidates, "i2t": Candidates}``
  (:class:`rrbench_base.candidates.Candidates`, the pipeline's candidate-list type).
- :func:`rerank_in_memory`: ITM/ITC scores of the distinct candidate pairs of both directions (each scored
  once) and the final rankings per fusion rule, with the depth semantics of ``fusion.rerank_at_depth``.
Metric computation stays with the caller (``eval.metrics``), which takes the returned rankings.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from rrbench_base.candidates import Candidates
from stage2_rerank.candidate_pairs import score_candidate_lists
from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion import rerank_at_depth
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData, score_pairs_in_memory


def itc_similarity(trainable: ItmTrainable, data: ItmTrainingData, batch_size: int = 128) -> np.ndarray:
    """float32 ``[N_cap, N_img]``: max over the query embeddings of each image of the cosine with each caption."""
    was_training = trainable.training
    trainable.eval()
    scorer, device = trainable.scorer, trainable.temperature.device
    try:
        with torch.inference_mode():
            images = torch.cat([scorer.image_embeddings(trainable.features(data.image_inputs[s: s + batch_size]
                                                                            .to(device)))
                                for s in range(0, len(data.image_inputs), batch_size)])
            n_cap = len(data.caption_tokens)
            texts = torch.cat([scorer.text_embeddings(*data.tokens(torch.arange(s, min(s + batch_size, n_cap)),
                                                                   device)) for s in range(0, n_cap, batch_size)])
            sim = torch.einsum("iqe,te->tiq", images.float(), texts.float()).max(dim=-1).values
    finally:
        trainable.train(was_training)
    return sim.cpu().numpy()


def top_candidates(similarity: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 ids and float32 scores ``[Q, depth]`` of the highest columns per row, best first (ties: lower id)."""
    similarity = np.asarray(similarity)
    depth = min(depth, similarity.shape[1])
    # select the top ``depth`` per row in O(N) (partition), ties at the cut resolved towards lower ids
    kth = np.partition(similarity, similarity.shape[1] - depth, axis=1)[:, similarity.shape[1] - depth, None]
    above = similarity > kth
    tie = similarity == kth
    need = depth - above.sum(axis=1, keepdims=True)
    take = above | (tie & (np.cumsum(tie, axis=1) <= need))
    part = np.nonzero(take)[1].reshape(len(similarity), depth)  # ascending ids per row
    values = np.take_along_axis(similarity, part, axis=1)
    order = np.take_along_axis(part, np.argsort(-values, axis=1, kind="stable"), axis=1)
    return order.astype(np.int64), np.take_along_axis(similarity, order, axis=1).astype(np.float32)


def candidates_from_similarity(similarity: np.ndarray, depth: int) -> dict[str, Candidates]:
    """Both directions' top-``depth`` candidates of a caption x image similarity ``[N_cap, N_img]``:
    ``{"t2i": ..., "i2t": ...}``, every caption (t2i) and every image (i2t) a query, in order."""
    similarity = np.asarray(similarity)
    out = {}
    for direction, matrix in (("t2i", similarity), ("i2t", similarity.T)):
        ids, scores = top_candidates(matrix, depth)
        out[direction] = Candidates(direction, ids, scores, np.arange(len(matrix)))
    return out


def rerank_in_memory(trainable: ItmTrainable, data: ItmTrainingData, candidates: Mapping[str, Candidates],
                     depth: int, fusions: dict[str, FusionConfig], batch_size: int = 64,
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per fusion name: (t2i ranking ``[Q_t2i, N]``, i2t ranking ``[Q_i2t, N]``) after reranking depth ``depth``.

    ``candidates["t2i"]`` / ``candidates["i2t"]``: the lists of both directions; their ids and query positions
    index the captions and images of ``data``."""
    t2i, i2t = candidates["t2i"], candidates["i2t"]
    scored = score_candidate_lists(lambda pairs: (*score_pairs_in_memory(trainable, data, pairs, batch_size), None),
                                   t2i, i2t, depth)
    return {name: (rerank_at_depth(t2i.ids, t2i.scores, scored.t2i, depth, fusion),
                   rerank_at_depth(i2t.ids, i2t.scores, scored.i2t, depth, fusion))
            for name, fusion in fusions.items()}
