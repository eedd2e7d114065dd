"""The compute loop of stage 2: distinct (image, caption) pairs -> ITM logits + ITC, in batches.

Order of work (each step once): tokenize the captions (truncated to ``text_max_length``); ITC text
embeddings per caption (length-sorted batches); then per image chunk (``pair_batching.image_chunks``):
features to the device, ITC image embeddings per image, cross-attention K/V per image (if
``cache_cross_attention_kv``), and the chunk's pairs in length-bucketed batches through the Q-Former ITM.

Every batch is at most ``batch_size`` items and at most what the memory budget allows (``pair_memory_budget``:
``config.pair_memory_mb``, by default 1 GiB on CPU and no cap on CUDA, divided by the scorer's per-pair
estimate ``QFormerItm.pair_activation_bytes``), so a huge ``pair_batch_size`` cannot exhaust host memory;
an allocation failure still halves the batch (``pair_batching.run_adaptive_batches``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from stage2_rerank.config import RerankerConfig
from stage2_rerank.pair_batching import (
    image_chunks,
    length_bucketed_order,
    memory_capped_batch_size,
    pad_token_batch,
    planned_batches,
    run_adaptive_batches,
)
from stage2_rerank.qformer_scorer import itc_scores
from stage2_rerank.types import RerankStats

if TYPE_CHECKING:
    from stage2_rerank.backends.base import RerankerModel

BatchCallback = Callable[[np.ndarray, np.ndarray, np.ndarray], None]

log = logging.getLogger(__name__)

DEFAULT_CPU_PAIR_MEMORY_MB = 1024
"""``pair_memory_mb: null`` on CPU: one Q-Former batch stays under 1 GiB."""


def pair_memory_budget(config: RerankerConfig, device: torch.device) -> int | None:
    """Bytes one Q-Former batch may take: ``config.pair_memory_mb``; if unset 1 GiB on CPU, no cap on CUDA."""
    if config.pair_memory_mb is not None:
        return config.pair_memory_mb * 2**20
    return DEFAULT_CPU_PAIR_MEMORY_MB * 2**20 if device.type == "cpu" else None


def rows_by_key(pairs: np.ndarray, prints: Mapping[int, str], captions: Sequence[str]) -> dict[tuple[str, str], list[int]]:
    """``(image fingerprint, caption text) -> rows of pairs`` for the pairs whose image has a fingerprint (skipped
    images have none): the unit the score cache stores and scoring computes once."""
    rows: dict[tuple[str, str], list[int]] = {}
    for row, (image, caption) in enumerate(pairs.tolist()):
        if image in prints:
            rows.setdefault((prints[image], captions[caption]), []).append(row)
    return rows


def tokenize_captions(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids with [CLS]/[SEP], truncated to ``max_length`` (no padding)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]


def _text_embeddings(model: "RerankerModel", tokens: list[list[int]], batch_size: int,
                     stats: "RerankStats") -> torch.Tensor:
    order = np.argsort([len(t) for t in tokens], kind="stable")
    out: list[tuple[np.ndarray, torch.Tensor]] = []

    def run_batch(start: int, stop: int) -> None:
        sel = order[start:stop]
        ids, mask = pad_token_batch([tokens[i] for i in sel], model.tokenizer.pad_token_id, model.device)
        out.append((sel, model.scorer.text_embeddings(ids, mask)))

    run_adaptive_batches(len(tokens), batch_size, run_batch, "itc_text", stats.oom_events)
    embeds = torch.empty((len(tokens), out[0][1].shape[1]), dtype=out[0][1].dtype, device=model.device)
    for sel, part in out:
        embeds[torch.as_tensor(sel, device=model.device)] = part
    return embeds


def _planned_text_embeddings(model: "RerankerModel", tokens: list[list[int]], batch_size: int,
                             needed: np.ndarray) -> torch.Tensor:
    """``_text_embeddings`` of the one-process batches that hold a ``needed`` caption (whole batches, so every
    embedding has the one-process bits); rows of the other captions stay zero."""
    order = np.argsort([len(t) for t in tokens], kind="stable")
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    embeds: torch.Tensor | None = None
    for sel in (b for b in batches if needed[b].any()):
        ids, mask = pad_token_batch([tokens[i] for i in sel], model.tokenizer.pad_token_id, model.device)
        part = model.scorer.text_embeddings(ids, mask)
        if embeds is None:
            embeds = torch.zeros((len(tokens), part.shape[1]), dtype=part.dtype, device=model.device)
        embeds[torch.as_tensor(sel, device=model.device)] = part
    assert embeds is not None, "no caption is needed"
    return embeds


def _planned_image_embeddings(model: "RerankerModel", features: torch.Tensor, slots: np.ndarray, chunk: np.ndarray,
                              batch_size: int) -> torch.Tensor:
    """``_image_embeddings`` of the images ``slots`` (features ``[len(slots), T, D]``) of ``chunk``, each in a
    batch of the one-process shape (the one-process batch of ``chunk``, other images' rows zero: every image is
    computed on its own, so only the shape matters to its bits)."""
    out: list[torch.Tensor | None] = [None] * len(slots)
    for start in range(0, len(chunk), batch_size):
        batch = chunk[start:start + batch_size]
        mine = np.flatnonzero(np.isin(slots, batch))
        if not len(mine):
            continue
        full = features.new_zeros((len(batch), *features.shape[1:]))
        full[torch.as_tensor(np.searchsorted(batch, slots[mine]), device=features.device)] = features[mine]
        part = model.scorer.image_embeddings(full)
        for row, at in zip(mine.tolist(), np.searchsorted(batch, slots[mine]).tolist()):
            out[row] = part[at]
    return torch.stack(out)  # type: ignore[arg-type]


def _image_embeddings(model: "RerankerModel", features: torch.Tensor, batch_size: int,
                      stats: "RerankStats") -> torch.Tensor:
    parts: list[torch.Tensor] = []

    def run_batch(start: int, stop: int) -> None:
        parts.append(model.scorer.image_embeddings(features[start:stop]))

    run_adaptive_batches(features.shape[0], batch_size, run_batch, "itc_image", stats.oom_events)
    return torch.cat(parts)


def score_missing_pairs(model: "RerankerModel", features_of: Callable[[int], torch.Tensor],
                        captions: Sequence[str], pairs: np.ndarray, config: RerankerConfig, batch_size: int,
                        on_batch: BatchCallback, stats: "RerankStats", progress: bool,
                        owned: np.ndarray | None = None) -> int:
    """Score ``pairs`` int64 ``[M, 2]`` (image index, caption index), all distinct.

    ``features_of(image index)`` gives the image's cached features ``[T, D]``. For every finished batch,
    ``on_batch(positions into pairs, itm logits float32 [b, 2], itc float32 [b])`` is called.
    Batches are capped by the memory budget (see the module doc). Returns ``batch_size``, or the smaller
    batch size in effect at the end after out-of-memory back-offs (not the budget's cap, which depends on
    this call's captions).

    ``owned`` (bool ``[M]``; one process's share in a job of several): only those pairs are scored (only their
    images' features are asked for), in the batches and padding a one-process call makes of all ``pairs``
    (``pair_batching.planned_batches``; ITC embeddings in one-process batch shapes), so their values are the
    one-process values bit for bit, unless an out-of-memory back-off changed the one-process batches.
    """
    scorer, device = model.scorer, model.device
    caption_ids, caption_of_pair = np.unique(pairs[:, 1], return_inverse=True)
    image_ids, slot_of_pair = np.unique(pairs[:, 0], return_inverse=True)
    tokens = tokenize_captions(model.tokenizer, [captions[c] for c in caption_ids], config.text_max_length)
    lengths = np.array([len(t) for t in tokens])
    positions, dim = model.vision.feature_shape
    budget = pair_memory_budget(config, device)
    longest = int(lengths.max())
    itc_size = memory_capped_batch_size(batch_size, scorer.pair_activation_bytes(longest, positions, False), budget)
    per_pair = scorer.pair_activation_bytes(longest, positions, config.cache_cross_attention_kv)
    capped = memory_capped_batch_size(batch_size, per_pair, budget)
    if capped < batch_size:
        log.info("stage 2: %d pairs per Q-Former batch, not pair_batch_size=%d: ~%.1f MiB per pair, budget "
                 "pair_memory_mb=%d", capped, batch_size, per_pair / 2**20, (budget or 0) // 2**20)
    size = capped
    with torch.inference_mode():
        t0 = time.perf_counter()
        if owned is None:
            text_embeds = _text_embeddings(model, tokens, itc_size, stats)
        else:
            needed = np.zeros(len(caption_ids), dtype=bool)
            needed[caption_of_pair[owned]] = True
            text_embeds = _planned_text_embeddings(model, tokens, itc_size, needed)
        stats.seconds["itc"] = stats.seconds.get("itc", 0.0) + time.perf_counter() - t0
        per_image = positions * dim * scorer.dtype.itemsize
        if config.cache_cross_attention_kv:
            per_image += scorer.kv_bytes_per_image(positions)
        pair_lengths = lengths[caption_of_pair]
        bar = tqdm(total=len(pairs) if owned is None else int(owned.sum()), desc="stage2 ITM pairs", unit="pair",
                   disable=not progress)
        for chunk in image_chunks(len(image_ids), per_image, config.kv_chunk_mb * 2**20):
            rows = np.flatnonzero((slot_of_pair >= chunk[0]) & (slot_of_pair <= chunk[-1]))
            order = rows[length_bucketed_order(pair_lengths[rows], slot_of_pair[rows])]
            slots, plan = chunk, None
            if owned is not None:
                plan = planned_batches(order, pair_lengths, size, owned)
                if not plan:
                    continue
                slots = np.unique(slot_of_pair[np.concatenate([items for items, _ in plan])])
            t0 = time.perf_counter()
            features = torch.stack([features_of(int(image_ids[s])).to(scorer.dtype) for s in slots]).to(device)
            image_embeds = _image_embeddings(model, features, itc_size, stats) if plan is None else \
                _planned_image_embeddings(model, features, slots, chunk, itc_size)
            stats.seconds["itc"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            kv = scorer.cross_attention_kv(features) if config.cache_cross_attention_kv else None

            def run_rows(sel: np.ndarray, pad_length: int | None = None) -> None:
                local = torch.as_tensor(np.searchsorted(slots, slot_of_pair[sel]), device=device)
                caps = torch.as_tensor(caption_of_pair[sel], device=device)
                ids, mask = pad_token_batch([tokens[c] for c in caption_of_pair[sel]],
                                            model.tokenizer.pad_token_id, device, pad_length)
                if kv is not None:
                    logits = scorer.itm_logits(ids, mask, kv=kv.select(local))
                else:
                    logits = scorer.itm_logits(ids, mask, features=features.index_select(0, local))
                sims = itc_scores(image_embeds.index_select(0, local), text_embeds.index_select(0, caps))
                on_batch(sel, logits.float().cpu().numpy(), sims.float().cpu().numpy())
                stats.qformer_batches += 1
                bar.update(len(sel))

            if plan is None:
                size = run_adaptive_batches(len(order), size, lambda a, b: run_rows(order[a:b]), "itm",
                                            stats.oom_events)
            else:
                for items, pad_length in plan:
                    run_adaptive_batches(len(items), size,
                                         lambda a, b, items=items, pad_length=pad_length: run_rows(items[a:b],
                                                                                                   pad_length),
                                         "itm", stats.oom_events)
            stats.seconds["itm"] = stats.seconds.get("itm", 0.0) + time.perf_counter() - t0
            features = kv = image_embeds = None  # free this chunk before the next one is stacked
        bar.close()
    return size if size < capped else batch_size
