"""How pairs are grouped into Q-Former batches: image chunks, length buckets, padding, OOM back-off.

- :func:`image_chunks`: images are scored in groups whose features + cached K/V fit a memory budget, so
  each image's K/V is computed exactly once whatever the number of images.
- :func:`length_bucketed_order`: within a chunk, pairs sorted by caption token length (then image), so a
  batch pads to lengths close to its own.
- :func:`pad_token_batch`: right-padded ``input_ids`` / ``attention_mask`` of a batch.
- :func:`planned_batches`: a one-process run's batches restricted to one process's share of the items.
- :func:`memory_capped_batch_size`: the batch size that keeps one batch's activations under a byte budget.
- :func:`run_adaptive_batches`: runs batches; on out-of-memory (CUDA, or the CPU allocator: see
  :func:`is_out_of_memory`) halves the batch size and retries the same items, recording an :class:`OomEvent`.
  (accelerate's ``find_executable_batch_size`` restarts the whole function on OOM; here finished batches are
  kept and only the failed one is retried, so only its OOM test, ``should_reduce_batch_size``, is reused.)
"""

from __future__ import annotations

import gc
import logging
from typing import Callable, Sequence

import numpy as np
import torch
from accelerate.utils.memory import should_reduce_batch_size

from stage2_rerank.types import OomEvent

log = logging.getLogger(__name__)


CPU_OOM_MESSAGES = ("DefaultCPUAllocator: can't allocate memory", "not enough memory")
"""RuntimeError texts of a failed CPU allocation (Linux/macOS; Windows says "not enough memory")."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation failure, the only error that triggers a batch-size back-off: CUDA OOM,
    ``MemoryError``, a RuntimeError of torch's CPU allocator (``CPU_OOM_MESSAGES``), or what accelerate's
    ``should_reduce_batch_size`` recognises (CUDA/XPU/MPS/CPU out of memory)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    if isinstance(exc, RuntimeError) and any(text in str(exc) for text in CPU_OOM_MESSAGES):
        return True
    return isinstance(exc, Exception) and should_reduce_batch_size(exc)


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def memory_capped_batch_size(batch_size: int, bytes_per_item: int, budget_bytes: int | None) -> int:
    """``min(batch_size, budget_bytes // bytes_per_item)``, at least 1; ``batch_size`` when no budget."""
    if budget_bytes is None:
        return batch_size
    return max(1, min(batch_size, budget_bytes // max(1, bytes_per_item)))


def run_adaptive_batches(n_items: int, batch_size: int, run_batch: Callable[[int, int], None], stage: str,
                         events: list[OomEvent]) -> int:
    """Call ``run_batch(start, stop)`` over ``[0, n_items)`` in order, in batches of ``batch_size``.

    On out-of-memory (:func:`is_out_of_memory`) the batch size is halved and the same ``start`` retried (the
    event appended to ``events``); OOM at batch size 1 re-raises. Returns the final batch size (later calls may
    start from it).
    """
    start = 0
    while start < n_items:
        stop = min(start + batch_size, n_items)
        try:
            run_batch(start, stop)
        except Exception as exc:  # noqa: BLE001 - only OOM is handled, everything else re-raised
            if not is_out_of_memory(exc) or batch_size == 1:
                raise
            error = _describe(exc)
        else:
            start = stop
            continue
        # out of the handler, so the failed batch's frames (and tensors) are released before retrying
        new_size = max(1, batch_size // 2)
        events.append(OomEvent(stage, batch_size, new_size, error))
        log.warning("%s: out of memory at batch size %d (%s), retrying with %d", stage, batch_size, error, new_size)
        batch_size = new_size
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
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
                    length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to ``length`` (default: the batch's longest sequence): ``input_ids`` and ``attention_mask``
    int64 ``[B, L]``."""
    length = max(len(ids) for ids in token_ids) if length is None else length
    input_ids = torch.full((len(token_ids), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_ids), length), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, :len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        mask[row, :len(ids)] = 1
    return input_ids.to(device), mask.to(device)


def planned_batches(order: np.ndarray, token_lengths: np.ndarray, batch_size: int,
                    owned: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The batches a one-process run makes of ``order`` (consecutive runs of ``batch_size`` items, each padded to
    its longest ``token_lengths``), restricted to the ``owned`` items (bool, indexed like ``token_lengths``):
    ``(items, padded length)`` of every batch that keeps at least one item. The Q-Former's value for an item
    depends on the item and its padded length only, not on the other items of its batch, so a process that
    scores its items in these batches gets the bits a one-process run gets."""
    out = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        mine = batch[owned[batch]]
        if len(mine):
            out.append((mine, int(token_lengths[batch].max())))
    return out
