"""Stage-1 encoding shared by the processes of a job: each encodes its share of the items, the main one keeps all.

Work is cut where a one-process run cuts it: the cache's shards (``shard_size`` items), and inside a shard the
encoder batches (``batch_size`` items from the shard's start). Only the main process reads the embedding cache;
it broadcasts which shards are missing; their batches are split into :func:`~rrbench_base.process_group.
contiguous_blocks`, one per process; each process encodes its block (whole batches, so every forward sees the
inputs it sees in one process and its embeddings are the same bits on deterministic kernels); the pieces are
gathered on the main process, which assembles the missing shards, writes them to the cache (the only writer,
so the cache has the layout of a one-process run and either run reuses the other's shards) and returns the
result. Other processes return None. A failure in any process ends it, and the launcher ends the job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from tqdm.auto import tqdm

from rrbench_base.caption_preprocessing import CaptionPreprocessing
from rrbench_base.image_refs import BadImageError, ImageRef, as_image_refs
from rrbench_base.process_group import ProcessGroup, contiguous_blocks
from stage1_dual.embedding_cache import EmbeddingCache, ShardData, as_stored
from stage1_dual.encode import (EncodedImages, EncodedTexts, SkippedImage, _concat, _encode_image_shard,
                                _encode_text_range, _image_key_material, _open_entry, _read_text_shard,
                                _text_key_material)
from stage1_dual.preprocess import build_image_transform
from stage1_dual.protocols import DualEncoder, vectors_per_image


@dataclass
class ShardedOutcome:
    """On the main process: every shard in order, how many items came from the cache / were encoded (by all
    processes), and the seconds each process spent encoding its block."""

    shards: list[ShardData]
    cached_items: int
    encoded_items: int
    process_seconds: list[float]


def batch_units(shards: Sequence[int], shard_range: Callable[[int], tuple[int, int]],
                batch_size: int) -> list[tuple[int, int, int]]:
    """``(shard, start, stop)`` of every encoder batch of the given shards, in order."""
    units = []
    for shard in shards:
        lo, hi = shard_range(shard)
        units.extend((shard, b, min(b + batch_size, hi)) for b in range(lo, hi, batch_size))
    return units


def merged_runs(units: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Consecutive units of one shard joined into ``(shard, start, stop)`` runs."""
    runs: list[tuple[int, int, int]] = []
    for shard, lo, hi in units:
        if runs and runs[-1][0] == shard and runs[-1][2] == lo:
            runs[-1] = (shard, runs[-1][1], hi)
        else:
            runs.append((shard, lo, hi))
    return runs


