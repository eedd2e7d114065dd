"""What a reranker backend loads: :class:`RerankerModel` (vision provider + Q-Former scorer + tokenizer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from stage2_rerank.config import dtype_name
from stage2_rerank.protocols import VisionFeatureProvider
from stage2_rerank.qformer_scorer import QFormerItm

RERANKER_PROVIDER_KEY = "rrbench_vision_provider"
"""Key of a checkpoint's ``config.json`` naming the vision provider its Q-Former was trained on."""


@dataclass
class RerankerModel:
    """A loaded backend, ready to score (see ``rerank.Reranker``).

    Attributes:
        backend: backend name.
        checkpoint_identity: content identity of the exact checkpoint files (``sha256:<hex>``, see
            :func:`~stage2_rerank.backends.checkpoint.directory_identity`), or a caller's name for an in-memory model.
        vision: the vision feature provider.
        scorer: the Q-Former ITM/ITC scorer (on ``device``, in eval mode).
        tokenizer: the checkpoint's caption tokenizer (BERT, with [CLS]/[SEP]).
        device: where the scorer runs.
    """

    backend: str
    checkpoint_identity: str
    vision: VisionFeatureProvider
    scorer: QFormerItm
    tokenizer: Any
    device: torch.device

    @property
    def precision(self) -> str:
        """``qformer=<dtype>`` (the vision dtype is part of the provider identity)."""
        return f"qformer={dtype_name(self.scorer.dtype)}"
