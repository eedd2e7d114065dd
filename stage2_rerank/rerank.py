"""Stage-2 orchestration: (image, caption) pairs -> ITM logits and ITC scores, with every cache applied.

``Reranker.score_pairs(images, captions, pairs)`` computes each distinct (image fingerprint, caption text)
once: scores already in the on-disk score cache are read back; the vision tower runs once per remaining
image (features kept by :class:`~stage2_rerank.caches.vision_features.VisionFeatureCache`); then images are scored
in chunks (features + cached cross-attention K/V of a chunk within ``kv_chunk_mb``), pairs of a chunk
length-bucketed into batches of ``pair_batch_size`` (halved on CUDA OOM); each finished batch is committed
to the score cache, so an interrupted run resumes where it stopped.

Captions go through ``config.caption_preprocessing`` first (``rrbench_base.caption_preprocessing``; a caption it
leaves empty raises RerankInputError naming its position); the pair-score cache is keyed by the text actually
scored.

Cache keys (``Reranker.model_key`` + Q-Former precision for pair scores, ``Reranker.feature_key`` for vision
features) name everything that changes a value: the backend, the checkpoint's content identity, the vision
provider's identity (weights, preprocessing, dtype), the feature storage (lossless: the computed dtype),
``text_max_length``, the caption preprocessing (unless ``none``), the device type, torch / transformers versions
and ``caches.pair_scores.SCORE_CODE_VERSION``. Not keyed: batch sizes, image chunking and K/V caching, which only
reorder float sums (differences ~1e-6). A cached entry that fails its checksum is recomputed (see
``caches.pair_scores`` and ``caches.vision_features``); a damaged vision spill met while scoring is recomputed
from the image, so no score is computed from a damaged entry.

In a job of several processes, ``score_pairs`` shares the work by image (``shared_scoring``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from rrbench_base.caption_preprocessing import EmptyCaptionError
from rrbench_base.image_refs import ImageRef, as_image_refs
from rrbench_base.process_group import SINGLE_PROCESS, ProcessGroup
from stage2_rerank.backends import RerankerModel, load_backend
from stage2_rerank.candidate_pairs import score_candidate_lists
from stage2_rerank.caches.pair_scores import SCORE_CODE_VERSION, ScoreCache
from stage2_rerank.caches.vision_features import VisionFeatureCache
from stage2_rerank.config import RerankerConfig
from stage2_rerank.content_identity import library_versions
from stage2_rerank.pair_batching import run_adaptive_batches
from stage2_rerank.pair_scoring import rows_by_key, score_missing_pairs
from stage2_rerank.protocols import RerankInputError
from rrbench_base.candidates import Candidates
from stage2_rerank.shared_scoring import score_pairs_shared
from stage2_rerank.types import PairScores, RerankedCandidates, RerankStats

log = logging.getLogger(__name__)


def check_pairs(pairs: np.ndarray, n_images: int, n_captions: int) -> np.ndarray:
    """``pairs`` as int64 ``[P, 2]`` (image index, caption index); RerankInputError when out of range."""
    pairs = np.asarray(pairs)
    if pairs.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise RerankInputError(f"pairs must be an integer array [P, 2], got {pairs.dtype} {pairs.shape}")
    pairs = pairs.astype(np.int64)
    bad = (pairs[:, 0] < 0) | (pairs[:, 0] >= n_images) | (pairs[:, 1] < 0) | (pairs[:, 1] >= n_captions)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RerankInputError(f"pair {row} = {pairs[row].tolist()} is out of range "
                               f"({n_images} images, {n_captions} captions)")
    return pairs


class Reranker:
    """Scores (image, caption) pairs with a loaded backend, using the feature and score caches."""

    def __init__(self, model: RerankerModel, config: RerankerConfig,
                 features: VisionFeatureCache | None = None, processes: ProcessGroup = SINGLE_PROCESS) -> None:
        """``features``: share another reranker's vision feature cache (same vision provider), e.g. to
        score the same images with the Q-Former at another precision. ``processes``: the job's processes, which
        share every ``score_pairs`` call (``stage2_rerank.shared_scoring``; only the main one opens the score
        cache)."""
        self.model = model
        self.config = config
        self.processes = processes
        self.feature_key = f"{model.vision.identity}|device={model.device.type}|{library_versions()}"
        root = config.cache_dir
        self._owns_features = features is None
        if features is None:
            features = VisionFeatureCache(self.feature_key, config.vision_memory_mb * 2**20,
                                          None if root is None else root / "vision_features")
        self.features = features
        ident = (f"scores-v{SCORE_CODE_VERSION}|{model.backend}|{model.checkpoint_identity}|{self.feature_key}"
                 f"|features={features.storage}|len{config.text_max_length}")
        self.caption_preprocessing = config.caption_preprocessing
        if self.caption_preprocessing.changes_text:  # none keeps the keys of runs made before this option
            ident += f"|captions={self.caption_preprocessing.identity()}"
        self.model_key = hashlib.sha256(ident.encode()).hexdigest()
        self.score_cache = None if root is None or not processes.is_main else \
            ScoreCache(root / "scores.sqlite", self.model_key, model.precision)
        self.pair_batch_size = config.pair_batch_size
        self.vision_batch_size = config.vision_batch_size
        self.feature_owners: dict[str, int] = {}  # image fingerprint -> process holding its features (shared_scoring)

    def close(self) -> None:
        if self._owns_features:
            self.features.close()
        if self.score_cache is not None:
            self.score_cache.close()

    def __enter__(self) -> "Reranker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _skip_or_raise(self, image: ImageRef, exc: Exception, stats: RerankStats) -> None:
        if self.config.on_bad_input == "error":
            raise RerankInputError(f"image {image.id!r}: {exc} (set on_bad_input: skip to skip it)") from exc
        log.warning("skipping image %r: %s", image.id, exc)
        stats.skipped.append((str(image.id), str(exc)))

    def _fingerprints(self, images: Sequence[ImageRef], used: np.ndarray, stats: RerankStats) -> dict[int, str]:
        prints = {}
        for index in used.tolist():
            try:
                prints[index] = images[index].fingerprint()
            except Exception as exc:  # noqa: BLE001 - any failure is a bad input, handled by policy
                self._skip_or_raise(images[index], exc, stats)
        return prints

    def encode_images(self, images: Sequence[ImageRef], indices: Sequence[int], prints: dict[int, str],
                      stats: RerankStats, progress: bool) -> None:
        """Run the vision tower on images not yet in the feature cache (drops bad ones from ``prints``)."""
        todo, queued = [], set()
        for index in dict.fromkeys(indices):  # one image per distinct fingerprint, first occurrence
            if prints[index] not in queued and prints[index] not in self.features:
                todo.append(index)
                queued.add(prints[index])
        bar = tqdm(total=len(todo), desc="stage2 vision", unit="img", disable=not progress)

        def run_batch(start: int, stop: int) -> None:
            opened, keep = [], []
            for index in todo[start:stop]:
                try:
                    opened.append(images[index].open())
                    keep.append(index)
                except Exception as exc:  # noqa: BLE001 - policy decides
                    self._skip_or_raise(images[index], exc, stats)
                    del prints[index]
            if opened:
                features = self.model.vision.encode(opened)
                for index, feats in zip(keep, features):
                    self.features.put(prints[index], feats)
            stats.images_encoded += len(keep)
            bar.update(stop - start)

        with torch.inference_mode():
            self.vision_batch_size = run_adaptive_batches(len(todo), self.vision_batch_size, run_batch,
                                                          "vision", stats.oom_events)
        bar.close()

    def _features_of(self, images: Sequence[ImageRef], index: int, fingerprint: str,
                     stats: RerankStats) -> torch.Tensor:
        """Cached features of ``images[index]``; recomputed (and stored again) when the cache dropped them, e.g.
        a spill file that failed its check."""
        features = self.features.get(fingerprint)
        if features is None:
            log.info("recomputing the vision features of image %r", images[index].id)
            try:
                image = images[index].open()
            except Exception as exc:  # noqa: BLE001 - too late to skip: its pairs are being scored
                raise RerankInputError(f"image {images[index].id!r}: its cached vision features were dropped "
                                       f"and it cannot be opened again: {exc}") from exc
            with torch.inference_mode():
                features = self.model.vision.encode([image])[0].detach().to("cpu")
            self.features.put(fingerprint, features)
            stats.images_encoded += 1
        return features

    def score_candidates(self, images: Sequence[Any], captions: Sequence[str],
                         t2i: Optional[Candidates | np.ndarray],
                         i2t: Optional[Candidates | np.ndarray], depth: int, progress: bool = True
                         ) -> RerankedCandidates:
        """Stage-2 scores of the first ``depth`` candidates of ``t2i`` and/or ``i2t`` (either may be None; a plain
        ids array ``[Q, N]`` means queries ``0..Q-1``; see ``candidate_pairs.score_candidate_lists``).

        ``t2i`` ids index ``images`` and its query positions ``captions``; ``i2t`` the other way round. Each
        distinct (image, caption) pair of both lists is scored once (``score_pairs``) and gathered back into
        ``[Q, depth]`` per direction; slots with id -1 or a skipped image are NaN."""
        images = as_image_refs(images)

        def score(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, RerankStats]:
            scores = self.score_pairs(images, captions, pairs, progress)
            return scores.itm_logits, scores.itc, scores.stats

        return score_candidate_lists(score, t2i, i2t, depth)

    def score_pairs(self, images: Sequence[Any], captions: Sequence[str], pairs: np.ndarray,
                    progress: bool = True) -> PairScores:
        """Scores of ``pairs`` (int ``[P, 2]``: image index into ``images``, caption index into ``captions``).

        ``images``: dataset items (:class:`ImageRef`), PIL images or file paths (``rrbench_base.image_refs``;
        anything else raises ``rrbench_base.image_refs.BadImageError``). ``captions`` are scored after the
        config's caption preprocessing (RerankInputError when it leaves one empty)."""
        start_time = time.perf_counter()
        images = as_image_refs(images)
        if not all(isinstance(c, str) for c in captions):
            raise RerankInputError("captions must be strings")
        try:
            captions = self.caption_preprocessing.apply_all(captions)
        except EmptyCaptionError as exc:
            raise RerankInputError(str(exc)) from exc
        pairs = check_pairs(pairs, len(images), len(captions))
        if self.processes.distributed:
            return score_pairs_shared(self, images, captions, pairs, progress)
        stats = RerankStats(pairs=len(pairs))
        logits = np.full((len(pairs), 2), np.nan, dtype=np.float32)
        itc = np.full(len(pairs), np.nan, dtype=np.float32)
        prints = self._fingerprints(images, np.unique(pairs[:, 0]), stats)
        rows_of_key = rows_by_key(pairs, prints, captions)
        keys = list(rows_of_key)
        stats.unique_keys = len(keys)
        found = np.zeros(len(keys), dtype=bool)
        if self.score_cache is not None and keys:
            found, key_logits, key_itc = self.score_cache.get_many(keys)
            for k in np.flatnonzero(found):
                logits[rows_of_key[keys[k]]] = key_logits[k]
                itc[rows_of_key[keys[k]]] = key_itc[k]
        stats.cache_hits = int(found.sum())
        missing = [keys[k] for k in np.flatnonzero(~found)]
        if missing:
            representatives = np.array([pairs[rows_of_key[key][0]] for key in missing], dtype=np.int64)
            t0 = time.perf_counter()
            self.encode_images(images, representatives[:, 0].tolist(), prints, stats, progress)
            stats.seconds["vision"] = time.perf_counter() - t0
            ok = np.array([image in prints for image in representatives[:, 0].tolist()], dtype=bool)
            representatives, missing = representatives[ok], [m for m, keep in zip(missing, ok) if keep]

            def on_batch(positions: np.ndarray, batch_logits: np.ndarray, batch_itc: np.ndarray) -> None:
                batch_keys = [missing[p] for p in positions.tolist()]
                for key, lg, sim in zip(batch_keys, batch_logits, batch_itc):
                    logits[rows_of_key[key]] = lg
                    itc[rows_of_key[key]] = sim
                if self.score_cache is not None:
                    self.score_cache.put_many(batch_keys, batch_logits, batch_itc)

            print_of = {i: prints[i] for i in representatives[:, 0].tolist()}
            if len(representatives):
                self.pair_batch_size = score_missing_pairs(
                    self.model, lambda index: self._features_of(images, index, print_of[index], stats), captions,
                    representatives,
                    self.config, self.pair_batch_size, on_batch, stats, progress)
            stats.scored = len(missing)
        stats.seconds["total"] = time.perf_counter() - start_time
        return PairScores(logits, itc, stats)


def load_reranker(config: RerankerConfig, processes: ProcessGroup = SINGLE_PROCESS) -> Reranker:
    """Load ``config.backend`` / ``config.model`` and wrap it in a :class:`Reranker` (shared by ``processes``)."""
    return Reranker(load_backend(config), config, processes=processes)
