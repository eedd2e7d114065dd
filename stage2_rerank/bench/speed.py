"""Speed and parity measurements of stage 2 (used by ``scripts/bench_rerank.py``; returns data, prints nothing).

Three ways to score the same stage-1 candidate pairs with one ``Blip2ForImageTextRetrieval``:

- (a) :func:`time_stock_forward`: the stock ``forward(use_image_text_matching_head=True)``, one batch of
  pairs per call as a user would write it (processor + forward; the ViT runs for every pair).
- (b) :func:`time_lavis_loop`: LAVIS-style: vision features computed once per image, then one query at a
  time with its k candidates through the Q-Former ITM, captions padded to ``max_length`` as LAVIS does.
- (c) the :class:`~stage2_rerank.rerank.Reranker` (vision once per image, distinct pairs of both directions,
  cross-attention K/V cached per image, length-bucketed batches).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from rrbench_base.candidates import Candidates
from stage2_rerank.bench.parity import stock_itc_matrix, stock_itm_logits
from stage2_rerank.candidate_pairs import collect_candidate_pairs
from stage2_rerank.pair_scoring import tokenize_captions
from stage2_rerank.qformer_scorer import QFormerItm
from stage2_rerank.types import CandidatePairs

BENCH_WORDS = tuple(
    "a an the man woman child dog cat bird horse car bus train boat bike street park beach field road "
    "table chair room kitchen window door tree grass water snow sky wall floor bed shirt hat ball frisbee "
    "red blue green yellow white black brown small large young old tall two three several group "
    "sitting standing walking running riding holding playing eating looking jumping lying "
    "on in at near next to under over behind front of with and while".split())


@dataclass(frozen=True)
class InMemoryImage:
    """An image reference over a PIL image in memory (``fingerprint`` = SHA-1 of its pixels)."""

    id: str
    image: Image.Image

    def open(self) -> Image.Image:
        return self.image.copy()

    def fingerprint(self) -> str:
        return hashlib.sha1(self.image.tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class BenchData:
    """Images, captions, a random stage-1 similarity and its top-``depth`` candidates in both directions.

    Attributes:
        images: image references.
        captions: caption strings.
        t2i: image candidates ``[n_captions, depth]`` of every caption query (in caption order).
        i2t: caption candidates ``[n_images, depth]`` of every image query (in image order).
        candidate_pairs: the distinct pairs of both directions.
    """

    images: list[InMemoryImage]
    captions: list[str]
    t2i: Candidates
    i2t: Candidates
    candidate_pairs: CandidatePairs

    @property
    def candidate_slots(self) -> int:
        """Candidate slots of both directions (the benchmark's workload)."""
        return int(self.t2i.ids.size + self.i2t.ids.size)


def make_bench_data(n_images: int, n_captions: int, depth: int, image_px: int, seed: int = 0) -> BenchData:
    """Random images and captions (6-20 words), candidates = top-``depth`` of one random similarity matrix."""
    rng = np.random.default_rng(seed)
    images = [InMemoryImage(f"img{i}", Image.fromarray(rng.integers(0, 256, (image_px, image_px, 3), np.uint8)))
              for i in range(n_images)]
    captions = [" ".join(rng.choice(BENCH_WORDS, size=int(rng.integers(6, 21)))) for _ in range(n_captions)]
    similarity = rng.standard_normal((n_images, n_captions))
    lists = {direction: _top(direction, matrix, depth) for direction, matrix in (("t2i", similarity.T),
                                                                                 ("i2t", similarity))}
    return BenchData(images, captions, lists["t2i"], lists["i2t"],
                     collect_candidate_pairs(lists["t2i"].ids, lists["i2t"].ids, depth))


def _top(direction: str, similarity: np.ndarray, depth: int) -> Candidates:
    ids = np.argsort(-similarity, axis=1, kind="stable")[:, :depth]
    return Candidates(direction, ids, np.take_along_axis(similarity, ids, axis=1), np.arange(len(similarity)))


def lavis_queries(data: BenchData, n_t2i: int, n_i2t: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``n_t2i`` caption queries and ``n_i2t`` image queries as (image indices, caption indices)."""
    queries = []
    for c in range(min(n_t2i, len(data.t2i.ids))):
        cands = data.t2i.ids[c]
        queries.append((cands, np.full(len(cands), c)))
    for i in range(min(n_i2t, len(data.i2t.ids))):
        cands = data.i2t.ids[i]
        queries.append((np.full(len(cands), i), cands))
    return queries


def time_stock_forward(model: torch.nn.Module, processor, data: BenchData, pairs: np.ndarray,
                       batch_size: int) -> tuple[float, np.ndarray]:
    """(a) Seconds and ITM logits ``[P, 2]`` of ``pairs`` via processor + stock forward, ``batch_size`` pairs
    per call."""
    logits = []
    start = time.perf_counter()
    for s in tqdm(range(0, len(pairs), batch_size), desc="(a) stock forward", unit="call"):
        batch = pairs[s:s + batch_size]
        inputs = processor(images=[data.images[i].open() for i in batch[:, 0]],
                           text=[data.captions[c] for c in batch[:, 1]], padding=True, return_tensors="pt")
        logits.append(stock_itm_logits(model, inputs["pixel_values"], inputs["input_ids"],
                                       inputs["attention_mask"]))
    return time.perf_counter() - start, torch.cat(logits).numpy()


def time_lavis_loop(scorer: QFormerItm, features_of: Callable[[int], torch.Tensor], tokenizer,
                    data: BenchData, queries: Sequence[tuple[np.ndarray, np.ndarray]],
                    max_length: int) -> tuple[float, int]:
    """(b) Seconds and pair count of the LAVIS loop over ``queries`` (features precomputed; not timed)."""
    n_pairs = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for image_ids, caption_ids in tqdm(queries, desc="(b) LAVIS loop", unit="query"):
            text = tokenizer([data.captions[c] for c in caption_ids], padding="max_length", truncation=True,
                             max_length=max_length, return_tensors="pt")
            features = torch.stack([features_of(int(i)) for i in image_ids])
            scorer.itm_logits(text["input_ids"], text["attention_mask"], features=features)
            n_pairs += len(image_ids)
    return time.perf_counter() - start, n_pairs


def stock_reference_scores(model: torch.nn.Module, processor, data: BenchData, pairs: np.ndarray,
                           max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """ITM logits ``[P, 2]`` and ITC ``[P]`` of ``pairs`` from one stock forward each (mixed images/lengths)."""
    pixels = processor.image_processor(images=[data.images[i].open() for i in pairs[:, 0]],
                                       return_tensors="pt")["pixel_values"]
    text = processor.tokenizer([data.captions[c] for c in pairs[:, 1]], padding="longest", truncation=True,
                               max_length=max_length, return_tensors="pt")
    itm = stock_itm_logits(model, pixels, text["input_ids"], text["attention_mask"]).numpy()
    itc = stock_itc_matrix(model, pixels, text["input_ids"], text["attention_mask"]).numpy()
    return itm, np.diag(itc).copy()


def mixed_parity_pairs(data: BenchData, n_pairs: int, seed: int = 0) -> np.ndarray:
    """Up to ``n_pairs`` candidate pairs, each with a caption length and an image not used by the others
    (mixed lengths and images in one batch, for parity checks)."""
    pairs = data.candidate_pairs.pairs
    chosen, lengths, images = [], set(), set()
    for row in np.random.default_rng(seed).permutation(len(pairs)):
        image, caption = pairs[row].tolist()
        length = len(data.captions[caption].split())
        if length not in lengths and image not in images:
            chosen.append(row)
            lengths.add(length)
            images.add(image)
        if len(chosen) == n_pairs:
            break
    return pairs[np.sort(np.array(chosen, dtype=np.int64))]


def token_lengths(tokenizer, captions: Sequence[str], max_length: int) -> np.ndarray:
    """Token counts of captions after truncation (for reporting the padding saved by bucketing)."""
    return np.array([len(t) for t in tokenize_captions(tokenizer, captions, max_length)])
