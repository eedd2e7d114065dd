"""Reranker backends by name: ``BACKENDS`` (a plain dict) and :func:`load_backend`; each loads a
:class:`RerankerModel`. One backend per file (``blip2_itm``); checkpoint lookup and identity in ``checkpoint``."""

from __future__ import annotations

from typing import Callable

from stage2_rerank.backends.base import RERANKER_PROVIDER_KEY, RerankerModel
from stage2_rerank.backends.blip2_itm import build_blip2_itm, load_blip2_itm
from stage2_rerank.backends.checkpoint import directory_identity, resolve_checkpoint
from stage2_rerank.config import RerankerConfig

BACKENDS: dict[str, Callable[[RerankerConfig], RerankerModel]] = {
    "blip2_itm": load_blip2_itm,
}


def load_backend(config: RerankerConfig) -> RerankerModel:
    """Load ``config.backend``; an unknown name raises ValueError listing the known ones."""
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown reranker backend {config.backend!r}; known: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[config.backend](config)


__all__ = ["BACKENDS", "RERANKER_PROVIDER_KEY", "RerankerModel", "build_blip2_itm", "directory_identity",
           "load_backend", "load_blip2_itm", "resolve_checkpoint"]
