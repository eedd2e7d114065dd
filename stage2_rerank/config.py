"""Typed configs of stage 2: the reranker (:class:`RerankerConfig`), a fusion rule (:class:`FusionConfig`) and the
rules' parameters (:class:`FusionParameters`).

All are plain dataclasses validated in ``__post_init__`` and built from YAML by the experiment runner
(``stage2:`` key) through ``eval.typed_config.from_dict``; only str/int/float/bool/Path/Literal/Optional
field types are used. A failed check raises ``rrbench_base.config_errors.ConfigFieldError`` naming the field
(``key``), which
``eval.typed_config`` reports under the full dotted key. :func:`check_loadable` adds the checks that
depend on this machine (is the device there?) and on the checkpoint's files (position embeddings);
the experiment loader runs it when the config is loaded, before anything is computed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, Optional

import torch

from rrbench_base.caption_preprocessing import CaptionPreprocessing
from rrbench_base.config_errors import ConfigFieldError
from stage2_rerank.fusion_rules import FUSION_RULE_NAMES, FusionRuleName

Precision = Literal["auto", "fp32", "fp16", "bf16", "fp64"]
OnBadInput = Literal["error", "skip"]
ImagePreprocessing = Literal["checkpoint", "blip_image_eval"]

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

BACKEND_NAMES: tuple[str, ...] = ("blip2_itm",)
"""The keys of ``stage2_rerank.backends.BACKENDS`` (kept here so a config is checked without importing
transformers; a test keeps the two equal)."""
VISION_PROVIDER_NAMES: tuple[str, ...] = ("blip2_vit", "efficientnet_lite0", "efficientnet_lite2",
                                          "efficientnet_lite0+lite2", "conv_grid")
"""The keys of ``stage2_rerank.vision.VISION_PROVIDERS`` (a test keeps the two equal)."""
MIN_TEXT_LENGTH = 3  # [CLS] one token [SEP]


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigFieldError(key, message)


@dataclass
class RerankerConfig:
    """How stage 2 loads and runs a cross-encoder reranker.

    Attributes:
        backend: name in ``stage2_rerank.backends.BACKENDS`` (``"blip2_itm"``: a
            ``transformers.Blip2ForImageTextRetrieval`` checkpoint); another name is refused when the config loads.
        model: Hugging Face hub id (``Salesforce/blip2-itm-vit-g``, ``Salesforce/blip2-itm-vit-g-coco``) or a
            local directory holding the checkpoint and its processor. With ``HF_HUB_OFFLINE=1`` a hub id must
            already be in the local Hugging Face cache (otherwise loading fails at once, naming the id).
        vision_provider: name in ``stage2_rerank.vision.VISION_PROVIDERS`` that turns images into
            the feature grid the Q-Former cross-attends to; ``None`` = the backend's own (``"blip2_vit"`` for
            ``blip2_itm``: the checkpoint's ViT-g incl. its post-layernorm); an unknown name is refused.
        precision: Q-Former + heads dtype. ``auto`` = fp16 on CUDA, fp32 on CPU. fp16 is refused on CPU;
            any reduced precision must be backed by a parity report against fp32 (see ``bench/parity.py``). ``fp64``
            (with ``vision_precision: fp64``): scores computed in float64 and stored as float32, so CPUs with
            other instruction sets (AVX2, AVX-512) give the same scores (the demo's setting; slow on most GPUs).
        vision_precision: vision tower dtype; ``auto`` = fp16 on CUDA, fp32 on CPU (fp16 refused on CPU).
        image_preprocessing: ``checkpoint`` = the checkpoint's own image processor; ``blip_image_eval`` = LAVIS's
            eval transform, the BLIP-2 paper's protocol (PIL bicubic resize of the whole image to the vision
            tower's size, no crop, OpenAI CLIP mean / std; ``rrbench_base.blip_image_eval``). Same
            settings as BLIP-2's processor, but from transformers 5 that processor resizes with torchvision's
            kernel, a few 8-bit levels off PIL's at sharp edges. ``blip2_vit`` vision provider only.
        text_max_length: captions are truncated to this many tokens incl. [CLS]/[SEP] (LAVIS uses 35); at least 3,
            and at most the Q-Former's ``max_position_embeddings`` when the checkpoint's config.json is on disk.
        pair_batch_size: (image, caption) pairs per Q-Former forward, at most what ``pair_memory_mb`` allows
            (halved automatically on out-of-memory, CUDA or CPU).
        pair_memory_mb: memory one Q-Former batch may take, estimated from the Q-Former's sizes and the longest
            caption (``QFormerItm.pair_activation_bytes``); batches (ITM pairs, ITC captions and images) are
            capped to fit. ``None`` = 1024 on CPU, no cap on CUDA (where an OOM halves the batch instead).
        vision_batch_size: images per vision-tower forward.
        cache_dir: root of the on-disk caches (pair scores in ``scores.sqlite``, spilled vision features in
            ``vision_features/``); ``None`` = no score cache, spills go to a temporary directory.
        vision_memory_mb: vision features kept in RAM up to this size; beyond it they are spilled to disk in
            the dtype they were computed in, checksummed (lossless: a spilled image scores exactly as one in RAM).
        cache_cross_attention_kv: compute each image's cross-attention keys/values once per Q-Former layer
            and reuse them for all its pairs (exact; see ``qformer_scorer.QFormerItm.cross_attention_kv``).
        kv_chunk_mb: device memory for the features + cached K/V of one group ("chunk") of images scored
            together; bounds memory whatever the number of images.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; a CUDA device this
            machine does not have (no CUDA, or N out of range) is refused when the config loads.
        on_bad_input: an image that cannot be opened: ``error`` raises, ``skip`` gives its pairs NaN scores
            and records the image in the run's stats.
        caption_preprocessing: how captions are prepared before the tokenizer sees them (``none``: as given;
            ``blip_caption``: LAVIS's BLIP / BLIP-2 protocol; see
            ``rrbench_base.caption_preprocessing.CaptionPreprocessing``). Part of the pair-score cache key. In an
            experiment it must equal ``stage1.caption_preprocessing`` unless ``caption_preprocessing_per_stage``
            is true.
    """

    backend: str = "blip2_itm"
    model: str = "Salesforce/blip2-itm-vit-g"
    vision_provider: Optional[str] = None
    precision: Precision = "auto"
    vision_precision: Precision = "auto"
    image_preprocessing: ImagePreprocessing = "checkpoint"
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
    caption_preprocessing: CaptionPreprocessing = field(default_factory=CaptionPreprocessing)

    def __post_init__(self) -> None:
        _require(self.backend in BACKEND_NAMES, "backend",
                 f"unknown reranker backend {self.backend!r}; known: {', '.join(sorted(BACKEND_NAMES))}")
        _require(bool(self.model and self.model.strip()), "model",
                 "model must be a hub id or a local directory, got an empty name")
        _require(self.vision_provider is None or self.vision_provider in VISION_PROVIDER_NAMES, "vision_provider",
                 f"unknown vision provider {self.vision_provider!r}; known: {', '.join(sorted(VISION_PROVIDER_NAMES))} "
                 "(or null for the backend's own)")
        for name in ("precision", "vision_precision"):
            value = getattr(self, name)
            _require(value in ("auto", *TORCH_DTYPES), name,
                     f"{name} must be one of auto, fp32, fp16, bf16, fp64; got {value!r}")
        for name in ("text_max_length", "pair_batch_size", "vision_batch_size", "kv_chunk_mb"):
            _require(getattr(self, name) >= 1, name, f"{name} must be >= 1, got {getattr(self, name)}")
        _require(self.text_max_length >= MIN_TEXT_LENGTH, "text_max_length",
                 f"text_max_length must be >= {MIN_TEXT_LENGTH} ([CLS] token [SEP]), got {self.text_max_length}")
        _require(self.pair_memory_mb is None or self.pair_memory_mb >= 1, "pair_memory_mb",
                 f"pair_memory_mb must be >= 1 (or null for the default), got {self.pair_memory_mb}")
        _require(self.vision_memory_mb >= 0, "vision_memory_mb",
                 f"vision_memory_mb must be >= 0, got {self.vision_memory_mb}")
        _require(bool(_DEVICE_PATTERN.match(self.device)), "device",
                 f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        _require(self.image_preprocessing in ("checkpoint", "blip_image_eval"), "image_preprocessing",
                 f"image_preprocessing must be checkpoint or blip_image_eval, got {self.image_preprocessing!r}")
        _require(self.on_bad_input in ("error", "skip"), "on_bad_input",
                 f"on_bad_input must be 'error' or 'skip', got {self.on_bad_input!r}")
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)


@dataclass(frozen=True, kw_only=True)
class FusionParameters:
    """The parameters of the fusion rules (``fusion_rules``), shared by one rule's config (:class:`FusionConfig`)
    and an ablation grid of rules (``ablation:`` in an experiment config).

    Attributes:
        alpha: weight of the ITM probability in the ``alpha`` rule, in [0, 1].
        rrf_k: the constant k of reciprocal-rank fusion, ``1 / (rrf_k + rank)`` with ranks from 1; >= 0 (60 as in
            Cormack et al.).
        stage1_scale: the stage-1 score's weight in the ``residual`` rule (the inverse temperature the reranker
            was trained with; stage-1 scores are cosine similarities); a finite number >= 0.
    """

    alpha: float = 0.5
    rrf_k: int = 60
    stage1_scale: float = 1.0

    def __post_init__(self) -> None:
        _require(math.isfinite(self.stage1_scale) and self.stage1_scale >= 0, "stage1_scale",
                 f"stage1_scale must be a finite number >= 0, got {self.stage1_scale}")
        _require(0.0 <= self.alpha <= 1.0, "alpha", f"alpha must be in [0, 1], got {self.alpha}")
        _require(self.rrf_k >= 0, "rrf_k", f"rrf_k must be >= 0 (ranks start at 1), got {self.rrf_k}")

    def fusion(self, rule: str) -> "FusionConfig":
        """The config of fusion rule ``rule`` with these parameters."""
        values = {f.name: getattr(self, f.name) for f in fields(FusionParameters)}
        return FusionConfig(rule=rule, **values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FusionConfig(FusionParameters):
    """One fusion rule of stage-1 and stage-2 scores (one ablation setting) and its parameters; see ``fusion.py``.

    Attributes:
        rule: the fusion rule (each is described under "Fusion rules" in ``rrbench config --doc``; names and
            descriptions in ``stage2_rerank.fusion_rules``).
    """

    rule: FusionRuleName = "itm"

    def __post_init__(self) -> None:
        _require(self.rule in FUSION_RULE_NAMES, "rule",
                 f"rule must be one of {', '.join(FUSION_RULE_NAMES)}; got {self.rule!r}")
        super().__post_init__()


def device_problem(device: str) -> str | None:
    """Why ``device`` (a config device name) cannot be used on this machine, or None when it can.

    ``auto`` and ``cpu`` always can; ``cuda`` needs CUDA; ``cuda:N`` needs more than N CUDA devices.
    """
    if not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return f"device {device!r} asked for, but CUDA is not available on this machine (use auto or cpu)"
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    count = torch.cuda.device_count()
    if index >= count:
        return f"device {device!r} asked for, but this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
    return None


def _local_config_file(model: str) -> Path | None:
    """config.json of ``model``: in its directory, or in the local Hugging Face cache for a hub id (no network)."""
    directory = Path(model).expanduser()
    if directory.is_dir():
        return directory / "config.json"
    if directory.exists():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:  # not a valid hub id, or no cache: nothing is knowable here
        return None
    return Path(cached) if isinstance(cached, str) else None


def checkpoint_text_limit(model: str) -> int | None:
    """The Q-Former's ``max_position_embeddings`` of a checkpoint whose config.json is on disk (a local
    directory, or a hub id already in the Hugging Face cache); None when not knowable without a download."""
    config_file = _local_config_file(model)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file else None
    except (OSError, ValueError):
        return None
    qformer = config.get("qformer_config") if isinstance(config, dict) else None
    limit = qformer.get("max_position_embeddings") if isinstance(qformer, dict) else None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None


def check_loadable(config: RerankerConfig) -> None:
    """Checks of ``config`` against this machine and the checkpoint's files; ConfigFieldError naming the field.

    The device must exist, each precision must run on the device ``auto`` resolves to, and
    ``text_max_length`` must fit the checkpoint's position embeddings (when its config.json is local).
    """
    problem = device_problem(config.device)
    _require(problem is None, "device", f"device: {problem}")
    device = resolve_device(config)
    for name in ("precision", "vision_precision"):
        try:
            resolve_dtype(getattr(config, name), device, name)
        except ValueError as exc:
            raise ConfigFieldError(name, f"{exc} (device {config.device!r} is {device.type} here)") from exc
    limit = checkpoint_text_limit(config.model)
    _require(limit is None or config.text_max_length <= limit, "text_max_length",
             f"text_max_length must be <= {limit} (the Q-Former position embeddings of {config.model}), "
             f"got {config.text_max_length}")


def resolve_device(config: RerankerConfig) -> torch.device:
    """``config.device`` as a torch device (``auto`` -> CUDA when available, else CPU); ValueError when absent."""
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    problem = device_problem(config.device)
    if problem is not None:
        raise ValueError(problem)
    return torch.device(config.device)


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
