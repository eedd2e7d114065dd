"""Typed configs of stage 2: the reranker (:class:`RerankerConfig`) and a fusion rule (:class:`FusionConfig`).

Both are plain dataclasses validated in ``__post_init__`` and built from YAML by the experiment runner
(``stage2:`` key) through ``eval.typed_config.from_dict``; only str/int/float/bool/Path/Literal/Optional
field types are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import torch

Precision = Literal["auto", "fp32", "fp16", "bf16"]
OnBadInput = Literal["error", "skip"]
FusionRuleName = Literal["itm", "itm+itc", "alpha", "rrf", "residual"]

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass
class RerankerConfig:
    """How stage 2 loads and runs a cross-encoder reranker.

    Attributes:
        backend: name in ``stage2_rerank.backends.BACKENDS`` (``"blip2_itm"``: a
            ``transformers.Blip2ForImageTextRetrieval`` checkpoint).
        model: Hugging Face hub id (``Salesforce/blip2-itm-vit-g``, ``Salesforce/blip2-itm-vit-g-coco``) or a
            local directory holding the checkpoint and its processor. With ``HF_HUB_OFFLINE=1`` a hub id must
            already be in the local Hugging Face cache (otherwise loading fails at once, naming the id).
        vision_provider: name in ``stage2_rerank.vision_providers.VISION_PROVIDERS`` that turns images into
            the feature grid the Q-Former cross-attends to; ``None`` = the backend's own (``"blip2_vit"`` for
            ``blip2_itm``: the checkpoint's ViT-g incl. its post-layernorm).
        precision: Q-Former + heads dtype. ``auto`` = fp16 on CUDA, fp32 on CPU. fp16 is refused on CPU;
            any reduced precision must be backed by a parity report against fp32 (see ``parity.py``).
        vision_precision: vision tower dtype; ``auto`` = fp16 on CUDA, fp32 on CPU (fp16 refused on CPU).
        text_max_length: captions are truncated to this many tokens incl. [CLS]/[SEP] (LAVIS uses 35).
        pair_batch_size: (image, caption) pairs per Q-Former forward, at most what ``pair_memory_mb`` allows
            (halved automatically on out-of-memory, CUDA or CPU).
        pair_memory_mb: memory one Q-Former batch may take, estimated from the Q-Former's sizes and the longest
            caption (``QFormerItm.pair_activation_bytes``); batches (ITM pairs, ITC captions and images) are
            capped to fit. ``None`` = 1024 on CPU, no cap on CUDA (where an OOM halves the batch instead).
        vision_batch_size: images per vision-tower forward.
        cache_dir: root of the on-disk caches (pair scores in ``scores.sqlite``, spilled vision features in
            ``vision_features/``); ``None`` = no score cache, spills go to a temporary directory.
        vision_memory_mb: vision features kept in RAM up to this size; beyond it they are spilled to disk in
            fp16 (features read back from disk are therefore fp16-rounded).
        cache_cross_attention_kv: compute each image's cross-attention keys/values once per Q-Former layer
            and reuse them for all its pairs (exact; see ``qformer_scorer.QFormerItm.cross_attention_kv``).
        kv_chunk_mb: device memory for the features + cached K/V of one group ("chunk") of images scored
            together; bounds memory whatever the number of images.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        on_bad_input: an image that cannot be opened: ``error`` raises, ``skip`` gives its pairs NaN scores
            and records the image in the run's stats.
    """

    backend: str = "blip2_itm"
    model: str = "Salesforce/blip2-itm-vit-g"
    vision_provider: Optional[str] = None
    precision: Precision = "auto"
    vision_precision: Precision = "auto"
    text_max_length: int = 35
    pair_batch_size: int = 32
    pair_memory_mb: Optional[int] = None
    vision_batch_size: int = 8
    cache_dir: Optional[Path] = None
    vision_memory_mb: int = 4096
    cache_cross_attention_kv: bool = True
    kv_chunk_mb: int = 1024
    device: str = "auto"
    on_bad_input: OnBadInput = "error"

    def __post_init__(self) -> None:
        if not self.backend:
            raise ValueError("backend must be a non-empty name")
        if not self.model:
            raise ValueError("model must be a hub id or a local directory")
        for name in ("precision", "vision_precision"):
            value = getattr(self, name)
            if value not in ("auto", *TORCH_DTYPES):
                raise ValueError(f"{name} must be one of auto, fp32, fp16, bf16; got {value!r}")
        for name in ("text_max_length", "pair_batch_size", "vision_batch_size", "kv_chunk_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.text_max_length < 3:
            raise ValueError(f"text_max_length must be >= 3 ([CLS] token [SEP]), got {self.text_max_length}")
        if self.pair_memory_mb is not None and self.pair_memory_mb < 1:
            raise ValueError(f"pair_memory_mb must be >= 1 (or null for the default), got {self.pair_memory_mb}")
        if self.vision_memory_mb < 0:
            raise ValueError(f"vision_memory_mb must be >= 0, got {self.vision_memory_mb}")
        if not _DEVICE_PATTERN.match(self.device):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        if self.on_bad_input not in ("error", "skip"):
            raise ValueError(f"on_bad_input must be 'error' or 'skip', got {self.on_bad_input!r}")
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)


@dataclass(frozen=True)
class FusionConfig:
    """One fusion rule of stage-1 and stage-2 scores (one ablation setting); see ``fusion.py``.

    Attributes:
        rule: ``itm`` (ITM match logit alone; ALBEF, X-VLM), ``itm+itc`` (match logit + ITC cosine; LAVIS
            BLIP/BLIP-2), ``alpha`` (``alpha * itm_prob + (1 - alpha) * stage1_minmax``) or ``rrf``
            (reciprocal-rank fusion of the stage-1 rank and the ITM rank) or ``residual``
            (``stage1_scale * stage1 + itm_logit[match] - itm_logit[no-match]``, the score a reranker trained
            with the residual listwise loss ranks by).
        alpha: weight of the ITM probability in the ``alpha`` rule, in [0, 1].
        rrf_k: the constant k of reciprocal-rank fusion, ``1 / (rrf_k + rank)``; 60 as in Cormack et al.
        stage1_scale: the stage-1 score's weight in the ``residual`` rule (the inverse temperature the reranker
            was trained with; stage-1 scores are cosine similarities).
    """

    rule: FusionRuleName = "itm"
    alpha: float = 0.5
    rrf_k: int = 60
    stage1_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.rule not in ("itm", "itm+itc", "alpha", "rrf", "residual"):
            raise ValueError(f"rule must be one of itm, itm+itc, alpha, rrf, residual; got {self.rule!r}")
        if self.stage1_scale < 0:
            raise ValueError(f"stage1_scale must be >= 0, got {self.stage1_scale}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.rrf_k < 0:
            raise ValueError(f"rrf_k must be >= 0, got {self.rrf_k}")


def resolve_device(config: RerankerConfig) -> torch.device:
    """``config.device`` as a torch device (``auto`` -> CUDA when available, else CPU)."""
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} asked for, but CUDA is not available")
    return device


def resolve_dtype(precision: str, device: torch.device, what: str) -> torch.dtype:
    """Precision policy: ``auto`` -> fp16 on CUDA, fp32 on CPU; fp16 on CPU is refused (slow, unsupported)."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision == "fp16" and device.type == "cpu":
        raise ValueError(f"{what}=fp16 is not supported on CPU: use fp32 or bf16")
    return TORCH_DTYPES[precision]


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float16`` -> ``"fp16"`` (the names used in configs and cache keys)."""
    return {v: k for k, v in TORCH_DTYPES.items()}[dtype]
