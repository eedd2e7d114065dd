"""Validation during training: embed a split with the current model and score retrieval.

A :data:`ValidationScorer` gets ``(image_embeddings [Ni, D], text_embeddings [Nt, D], text_image [Nt])``
(float32 numpy, rows L2-normalised, in split order; ``text_image[t]`` = row of caption ``t``'s image)
and returns named metrics (higher is better for the selection metric). Callers outside stage 1 pass
one built on their own metric code; :func:`recall_at_k_scorer` is the small built-in default.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from stage1_dual.trainable.model import DualEncoderModel

ValidationScorer = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, float]]


def _batches(count: int, size: int) -> list[np.ndarray]:
    return [np.arange(start, min(start + size, count)) for start in range(0, count, size)]


@torch.no_grad()
def embed_split(model: DualEncoderModel, image_source: Any, text_source: Any, num_images: int, num_texts: int,
                batch_size: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """``(image_embeddings [num_images, D], text_embeddings [num_texts, D])`` float32 numpy in item order,
    from sources with ``iterate(batches, epoch, train=False)`` (see ``training.sources``)."""
    was_training = model.training
    model.eval()
    images = [model.embed_images({k: v.to(device) for k, v in f.items()}).float().cpu()
              for f in image_source.iterate(_batches(num_images, batch_size), 0, False)]
    texts = [model.embed_texts({k: v.to(device) for k, v in f.items()}).float().cpu()
             for f in text_source.iterate(_batches(num_texts, batch_size), 0, False)]
    model.train(was_training)
    return torch.cat(images).numpy(), torch.cat(texts).numpy()


def _hit_ranks(scores: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """1-based rank of the best-ranked relevant column of each row of ``scores``."""
    ranks = np.empty(len(scores), dtype=np.int64)
    for row, columns in enumerate(relevant):
        best = scores[row, columns].max()
        ranks[row] = int((scores[row] > best).sum()) + 1
    return ranks


def recall_at_k_scorer(image_embeddings: np.ndarray, text_embeddings: np.ndarray, text_image: np.ndarray,
                       ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``t2i/R@K``, ``i2t/R@K`` (percent; R@K = 1 if a relevant item is in the top K, averaged over
    queries; ties broken in the query's favour) and ``rsum``. Every image needs a caption."""
    similarity = text_embeddings @ image_embeddings.T
    t2i = _hit_ranks(similarity, [np.array([i]) for i in text_image])
    image_texts = [np.flatnonzero(text_image == i) for i in range(len(image_embeddings))]
    if any(len(t) == 0 for t in image_texts):
        raise ValueError("recall_at_k_scorer: every image needs at least one caption")
    i2t = _hit_ranks(similarity.T, image_texts)
    metrics = {}
    for name, ranks in (("t2i", t2i), ("i2t", i2t)):
        for k in ks:
            metrics[f"{name}/R@{k}"] = float((ranks <= k).mean() * 100.0)
    metrics["rsum"] = float(sum(metrics[f"{d}/R@{k}"] for d in ("t2i", "i2t") for k in ks))
    return metrics