def encode_sharded(processes: ProcessGroup, num_items: int, shard_size: int, batch_size: int, dim: int,
                   read_shard: Callable[[int], Optional[ShardData]], encode_run: Callable[[int, int], ShardData],
                   save_shard: Optional[Callable[[int, ShardData], None]]) -> Optional[ShardedOutcome]:
    """The module's procedure over ``num_items`` items of ``dim``-wide embeddings. ``read_shard(index)``: a cached
    shard or None (main process only); ``encode_run(start, stop)``: the items' embeddings, in batches from ``start``;
    ``save_shard``: writes a shard to the cache (main process only; None: no cache)."""
    num_shards = max(1, -(-num_items // shard_size))

    def shard_range(index: int) -> tuple[int, int]:
        return index * shard_size, min((index + 1) * shard_size, num_items)

    cached: dict[int, ShardData] = {}
    if processes.is_main:
        for index in range(num_shards):
            shard = read_shard(index)
            if shard is not None:
                cached[index] = shard
    missing = processes.broadcast([i for i in range(num_shards) if i not in cached])
    units = batch_units(missing, shard_range, batch_size)
    mine = [units[u] for u in contiguous_blocks(len(units), processes.size)[processes.rank]]
    start = time.perf_counter()
    pieces = [(shard, encode_run(lo, hi)) for shard, lo, hi in merged_runs(mine)]
    gathered = processes.gather((pieces, time.perf_counter() - start))
    if gathered is None:
        return None
    parts: dict[int, list[ShardData]] = {}
    for rank_pieces, _ in gathered:  # rank order = item order within a shard
        for shard, piece in rank_pieces:
            parts.setdefault(shard, []).append(piece)
    for index in missing:
        lo, hi = shard_range(index)
        pieces_of = parts.get(index, [])
        shard = ShardData(*_concat(pieces_of, dim), [s for piece in pieces_of for s in piece.skipped])
        if save_shard is not None:
            save_shard(index, shard)
        cached[index] = shard
    encoded = sum(shard_range(i)[1] - shard_range(i)[0] for i in missing)
    return ShardedOutcome([cached[i] for i in range(num_shards)], num_items - encoded, encoded,
                          [seconds for _, seconds in gathered])


def encode_images_sharded(encoder: DualEncoder, images: Sequence[ImageRef], processes: ProcessGroup, *,
                          preprocess: str = "model", batch_size: int = 64, num_workers: int = 0,
                          on_bad_input: str = "error", cache: Optional[EmbeddingCache] = None,
                          shard_size: int = 4096, storage_dtype: str = "float32") -> Optional[EncodedImages]:
    """``encode.encode_images`` with the work shared by ``processes`` (module doc): the result on the main
    process (``seconds``: its wall time; ``process_seconds``: each process's encoding time), None elsewhere."""
    images = as_image_refs(images)
    if on_bad_input not in ("error", "skip"):
        raise ValueError(f"on_bad_input must be error or skip, got {on_bad_input!r}")
    start = time.perf_counter()
    transform, preprocess_text = build_image_transform(encoder, preprocess)
    vectors = vectors_per_image(encoder)
    row_width = vectors * encoder.embed_dim
    entry = None
    if processes.is_main:
        entry = _open_entry(cache, "images", _image_key_material(encoder, images, preprocess_text), len(images),
                            shard_size, storage_dtype)

    def encode_range(lo: int, hi: int) -> ShardData:
        shard = _encode_image_shard(encoder, images, range(lo, hi), transform, batch_size, num_workers,
                                    on_bad_input, bar, row_width)
        shard.embeddings = as_stored(shard.embeddings, storage_dtype)
        return shard

    with tqdm(desc="encode images", unit="img", disable=not processes.is_main) as bar:
        outcome = encode_sharded(
            processes, len(images), shard_size, batch_size, row_width,
            lambda index: entry.read_shard(index, row_width) if entry is not None else None,
            encode_range, entry.save_shard if entry is not None else None)
    if outcome is None:
        return None
    skipped = [SkippedImage(int(s["position"]), s["id"], s["reason"]) for shard in outcome.shards
               for s in shard.skipped]
    if on_bad_input == "error" and skipped:
        raise BadImageError(f"image {skipped[0].id!r} (cached as skipped by an earlier on_bad_input=skip run): "
                            f"{skipped[0].reason}")
    embeddings, positions = _concat(outcome.shards, row_width)
    if vectors > 1:
        embeddings = embeddings.reshape(len(embeddings), vectors, encoder.embed_dim)
    if entry is not None:
        entry.mark_complete({"rows": int(len(positions)), "skipped": len(skipped)})
    return EncodedImages(embeddings, positions, [images[int(p)].id for p in positions], skipped,
                         cached_items=outcome.cached_items, encoded_items=outcome.encoded_items,
                         seconds=time.perf_counter() - start, process_seconds=outcome.process_seconds)


def encode_texts_sharded(encoder: DualEncoder, texts: Sequence[str], processes: ProcessGroup, *,
                         batch_size: int = 256, cache: Optional[EmbeddingCache] = None,
                         shard_size: int = 4096, storage_dtype: str = "float32",
                         caption_preprocessing: Optional[CaptionPreprocessing] = None) -> Optional[EncodedTexts]:
    """``encode.encode_texts`` with the work shared by ``processes`` (see ``encode_images_sharded``)."""
    start = time.perf_counter()
    preprocessing = caption_preprocessing or CaptionPreprocessing()
    texts = preprocessing.apply_all([str(t) for t in texts])
    entry = _open_entry(cache, "texts", _text_key_material(encoder, texts, preprocessing), len(texts), shard_size,
                        storage_dtype) if processes.is_main else None
    with tqdm(desc="encode texts", unit="txt", disable=not processes.is_main) as bar:
        outcome = encode_sharded(
            processes, len(texts), shard_size, batch_size, encoder.embed_dim,
            lambda index: _read_text_shard(entry, index, encoder.embed_dim) if entry is not None else None,
            lambda lo, hi: _encode_text_range(encoder, texts, lo, hi, batch_size, bar, storage_dtype),
            entry.save_shard if entry is not None else None)
    if outcome is None:
        return None
    embeddings, _ = _concat(outcome.shards, encoder.embed_dim)
    if entry is not None:
        entry.mark_complete({"rows": int(len(embeddings))})
    return EncodedTexts(embeddings, cached_items=outcome.cached_items, encoded_items=outcome.encoded_items,
                        seconds=time.perf_counter() - start, process_seconds=outcome.process_seconds)
