"""``Reranker.score_pairs`` in a job of several processes: the pairs to compute are shared out by image.

1. The main process fingerprints the images and looks the distinct (image, caption) keys up in the score cache
   (the only process that opens it); every process receives the fingerprints and what was found.
2. The missing keys are grouped by image and the images given out by pair count (:func:`assign_images`): all
   pairs of an image are on one process, so each image's vision tower runs once in the whole job, on the
   process that owns it (which keeps it for later calls: its features are cached there).
3. Each process runs the vision tower in one-process vision batches and scores its pairs in the batches and
   padding of a one-process run (``pair_scoring``'s ``owned``), so the values are the one-process values bit
   for bit on deterministic kernels. Not so where the batches of a one-process run cannot be known: after an
   out-of-memory back-off, or for the images of a later call when earlier calls cached some images' features
   (several stage-1 settings); then values can differ in the last bits (as between batch sizes).
4. Every process receives every score (``all_gather``); the main process writes its own batches to the score
   cache as they finish and the others' after the gather, so the cache is the one a one-process run writes.

Images that a process cannot open (``on_bad_input: skip``) are announced to all, so every process keeps the
same pairs. ``RerankStats.processes`` holds each process's images, pairs, batches and seconds; ``seconds`` of
the phases (``vision``, ``itc``, ``itm``) are summed over processes (compute time), ``total`` is the wall time.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from rrbench_base.image_refs import ImageRef
from rrbench_base.process_group import balanced_groups
from stage2_rerank.pair_scoring import rows_by_key, score_missing_pairs
from stage2_rerank.types import PairScores, RerankStats

PHASES = ("vision", "itc", "itm")


def assign_images(image_of_pair: Sequence[str], owners: dict[str, int], parts: int, batch_size: int) -> np.ndarray:
    """Process that scores each pair, given the image fingerprint of each (``image_of_pair``).

    An image already in ``owners`` (fingerprint -> process; its features are cached there) stays there. The
    others, in order of first appearance, are cut into runs of ``batch_size`` (the vision batches a one-process
    run makes of them, so each process's vision batches are one-process batches), and the runs are given out by
    their number of pairs on top of the pairs the processes already have (``balanced_groups``). ``owners`` is
    updated with the new images."""
    counts: dict[str, int] = {}
    for image in image_of_pair:
        counts[image] = counts.get(image, 0) + 1
    new = [image for image in counts if image not in owners]
    runs = [new[start:start + batch_size] for start in range(0, len(new), batch_size)]
    load = np.zeros(parts, dtype=np.int64)
    for image, count in counts.items():
        if image in owners:
            load[owners[image]] += count
    for run, part in zip(runs, balanced_groups([sum(counts[i] for i in run) for run in runs], parts, load)):
        owners.update(dict.fromkeys(run, int(part)))
    return np.array([owners[image] for image in image_of_pair], dtype=np.int64)


def score_pairs_shared(reranker: Any, images: Sequence[ImageRef], captions: Sequence[str],
                       pairs: np.ndarray, progress: bool) -> PairScores:
    """Scores of ``pairs`` (checked int64 ``[P, 2]``), the same on every process (see the module doc).

    ``reranker``: the ``rerank.Reranker`` whose ``score_pairs`` this is (not imported here: it imports this)."""
    processes = reranker.processes
    start_time = time.perf_counter()
    stats = RerankStats(pairs=len(pairs))
    logits = np.full((len(pairs), 2), np.nan, dtype=np.float32)
    itc = np.full(len(pairs), np.nan, dtype=np.float32)
    known = None
    if processes.is_main:
        known = (reranker._fingerprints(images, np.unique(pairs[:, 0]), stats), stats.skipped)
    prints, stats.skipped = processes.broadcast(known)
    rows_of_key = rows_by_key(pairs, prints, captions)
    keys = list(rows_of_key)
    stats.unique_keys = len(keys)
    cached = reranker.score_cache.get_many(keys) if processes.is_main and reranker.score_cache and keys else None
    cached = processes.broadcast(cached)
    found = np.zeros(len(keys), dtype=bool)
    if cached is not None:
        found, key_logits, key_itc = cached
        for k in np.flatnonzero(found):
            logits[rows_of_key[keys[k]]] = key_logits[k]
            itc[rows_of_key[keys[k]]] = key_itc[k]
    stats.cache_hits = int(found.sum())
    missing = [keys[k] for k in np.flatnonzero(~found)]
    mine = {"rank": processes.rank, "images_encoded": 0, "pairs_scored": 0, "qformer_batches": 0,
            "seconds": {}}
    if missing:
        representatives = np.array([pairs[rows_of_key[key][0]] for key in missing], dtype=np.int64)
        owned = assign_images([prints[i] for i in representatives[:, 0].tolist()], reranker.feature_owners,
                              processes.size, reranker.vision_batch_size) == processes.rank
        skipped_before = len(stats.skipped)
        t0 = time.perf_counter()
        reranker.encode_images(images, representatives[owned, 0].tolist(), prints, stats, progress)
        stats.seconds["vision"] = time.perf_counter() - t0
        dropped = [i for i in set(representatives[owned, 0].tolist()) if i not in prints]
        announced = processes.all_gather((dropped, stats.skipped[skipped_before:]))
        for rank, (others_dropped, others_skipped) in enumerate(announced):
            for index in others_dropped:
                prints.pop(index, None)
            if rank != processes.rank:
                stats.skipped.extend(others_skipped)
        ok = np.array([image in prints for image in representatives[:, 0].tolist()], dtype=bool)
        representatives, owned = representatives[ok], owned[ok]
        missing = [m for m, keep in zip(missing, ok) if keep]
        done: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

        def on_batch(positions: np.ndarray, batch_logits: np.ndarray, batch_itc: np.ndarray) -> None:
            done.append((positions, batch_logits, batch_itc))
            if reranker.score_cache is not None:  # the main process only
                reranker.score_cache.put_many([missing[p] for p in positions.tolist()], batch_logits, batch_itc)

        print_of = {i: prints[i] for i in representatives[owned, 0].tolist()}
        if owned.any():
            reranker.pair_batch_size = score_missing_pairs(
                reranker.model, lambda index: reranker._features_of(images, index, print_of[index], stats),
                captions, representatives, reranker.config, reranker.pair_batch_size, on_batch, stats, progress,
                owned=owned)
        mine.update(images_encoded=stats.images_encoded, pairs_scored=int(owned.sum()),
                    qformer_batches=stats.qformer_batches, seconds={p: stats.seconds.get(p, 0.0) for p in PHASES})
        _merge(processes.all_gather((done, mine, stats.oom_events)), reranker, missing, rows_of_key, logits, itc,
               stats, processes.rank)
        stats.scored = len(missing)
    else:
        stats.processes = [mine]
    stats.seconds["total"] = time.perf_counter() - start_time
    return PairScores(logits, itc, stats)


def _merge(gathered: list[Any], reranker: Any, missing: list[tuple[str, str]],
           rows_of_key: dict[tuple[str, str], list[int]], logits: np.ndarray, itc: np.ndarray, stats: RerankStats,
           rank: int) -> None:
    """Every process's scores into ``logits`` / ``itc`` (and, on the main process, the other processes' into the
    score cache); per-process figures into ``stats``."""
    stats.processes = [summary for _, summary, _ in gathered]
    stats.images_encoded = sum(s["images_encoded"] for s in stats.processes)
    stats.qformer_batches = sum(s["qformer_batches"] for s in stats.processes)
    stats.oom_events = [event for _, _, events in gathered for event in events]
    for phase in PHASES:
        stats.seconds[phase] = sum(s["seconds"].get(phase, 0.0) for s in stats.processes)
    for source, (done, _, _) in enumerate(gathered):
        for positions, batch_logits, batch_itc in done:
            batch_keys = [missing[p] for p in positions.tolist()]
            for key, lg, sim in zip(batch_keys, batch_logits, batch_itc):
                logits[rows_of_key[key]] = lg
                itc[rows_of_key[key]] = sim
            if source != rank and reranker.score_cache is not None:
                reranker.score_cache.put_many(batch_keys, batch_logits, batch_itc)
