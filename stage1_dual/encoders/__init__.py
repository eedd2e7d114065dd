"""Dual-encoder backends by name: ``ENCODER_BACKENDS`` (a plain dict) and :func:`load_encoder`."""

from __future__ import annotations

from typing import Callable

from stage1_dual.config import EncoderConfig
from stage1_dual.encoders.base import EncoderParts, TorchDualEncoder
from stage1_dual.encoders.blip2_itc_backend import Blip2ItcEncoder, load_blip2_itc
from stage1_dual.encoders.hf_clip_backend import HFClipEncoder, load_hf_clip
from stage1_dual.encoders.open_clip_backend import OpenClipEncoder, load_open_clip
from stage1_dual.encoders.rrbench_dual_backend import RRBenchDualEncoder, load_rrbench_dual
from stage1_dual.protocols import DualEncoder, UnknownBackendError

ENCODER_BACKENDS: dict[str, Callable[[EncoderConfig], DualEncoder]] = {
    "open_clip": load_open_clip,
    "hf_clip": load_hf_clip,
    "rrbench_dual": load_rrbench_dual,
    "blip2_itc": load_blip2_itc,
}
"""Backend name -> loader ``(EncoderConfig) -> DualEncoder``."""


def load_encoder(cfg: EncoderConfig) -> DualEncoder:
    """Load the dual encoder named by ``cfg.backend``; an unknown name lists the known ones."""
    if cfg.backend not in ENCODER_BACKENDS:
        raise UnknownBackendError(
            f"unknown encoder backend {cfg.backend!r}; known backends: {', '.join(sorted(ENCODER_BACKENDS))}")
    return ENCODER_BACKENDS[cfg.backend](cfg)


__all__ = ["Blip2ItcEncoder", "ENCODER_BACKENDS", "EncoderParts", "HFClipEncoder", "OpenClipEncoder",
           "RRBenchDualEncoder", "TorchDualEncoder", "load_encoder"]
