"""Validation helpers for ITM training: rerank stage-1 candidates with the in-memory model (no files, no caches).

- :func:`itc_similarity`: the model's own ITC similarity ``[N_cap, N_img]`` (max over queries of the cosine),
  usable as a stand-in stage 1 when none is given.
- :func:`top_candidates`: the best ``depth`` columns per row of a similarity matrix (best first).
- :func:`rerank_in_memory`: ITM/ITC scores of the distinct candidate pairs of both directions (each scored
  once) and the final rankings per fusion rule, with the depth semantics of ``fusion.rerank_at_depth``.
Metric computation stays with the caller (``eval.metrics``), which takes the returned rankings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stage2_rerank.candidate_pairs import score_candidate_lists
from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion import rerank_at_depth
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData, score_pairs_in_memory


@dataclass(frozen=True)
class Candidates:
    """Stage-1 candidates of both directions, every caption and every image a query in order (immutable).

    Attributes:
        t2i_ids: int64 ``[N_cap, N]`` image rows per caption, best first.
        t2i_scores: float ``[N_cap, N]`` their stage-1 scores.
        i2t_ids: int64 ``[N_img, N]`` caption rows per image, best first.
        i2t_scores: float ``[N_img, N]`` their stage-1 scores.
    """

    t2i_ids: np.ndarray
    t2i_scores: np.ndarray
    i2t_ids: np.ndarray
    i2t_scores: np.ndarray


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


def candidates_from_similarity(similarity: np.ndarray, depth: int) -> Candidates:
    """Both directions' top-``depth`` candidates of a caption x image similarity ``[N_cap, N_img]``."""
    t2i_ids, t2i_scores = top_candidates(similarity, depth)
    i2t_ids, i2t_scores = top_candidates(similarity.T, depth)
    return Candidates(t2i_ids, t2i_scores, i2t_ids, i2t_scores)


def rerank_in_memory(trainable: ItmTrainable, data: ItmTrainingData, candidates: Candidates, depth: int,
                     fusions: dict[str, FusionConfig], batch_size: int = 64,
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per fusion name: (t2i ranking ``[N_cap, N]``, i2t ranking ``[N_img, N]``) after reranking depth ``depth``."""
    scored = score_candidate_lists(lambda pairs: (*score_pairs_in_memory(trainable, data, pairs, batch_size), None),
                                   candidates.t2i_ids, candidates.i2t_ids, depth)
    return {name: (rerank_at_depth(candidates.t2i_ids, candidates.t2i_scores, scored.t2i, depth, fusion),
                   rerank_at_depth(candidates.i2t_ids, candidates.i2t_scores, scored.i2t, depth, fusion))
            for name, fusion in fusions.items()}
