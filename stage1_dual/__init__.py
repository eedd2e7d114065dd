"""Stage 1 of rrbench: dual encoders, cached embeddings, nearest-neighbour index, top-N candidates.

Public API (the experiment runner's entry points), importable from ``stage1_dual``:
- :class:`Stage1Config` / :class:`EncoderConfig` / :class:`IndexConfig` (``stage1:`` YAML key);
- :func:`load_encoder` (backends in ``ENCODER_BACKENDS``) -> :class:`DualEncoder`;
- :func:`encode_images` / :func:`encode_texts` / :func:`encode_with_cache` (embedding cache); images may be
  dataset items, PIL images or file paths (:func:`as_image_refs`);
- :func:`build_index` (types in ``INDEX_BUILDERS``), :func:`search_candidates`,
  :func:`retrieve_both_directions` -> :class:`Candidates`;
- :func:`run_stage1` -> :class:`Stage1Result` (all of the above from one config).

Names are resolved on first use (PEP 562), so ``import stage1_dual.config`` stays light and does
not import torch models, transformers or faiss.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "EncoderConfig": "stage1_dual.config",
    "IndexConfig": "stage1_dual.config",
    "Stage1Config": "stage1_dual.config",
    "EmbeddingCache": "stage1_dual.embedding_cache",
    "EncodedImages": "stage1_dual.encode",
    "EncodedTexts": "stage1_dual.encode",
    "SkippedImage": "stage1_dual.encode",
    "encode_images": "stage1_dual.encode",
    "encode_texts": "stage1_dual.encode",
    "ENCODER_BACKENDS": "stage1_dual.encoders",
    "as_image_ref": "rrbench_base.image_refs",
    "as_image_refs": "rrbench_base.image_refs",
    "EncoderParts": "stage1_dual.encoders",
    "load_encoder": "stage1_dual.encoders",
    "INDEX_BUILDERS": "stage1_dual.index",
    "SearchIndex": "stage1_dual.index",
    "build_index": "stage1_dual.index",
    "Stage1Result": "stage1_dual.pipeline",
    "encode_with_cache": "stage1_dual.pipeline",
    "run_stage1": "stage1_dual.pipeline",
    "BadImageError": "rrbench_base.image_refs",
    "DualEncoder": "stage1_dual.protocols",
    "ImageRef": "rrbench_base.image_refs",
    "ModelNotFoundError": "stage1_dual.protocols",
    "Stage1Error": "stage1_dual.protocols",
    "UnknownBackendError": "stage1_dual.protocols",
    "Candidates": "rrbench_base.candidates",
    "Direction": "rrbench_base.candidates",
    "retrieve_both_directions": "stage1_dual.retrieve",
    "search_candidates": "stage1_dual.retrieve",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stage1_dual' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
