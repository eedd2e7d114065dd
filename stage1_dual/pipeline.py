"""Stage 1 end to end from a :class:`Stage1Config`: load encoder, encode (cached), index, candidates.

In a job of several processes (``processes``) the encoding is shared (``stage1_dual.sharded_encode``), the main
process builds the index and searches, and every process receives the same :class:`Stage1Result`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from rrbench_base.candidates import Candidates
from rrbench_base.image_refs import ImageRef
from rrbench_base.process_group import SINGLE_PROCESS, ProcessGroup
from stage1_dual.config import Stage1Config
from stage1_dual.embedding_cache import EmbeddingCache
from stage1_dual.encode import EncodedImages, EncodedTexts, encode_images, encode_texts
from stage1_dual.encoders import load_encoder
from stage1_dual.protocols import DualEncoder, VisionSink
from stage1_dual.retrieve import retrieve_both_directions
from stage1_dual.sharded_encode import encode_images_sharded, encode_texts_sharded

log = logging.getLogger(__name__)


@dataclass
class Stage1Result:
    """Embeddings of both sides and the candidates of both directions (``candidates["t2i"|"i2t"]``)."""

    images: EncodedImages
    texts: EncodedTexts
    candidates: dict[str, Candidates]
    encoder: str

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts, skips and timings (for results.json); ``process_seconds`` (each process's encoding
        time) only in a job of several processes."""
        images = {"rows": int(len(self.images.positions)), "skipped": [vars(s) for s in self.images.skipped],
                  "cached_items": self.images.cached_items, "encoded_items": self.images.encoded_items,
                  "seconds": self.images.seconds}
        texts = {"rows": int(len(self.texts.embeddings)), "cached_items": self.texts.cached_items,
                 "encoded_items": self.texts.encoded_items, "seconds": self.texts.seconds}
        for side, encoded in ((images, self.images), (texts, self.texts)):
            if encoded.process_seconds:
                side["process_seconds"] = encoded.process_seconds
        return {"encoder": self.encoder, "images": images, "texts": texts,
                "candidates": {name: c.summary() for name, c in self.candidates.items()}}


def encode_with_cache(encoder: DualEncoder, cfg: Stage1Config, images: Sequence[ImageRef],
                      texts: Sequence[str], vision_sink: Optional[VisionSink] = None
                      ) -> tuple[EncodedImages, EncodedTexts]:
    """Encode images and texts as ``cfg`` says (batching, workers, image and caption preprocessing, cache,
    bad-input policy).

    With ``cfg.cache_dir`` the embeddings go through :class:`EmbeddingCache`: keyed by content (encoder
    fingerprint, image / caption preprocessing, precision, items) and ``cfg.cache_dtype``, every shard
    checksummed; a damaged shard is moved aside with a WARNING naming it and recomputed, so the result never
    depends on the cache's state (with ``cache_dtype: float16`` the embeddings are float16-rounded either way).
    ``vision_sink``: see ``stage1_dual.encode``."""
    cache = EmbeddingCache(cfg.cache_dir) if cfg.cache_dir is not None else None
    encoded_images = encode_images(encoder, images, preprocess=cfg.encoder.preprocess,
                                   batch_size=cfg.encoder.batch_size, num_workers=cfg.encoder.num_workers,
                                   on_bad_input=cfg.on_bad_input, cache=cache, shard_size=cfg.cache_shard_size,
                                   storage_dtype=cfg.cache_dtype, vision_sink=vision_sink)
    encoded_texts = encode_texts(encoder, texts, batch_size=cfg.encoder.batch_size, cache=cache,
                                 shard_size=cfg.cache_shard_size, storage_dtype=cfg.cache_dtype,
                                 caption_preprocessing=cfg.caption_preprocessing)
    return encoded_images, encoded_texts


def run_stage1(cfg: Stage1Config, images: Sequence[ImageRef], texts: Sequence[str],
               encoder: Optional[DualEncoder] = None, vision_sink: Optional[VisionSink] = None,
               processes: ProcessGroup = SINGLE_PROCESS) -> Stage1Result:
    """Load the encoder (unless given), encode both sides, retrieve both directions at ``cfg.depth`` (see the
    module doc for ``processes``). ``vision_sink``: receives the vision tower's output of the images encoded now
    (see ``stage1_dual.encode``; one process only)."""
    encoder = encoder if encoder is not None else load_encoder(cfg.encoder)
    if not processes.distributed:
        encoded_images, encoded_texts = encode_with_cache(encoder, cfg, images, texts, vision_sink)
    else:
        if vision_sink is not None:
            raise ValueError("a vision_sink needs one process (stage 2 shards images differently)")
        cache = EmbeddingCache(cfg.cache_dir) if cfg.cache_dir is not None and processes.is_main else None
        encoded_images = encode_images_sharded(
            encoder, images, processes, preprocess=cfg.encoder.preprocess, batch_size=cfg.encoder.batch_size,
            num_workers=cfg.encoder.num_workers, on_bad_input=cfg.on_bad_input, cache=cache,
            shard_size=cfg.cache_shard_size, storage_dtype=cfg.cache_dtype)
        encoded_texts = encode_texts_sharded(encoder, texts, processes, batch_size=cfg.encoder.batch_size,
                                             cache=cache, shard_size=cfg.cache_shard_size,
                                             storage_dtype=cfg.cache_dtype,
                                             caption_preprocessing=cfg.caption_preprocessing)
        if not processes.is_main:
            return processes.broadcast(None)
    candidates = retrieve_both_directions(encoded_images.embeddings, encoded_texts.embeddings, cfg.index, cfg.depth,
                                          image_positions=encoded_images.positions)
    return processes.broadcast(Stage1Result(encoded_images, encoded_texts, candidates, encoder.fingerprint()))
