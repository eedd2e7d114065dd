"""Synthetic embedding sets that look like CLIP embeddings more than uniform noise does, and recall.

Gallery: a Gaussian mixture of ``num_clusters`` clusters (cluster sizes drawn from a Dirichlet, so
uneven) in ``dim`` dimensions with a power-law per-dimension spectrum (scale of dimension i is
``(i + 1) ** -spectrum_power``, a low effective rank as in real embedding spaces), around a shared
mean direction (the "cone" of real CLIP embeddings), L2-normalised. Queries: noisy copies of
random gallery items (a caption near its image), L2-normalised. Definitions of ``cosine`` levels
are measured and returned by :func:`describe`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VectorSpec:
    """Parameters of the synthetic set (see module docstring)."""

    dim: int = 512
    num_clusters: int = 1000
    spectrum_power: float = 0.5
    cone_weight: float = 1.0
    cluster_spread: float = 0.9
    query_noise: float = 0.8
    seed: int = 0


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _spectrum(spec: VectorSpec) -> np.ndarray:
    scale = (np.arange(spec.dim, dtype=np.float32) + 1.0) ** -spec.spectrum_power
    return (scale / np.linalg.norm(scale)).astype(np.float32)  # unit norm: N(0, diag(scale^2)) has E|x|^2 = 1


def make_gallery_and_queries(spec: VectorSpec, num_gallery: int, num_queries: int,
                             chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``[num_gallery, dim]`` and ``[num_queries, dim]``, rows L2-normalised (chunked, low memory)."""
    rng = np.random.default_rng(spec.seed)
    scale = _spectrum(spec)
    rotation, _ = np.linalg.qr(rng.standard_normal((spec.dim, spec.dim)).astype(np.float32))
    rotation = rotation.astype(np.float32)  # spread the spectrum over all coordinates
    cone = _normalise(rng.standard_normal((1, spec.dim)).astype(np.float32))
    centres = rng.standard_normal((spec.num_clusters, spec.dim), dtype=np.float32) * scale
    centres = _normalise(centres @ rotation)
    weights = rng.dirichlet(np.full(spec.num_clusters, 2.0))
    gallery = np.empty((num_gallery, spec.dim), dtype=np.float32)
    for start in range(0, num_gallery, chunk):
        stop = min(start + chunk, num_gallery)
        members = rng.choice(spec.num_clusters, size=stop - start, p=weights)
        noise = (rng.standard_normal((stop - start, spec.dim), dtype=np.float32) * scale) @ rotation
        block = spec.cone_weight * cone + centres[members] + spec.cluster_spread * noise
        gallery[start:stop] = _normalise(block)
    sources = rng.integers(0, num_gallery, size=num_queries)
    noise = (rng.standard_normal((num_queries, spec.dim), dtype=np.float32) * scale) @ rotation
    queries = _normalise(gallery[sources] + spec.query_noise * noise)
    return gallery, queries


def describe(gallery: np.ndarray, queries: np.ndarray, sample: int = 2000, seed: int = 0) -> dict[str, float]:
    """Measured cosine levels: random gallery pairs, query vs its nearest gallery item (on a sample)."""
    rng = np.random.default_rng(seed)
    a = gallery[rng.integers(0, len(gallery), sample)]
    b = gallery[rng.integers(0, len(gallery), sample)]
    q = queries[:min(sample, len(queries))]
    nearest = np.max(q @ gallery[:min(len(gallery), 200_000)].T, axis=1) if len(q) else np.zeros(0)
    return {"cos_random_gallery_pairs_mean": float(np.mean(np.sum(a * b, axis=1))),
            "cos_query_top1_mean": float(np.mean(nearest)) if len(nearest) else 0.0}


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean over queries of |approx top-k ∩ exact top-k| / k (k = exact_ids.shape[1]); -1 ids never match."""
    k = exact_ids.shape[1]
    hits = 0
    for approx, exact in zip(approx_ids, exact_ids):
        hits += len(np.intersect1d(approx[approx >= 0], exact, assume_unique=True))
    return hits / (k * max(1, len(exact_ids)))
