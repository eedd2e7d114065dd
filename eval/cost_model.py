"""A cost model of two-stage retrieval on paper: per-unit costs x workload -> wall time and memory (pure arithmetic).

Data-parallel over ``G`` devices (``predict``):

- stage 1: image and text encoding sharded by item (``images / G``, ``texts / G``); the index sharded by gallery
  item, each device searching every query against its ``1/G`` of the gallery (exact search: ``queries x
  gallery / G`` units), per-shard top-k merged by one small exchange of candidate lists (ids and scores,
  ``queries x k x G x 12`` bytes, counted as free next to the compute);
- stage 2: distinct pairs sharded by image (each image's vision forward once in the whole job, pairs of an
  image on the device that holds it), load assumed balanced; per candidate slot, the scoring process's
  bookkeeping (pair de-duplication, score-cache look-up, gather into lists) is sharded with the pairs, the
  grid's fusion, ranking and metrics run once on the gathering process (not divided by ``G``);
- no other communication; model loading and process start-up are not counted.

Memory per device: model weights + the stage-2 working set (bounded by the pair batch and the K/V chunk, not by
the workload: ``stage2_device_bytes``) + the device's index shard; host memory (RAM or spill disk) per device:
the vision features of its images (the reranker keeps every scored image's features until its pairs are done)
and its share of the stage-1 embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per unit on one device, and bytes per item.

    Attributes:
        name: the device (e.g. ``H200 fp16``), for tables.
        image_encode_s, text_encode_s: stage-1 encoder, per image / caption (incl. preprocessing).
        search_s: exact stage-1 search, per (query, gallery item).
        vision_s: stage-2 vision tower per image (incl. decoding and preprocessing).
        qformer_image_s: stage-2 per-image Q-Former work (cross-attention K/V, ITC embedding).
        qformer_text_s: stage-2 ITC embedding per caption.
        pair_s: stage-2 ITM per distinct pair.
        rank_slot_s: bookkeeping per candidate slot on the process scoring it (de-duplication, cache, gather).
        gather_slot_s: per candidate slot on the gathering process (fusion, ranking, metrics of the grid).
        weights_bytes: model weights resident on the device (both stages).
        stage2_device_bytes: stage-2 working set on the device (pair batch + K/V chunk).
        embedding_bytes: one stage-1 embedding in the index.
        vision_feature_bytes: one image's stage-2 vision features in host memory.
    """

    name: str
    image_encode_s: float
    text_encode_s: float
    search_s: float
    vision_s: float
    qformer_image_s: float
    qformer_text_s: float
    pair_s: float
    rank_slot_s: float
    gather_slot_s: float
    weights_bytes: float
    stage2_device_bytes: float
    embedding_bytes: float
    vision_feature_bytes: float


@dataclass(frozen=True)
class Workload:
    """One evaluation: a gallery of images, caption queries (t2i) and optionally image queries (i2t) over
    ``captions`` texts, reranked at ``depth`` in each direction.

    Attributes:
        name: for tables.
        images: gallery images.
        captions: caption gallery (i2t) / caption queries (t2i).
        t2i_queries, i2t_queries: queries of each direction.
        depth: candidates reranked per query.
        unique_pair_fraction: distinct pairs / candidate slots (pairs found in both directions count once).
    """

    name: str
    images: int
    captions: int
    t2i_queries: int
    i2t_queries: int
    depth: int
    unique_pair_fraction: float = 1.0

    @property
    def candidate_slots(self) -> int:
        return (self.t2i_queries + self.i2t_queries) * self.depth

    @property
    def unique_pairs(self) -> float:
        return self.candidate_slots * self.unique_pair_fraction

    @property
    def reranked_images(self) -> float:
        """Distinct images among the candidates: all images reached by a query (i2t) plus the expected
        distinct images of the t2i slots when they fall uniformly on the gallery."""
        t2i = self.images * (1 - math.exp(-self.t2i_queries * self.depth / self.images))
        return min(self.images, max(t2i, self.i2t_queries))

    @property
    def searches(self) -> float:
        """(query, gallery item) products of exact search in both directions."""
        return self.t2i_queries * self.images + self.i2t_queries * self.captions


def predict(costs: UnitCosts, work: Workload, devices: int) -> dict[str, Any]:
    """Seconds per phase and in total, and memory per device (see the module doc), on ``devices`` devices."""
    g = devices
    seconds = {
        "stage1_encode": (work.images * costs.image_encode_s + work.captions * costs.text_encode_s) / g,
        "stage1_search": work.searches * costs.search_s / g,
        "stage2_vision": work.reranked_images * costs.vision_s / g,
        "stage2_qformer": (work.reranked_images * costs.qformer_image_s + work.captions * costs.qformer_text_s
                           + work.unique_pairs * costs.pair_s) / g,
        "stage2_bookkeeping": work.candidate_slots * costs.rank_slot_s / g,
        "grid_on_gatherer": work.candidate_slots * costs.gather_slot_s,
    }
    seconds["total"] = sum(seconds.values())
    index_shard = (work.images + work.captions) * costs.embedding_bytes / g
    memory = {
        "device_bytes": costs.weights_bytes + costs.stage2_device_bytes + index_shard,
        "host_vision_features_bytes": work.reranked_images * costs.vision_feature_bytes / g,
        "host_embeddings_bytes": index_shard,
    }
    return {"device": costs.name, "workload": work.name, "devices": g, "seconds": seconds, "memory": memory}
