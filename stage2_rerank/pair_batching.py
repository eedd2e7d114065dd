"""How pairs are grouped into Q-Former batches: image chunks, length buckets, padding, OOM back-off.

- :func:`image_chunks`: images are scored in groups whose features + cached K/V fit a memory budget, so
  each image's K/V is computed exactly once whatever the number of images.
- :func:`length_bucketed_order`: within a chunk, pairs sorted by caption token length (then image), so a
  batch pads to lengths close to its own.
- :func:`pad_token_batch`: right-padded ``input_ids`` / ``attention_mask`` of a batch.
- :func:`run_adaptive_batches`: runs batches; on CUDA out-of-memory halves the batch size and retries the
  same items, recording an :class:`OomEvent`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OomEvent:
    """One CUDA out-of-memory back-off: in ``stage``, batch size ``batch_size`` -> ``new_batch_size``."""

    stage: str
    batch_size: int
    new_batch_size: int


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA out-of-memory error (the only error that triggers a batch-size back-off)."""
    return isinstance(exc, torch.cuda.OutOfMemoryError)


def run_adaptive_batches(n_items: int, batch_size: int, run_batch: Callable[[int, int], None], stage: str,
                         events: list[OomEvent]) -> int:
    """Call ``run_batch(start, stop)`` over ``[0, n_items)`` in order, in batches of ``batch_size``.

    On CUDA OOM the batch size is halved and the same ``start`` retried (the event appended to ``events``);
    OOM at batch size 1 re-raises. Returns the final batch size (later calls may start from it).
    """
    start = 0
    while start < n_items:
        stop = min(start + batch_size, n_items)
        try:
            run_batch(start, stop)
        except Exception as exc:  # noqa: BLE001 - only OOM is handled, everything else re-raised
            if not is_out_of_memory(exc) or batch_size == 1:
                raise
            new_size = max(1, batch_size // 2)
            events.append(OomEvent(stage, batch_size, new_size))
            log.warning("%s: CUDA out of memory at batch size %d, retrying with %d", stage, batch_size, new_size)
            batch_size = new_size
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        start = stop
    return batch_size


def image_chunks(n_images: int, bytes_per_image: int, budget_bytes: int) -> list[np.ndarray]:
    """Split image slots ``0..n_images-1`` into consecutive groups of at most ``budget // bytes_per_image``
    (at least 1) images."""
    per_chunk = max(1, budget_bytes // max(1, bytes_per_image))
    return [np.arange(s, min(s + per_chunk, n_images)) for s in range(0, n_images, per_chunk)]


def length_bucketed_order(token_lengths: np.ndarray, image_slots: np.ndarray) -> np.ndarray:
    """Permutation of pairs sorted by caption token length, ties by image slot (stable)."""
    return np.lexsort((image_slots, token_lengths))


def pad_token_batch(token_ids: Sequence[Sequence[int]], pad_id: int, device: torch.device,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the batch's longest sequence: ``input_ids`` and ``attention_mask`` int64 ``[B, L]``."""
    length = max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_ids), length), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, :len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        mask[row, :len(ids)] = 1
    return input_ids.to(device), mask.to(device)
