"""Batched encoding of images and texts, shard by shard, through the embedding cache.

Images are decoded and preprocessed by a torch DataLoader (``num_workers`` processes); an image
that fails to open or preprocess follows ``on_bad_input``: ``error`` raises :class:`BadImageError`
naming it (the reason carries the file name from ``open()``), ``skip`` leaves it out and records
it. Results keep input order; ``positions`` says which inputs have a row.

With a cache, each shard is read through ``CacheEntry.read_shard``: a missing or damaged shard (moved aside
with a WARNING naming the file) is encoded again and saved, so a damaged cache costs time, never results.

``storage_dtype`` (``float32`` or ``float16``, ``Stage1Config.cache_dtype``): the dtype the cache stores; fresh
embeddings are rounded to it (``embedding_cache.as_stored``) with or without a cache, so the returned
embeddings (always float32) are the same whether they were encoded now or read from the cache.
Multi-vector image encoders (``vectors_per_image`` V > 1, e.g. ``blip2_itc``) give ``[B, V, D]`` per batch:
cache shards store each image as one row of ``V * D`` floats, the key names the shape, and
``EncodedImages.embeddings`` is ``[n_ok, V, D]``. A ``vision_sink`` receives the vision tower's output of every
batch an encoder with ``encode_images_and_vision`` encodes (not of cached shards), for a later stage that
needs the same features (see ``stage1_dual.protocols.VisionSink``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from rrbench_base.caption_preprocessing import CaptionPreprocessing
from rrbench_base.image_refs import BadImageError, ImageRef, as_image_refs
from stage1_dual.embedding_cache import CacheEntry, EmbeddingCache, ShardData, as_stored, items_digest
from stage1_dual.preprocess import build_image_transform
from stage1_dual.protocols import DualEncoder, VisionSink, vectors_per_image

log = logging.getLogger(__name__)


@dataclass
class SkippedImage:
    """An image left out under ``on_bad_input="skip"``: input position, id, and why."""

    position: int
    id: str
    reason: str


@dataclass
class EncodedImages:
    """Image embeddings in input order, for the images that could be encoded.

    ``embeddings`` float32 ``[n_ok, D]`` (rows L2-normalised), or ``[n_ok, V, D]`` for a multi-vector encoder
    (every vector L2-normalised); ``positions`` int64 ``[n_ok]``: input
    position of each row; ``ids``: their ids; ``skipped``: the images left out; ``cached_items`` /
    ``encoded_items``: how many inputs came from the cache / went through the encoder; ``seconds``: wall time;
    ``process_seconds``: in a job of several processes, the seconds each spent encoding its share (empty in one).
    """

    embeddings: np.ndarray
    positions: np.ndarray
    ids: list[str]
    skipped: list[SkippedImage] = field(default_factory=list)
    cached_items: int = 0
    encoded_items: int = 0
    seconds: float = 0.0
    process_seconds: list[float] = field(default_factory=list)


@dataclass
class EncodedTexts:
    """Text embeddings float32 ``[n, D]`` (rows L2-normalised) in input order, with cache counts and times (as
    :class:`EncodedImages`)."""

    embeddings: np.ndarray
    cached_items: int = 0
    encoded_items: int = 0
    seconds: float = 0.0
    process_seconds: list[float] = field(default_factory=list)


class _ImageDataset(Dataset):
    """Items ``(position, tensor or None, error text)`` for the given input positions."""

    def __init__(self, images: Sequence[ImageRef], positions: Sequence[int],
                 transform: Callable[[Any], torch.Tensor]) -> None:
        self.images = images
        self.positions = list(positions)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[int, Optional[torch.Tensor], str]:
        position = self.positions[i]
        try:
            return position, self.transform(self.images[position].open()), ""
        except Exception as exc:  # noqa: BLE001 - any failure is a bad input, handled by policy
            return position, None, f"{type(exc).__name__}: {exc}"


def _collate(samples: list[tuple[int, Optional[torch.Tensor], str]]) -> tuple[list[int], Optional[torch.Tensor], list[tuple[int, str]]]:
    good = [(p, t) for p, t, _ in samples if t is not None]
    failures = [(p, e) for p, t, e in samples if t is None]
    pixels = torch.stack([t for _, t in good]) if good else None
    return [p for p, _ in good], pixels, failures


def _safe_fingerprint(image: ImageRef) -> str:
    try:
        return image.fingerprint()
    except Exception as exc:  # noqa: BLE001 - the image is judged when opened
        return f"unreadable:{image.id}:{type(exc).__name__}"


def _concat(shards: list[ShardData], dim: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [s.embeddings for s in shards if len(s.positions)]
    embeddings = np.concatenate(rows).astype(np.float32, copy=False) if rows else np.zeros((0, dim), np.float32)
    positions = np.concatenate([s.positions for s in shards]).astype(np.int64) if shards else np.zeros(0, np.int64)
    return embeddings, positions


def _image_key_material(encoder: DualEncoder, images: Sequence[ImageRef], preprocess_text: str) -> dict[str, Any]:
    """Cache-key material of an image encoding (the shape only for multi-vector encoders, so single-vector keys
    are unchanged)."""
    material = {"encoder": encoder.fingerprint(), "precision": encoder.precision, "preprocess": preprocess_text,
                "items": items_digest(_safe_fingerprint(image) for image in images)}
    vectors = vectors_per_image(encoder)
    if vectors > 1:
        material["image_shape"] = [vectors, encoder.embed_dim]
    return material


def _text_key_material(encoder: DualEncoder, texts: Sequence[str], preprocessing: CaptionPreprocessing
                       ) -> dict[str, Any]:
    """Cache-key material of a text encoding; ``texts`` already preprocessed (its identity in the key unless
    ``none``)."""
    material = {"encoder": encoder.fingerprint(), "precision": encoder.precision, "items": items_digest(texts)}
    if preprocessing.changes_text:
        material["caption_preprocessing"] = preprocessing.identity()
    return material


def _open_entry(cache: Optional[EmbeddingCache], kind: str, material: dict[str, Any], n: int,
                shard_size: int, storage_dtype: str) -> Optional[CacheEntry]:
    return cache.entry(kind, material, n, shard_size, storage_dtype) if cache is not None else None


def encode_images(encoder: DualEncoder, images: Sequence[ImageRef], *, preprocess: str = "model",
                  batch_size: int = 64, num_workers: int = 0, on_bad_input: str = "error",
                  cache: Optional[EmbeddingCache] = None, shard_size: int = 4096,
                  storage_dtype: str = "float32", vision_sink: Optional[VisionSink] = None) -> EncodedImages:
    """Encode ``images`` (see module docstring); cached shards are loaded, missing ones encoded and saved.

    ``images``: dataset items (:class:`ImageRef`), PIL images or file paths (``rrbench_base.image_refs``; anything
    else raises BadImageError). ``vision_sink``: see the module docstring (ignored for encoders without
    ``encode_images_and_vision``)."""
    images = as_image_refs(images)
    if on_bad_input not in ("error", "skip"):
        raise ValueError(f"on_bad_input must be error or skip, got {on_bad_input!r}")
    start = time.perf_counter()
    transform, preprocess_text = build_image_transform(encoder, preprocess)
    vectors = vectors_per_image(encoder)
    row_width = vectors * encoder.embed_dim
    if vision_sink is not None and not hasattr(encoder, "encode_images_and_vision"):
        vision_sink = None
    entry = _open_entry(cache, "images", _image_key_material(encoder, images, preprocess_text), len(images),
                        shard_size, storage_dtype)
    num_shards = entry.num_shards if entry else max(1, -(-len(images) // shard_size))
    shards: list[ShardData] = []
    cached = encoded = 0
    with tqdm(total=len(images), desc="encode images", unit="img") as bar:
        for index in range(num_shards):
            lo, hi = index * shard_size, min((index + 1) * shard_size, len(images))
            shard = entry.read_shard(index, row_width) if entry is not None else None
            if shard is not None:
                cached += hi - lo
                bar.update(hi - lo)
            else:
                shard = _encode_image_shard(encoder, images, range(lo, hi), transform, batch_size,
                                            num_workers, on_bad_input, bar, row_width, vision_sink)
                shard.embeddings = as_stored(shard.embeddings, storage_dtype)
                encoded += hi - lo
                if entry is not None:
                    entry.save_shard(index, shard)
            if on_bad_input == "error" and shard.skipped:
                first = shard.skipped[0]
                raise BadImageError(f"image {first['id']!r} (cached as skipped by an earlier on_bad_input=skip run): "
                                    f"{first['reason']}")
            shards.append(shard)
    embeddings, positions = _concat(shards, row_width)
    if vectors > 1:
        embeddings = embeddings.reshape(len(embeddings), vectors, encoder.embed_dim)
    skipped = [SkippedImage(int(s["position"]), s["id"], s["reason"]) for shard in shards for s in shard.skipped]
    if skipped:
        log.warning("skipped %d image(s) that could not be encoded; first: %s", len(skipped), skipped[0])
    result = EncodedImages(embeddings, positions, [images[int(p)].id for p in positions], skipped,
                           cached_items=cached, encoded_items=encoded, seconds=time.perf_counter() - start)
    if entry is not None:
        entry.mark_complete({"rows": int(len(positions)), "skipped": len(skipped)})
    return result


def _encode_image_shard(encoder: DualEncoder, images: Sequence[ImageRef], positions: range,
                        transform: Callable[[Any], torch.Tensor], batch_size: int, num_workers: int,
                        on_bad_input: str, bar: tqdm, row_width: int,
                        vision_sink: Optional[VisionSink] = None) -> ShardData:
    """Encode one shard; rows are flattened to ``row_width`` floats (``V * D`` for multi-vector encoders)."""
    # the loader draws its workers' base seed from `generator` (else from torch's global generator, even with
    # no workers); the transforms are deterministic, so a fixed private seed changes nothing else
    loader = DataLoader(_ImageDataset(images, positions, transform), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=_collate,
                        pin_memory=encoder.device.type == "cuda", generator=torch.Generator().manual_seed(0))
    rows: list[torch.Tensor] = []
    kept: list[int] = []
    skipped: list[dict[str, Any]] = []
    for batch_positions, pixels, failures in loader:
        for position, reason in failures:
            if on_bad_input == "error":
                raise BadImageError(f"image {images[position].id!r} (input position {position}) could not be "
                                    f"encoded: {reason} (set on_bad_input: skip to leave such images out)")
            skipped.append({"position": position, "id": images[position].id, "reason": reason})
        if pixels is not None:
            if vision_sink is not None:
                encoded, features = encoder.encode_images_and_vision(pixels)
                vision_sink([images[p] for p in batch_positions], features)
            else:
                encoded = encoder.encode_images(pixels)
            rows.append(encoded.reshape(len(encoded), row_width))
            kept.extend(batch_positions)
        bar.update(len(batch_positions) + len(failures))
    embeddings = torch.cat(rows).numpy() if rows else np.zeros((0, row_width), np.float32)
    return ShardData(embeddings.astype(np.float32, copy=False), np.asarray(kept, np.int64), skipped)


def encode_texts(encoder: DualEncoder, texts: Sequence[str], *, batch_size: int = 256,
                 cache: Optional[EmbeddingCache] = None, shard_size: int = 4096,
                 storage_dtype: str = "float32",
                 caption_preprocessing: Optional[CaptionPreprocessing] = None) -> EncodedTexts:
    """Encode ``texts`` in input order; cached shards are loaded, missing ones encoded and saved.

    ``caption_preprocessing`` (None = ``none``) is applied to every text first (``blip_caption``: an empty
    result raises ``rrbench_base.caption_preprocessing.EmptyCaptionError`` naming its position); the cache key
    holds the preprocessed texts and, unless ``none``, the preprocessing's identity."""
    start = time.perf_counter()
    preprocessing = caption_preprocessing or CaptionPreprocessing()
    texts = preprocessing.apply_all([str(t) for t in texts])
    entry = _open_entry(cache, "texts", _text_key_material(encoder, texts, preprocessing), len(texts), shard_size,
                        storage_dtype)
    num_shards = entry.num_shards if entry else max(1, -(-len(texts) // shard_size))
    shards: list[ShardData] = []
    cached = encoded = 0
    with tqdm(total=len(texts), desc="encode texts", unit="txt") as bar:
        for index in range(num_shards):
            lo, hi = index * shard_size, min((index + 1) * shard_size, len(texts))
            shard = _read_text_shard(entry, index, encoder.embed_dim) if entry is not None else None
            if shard is not None:
                shards.append(shard)
                cached += hi - lo
                bar.update(hi - lo)
                continue
            shard = _encode_text_range(encoder, texts, lo, hi, batch_size, bar, storage_dtype)
            if entry is not None:
                entry.save_shard(index, shard)
            shards.append(shard)
            encoded += hi - lo
    embeddings, _ = _concat(shards, encoder.embed_dim)
    if entry is not None:
        entry.mark_complete({"rows": int(len(embeddings))})
    return EncodedTexts(embeddings, cached_items=cached, encoded_items=encoded, seconds=time.perf_counter() - start)


def _read_text_shard(entry: CacheEntry, index: int, dim: int) -> Optional[ShardData]:
    """A cached text shard, when present, sound and holding every position of its range."""
    shard = entry.read_shard(index, dim)
    lo, hi = entry.shard_range(index)
    return shard if shard is not None and np.array_equal(shard.positions, np.arange(lo, hi)) else None


def _encode_text_range(encoder: DualEncoder, texts: Sequence[str], lo: int, hi: int, batch_size: int,
                       bar: tqdm, storage_dtype: str = "float32") -> ShardData:
    """Texts ``[lo, hi)`` in batches of ``batch_size`` starting at ``lo``, rounded to ``storage_dtype``."""
    rows = []
    for b in range(lo, hi, batch_size):
        rows.append(encoder.encode_texts(texts[b:min(b + batch_size, hi)]))
        bar.update(min(b + batch_size, hi) - b)
    embeddings = torch.cat(rows).numpy() if rows else np.zeros((0, encoder.embed_dim), np.float32)
    return ShardData(as_stored(embeddings, storage_dtype), np.arange(lo, hi, dtype=np.int64))
