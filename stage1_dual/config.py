"""Typed configuration of stage 1: encoder, index and the stage as a whole.

Plain dataclasses, validated in ``__post_init__``; they nest under the experiment config's
``stage1:`` key and are built by ``eval.typed_config.from_dict`` (so only str, int, float, bool,
Path, Literal, Optional, list, dict and nested dataclasses are used). A failed check raises
:class:`rrbench_base.config_errors.ConfigFieldError` naming the field relative to its dataclass (``key``), which
``eval.typed_config`` reports under the full dotted key. :func:`check_loadable` adds the checks that
need the backend table or this machine (is the device there?); config loaders run it before any work.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

from rrbench_base.caption_preprocessing import CaptionPreprocessing
from rrbench_base.config_errors import ConfigFieldError

Precision = Literal["auto", "fp32", "fp16", "bf16", "fp64"]
PreprocessMode = Literal["model", "seed_rule", "blip_image_eval"]
IndexType = Literal["flat", "ivfpq", "hnsw", "torch", "sq", "pq"]
ScalarQuantizerType = Literal["fp16", "int8"]
CacheDtype = Literal["float32", "float16"]
OnBadInput = Literal["error", "skip"]

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
SEED_LIMIT = 2**32  # numpy and faiss take seeds in [0, 2**32)

ENCODER_BACKEND_NAMES: tuple[str, ...] = ("open_clip", "hf_clip", "rrbench_dual", "blip2_itc")
"""The keys of ``stage1_dual.encoders.ENCODER_BACKENDS`` (kept here so a config is checked without importing
the backends; a test keeps the two equal)."""


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigFieldError(key, message)


@dataclass
class EncoderConfig:
    """Which dual encoder to load and how to run it.

    Attributes:
        backend: backend name, a key of ``stage1_dual.encoders.ENCODER_BACKENDS``
            (``open_clip``, ``hf_clip``, ``rrbench_dual``: a model trained by ``scripts/train_stage1.py``, or
            ``blip2_itc``: a BLIP-2 checkpoint's own Q-Former ITC embeddings, 32 vectors per image, the paper
            protocol's stage 1; see ``stage1_dual.encoders.blip2_itc_backend``).
        model: open_clip: an architecture name (``ViT-B-32``) or ``hf-hub:org/repo``;
            hf_clip: a hub id (``openai/clip-vit-base-patch32``, ``OFA-Sys/chinese-clip-vit-base-patch16``)
            or a local directory written by ``save_pretrained``; rrbench_dual: the checkpoint directory
            (``<run_dir>/best``); blip2_itc: a ``Blip2ForImageTextRetrieval`` hub id
            (``Salesforce/blip2-itm-vit-g-coco``) or local directory.
        pretrained: open_clip only: a pretrained tag (``laion2b_s34b_b79k``) or a local checkpoint file
            (state dict, ``.pt``/``.bin``/``.safetensors``); None = random weights (seeded by ``seed``).
        revision: hub revision (branch, tag or commit) for hub ids; None = the default branch.
        precision: ``auto`` = fp16 autocast on CUDA, fp32 on CPU; ``fp16``/``bf16`` autocast on CUDA
            only (CPU always runs fp32; the effective precision is part of the cache key). ``fp64``: the
            model runs in float64 on any device and its embeddings are stored as float32, so CPUs with other
            instruction sets (AVX2, AVX-512) give the same embeddings (the demo's setting; slow on most GPUs).
        device: ``auto`` (cuda if available, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; a device this
            machine does not have is refused when the config loads.
        batch_size: images or texts per forward pass.
        num_workers: DataLoader worker processes decoding and preprocessing images (0 = in process).
        preprocess: ``model`` = the model's own image preprocessing; ``seed_rule`` = aspect under 2:1
            stretched to square, over 2:1 the long side centre-cropped to 2:1 first, bicubic resize to
            the model's input size, then the model's normalisation; ``blip_image_eval`` = LAVIS's BLIP-2
            evaluation transform (the whole image PIL-bicubic resized to the model's square input size, no crop,
            OpenAI CLIP mean / std; ``rrbench_base.blip_image_eval``), for the BLIP-2 paper protocol.
        seed: torch seed used to initialise random-weight models (pretrained None), for reproducibility;
            in [0, 2**32).
        hub_cache_dir: Hugging Face / open_clip download cache; None = the libraries' defaults.
        hub_probe_timeout_s: seconds to wait when probing whether the model hub is reachable before a
            download (a missing model then fails fast instead of retrying for ~25 s).
    """

    backend: str = "open_clip"
    model: str = "ViT-B-32"
    pretrained: Optional[str] = None
    revision: Optional[str] = None
    precision: Precision = "auto"
    device: str = "auto"
    batch_size: int = 64
    num_workers: int = 2
    preprocess: PreprocessMode = "model"
    seed: int = 0
    hub_cache_dir: Optional[Path] = None
    hub_probe_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        _require(bool(self.backend), "backend", "backend must be a non-empty backend name")
        _require(bool(self.model and self.model.strip()), "model", "model must be a non-empty model name or path")
        _require(self.precision in ("auto", "fp32", "fp16", "bf16", "fp64"), "precision",
                 f"precision must be auto, fp32, fp16, bf16 or fp64, got {self.precision!r}")
        _require(bool(_DEVICE_PATTERN.match(self.device)), "device",
                 f"device must be auto, cpu, mps, cuda or cuda:N, got {self.device!r}")
        _require(self.batch_size >= 1, "batch_size", f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.num_workers >= 0, "num_workers", f"num_workers must be >= 0, got {self.num_workers}")
        _require(self.preprocess in ("model", "seed_rule", "blip_image_eval"), "preprocess",
                 f"preprocess must be model, seed_rule or blip_image_eval, got {self.preprocess!r}")
        _require(0 <= self.seed < SEED_LIMIT, "seed", f"seed must be in [0, 2**32), got {self.seed}")
        _require(math.isfinite(self.hub_probe_timeout_s) and self.hub_probe_timeout_s > 0, "hub_probe_timeout_s",
                 f"hub_probe_timeout_s must be a finite number > 0, got {self.hub_probe_timeout_s}")


@dataclass
class IndexConfig:
    """Nearest-neighbour index over L2-normalised embeddings (inner product = cosine).

    Attributes:
        type: ``flat`` (faiss IndexFlatIP, exact), ``ivfpq`` (faiss IVF + product quantisation,
            approximate, optionally re-ranked exactly), ``hnsw`` (faiss HNSW graph, approximate),
            ``torch`` (exact chunked matmul + top-k on any torch device), or the compact indexes (see
            ``stage1_dual.compact_index``; CPU only): ``sq`` (faiss IndexScalarQuantizer: every vector
            stored as ``sq_type``, all of them scanned) or ``pq`` (faiss IndexPQ: ``pq_m`` codes of
            ``pq_nbits`` bits per vector, all of them scanned; optionally re-ranked exactly).
        use_gpu: ``auto`` = GPU when faiss has GPU support and a GPU is present (torch: when CUDA is
            available), else CPU; true = require a GPU (refused when the config loads on a machine without
            CUDA); false = CPU.
        gpu_shard: with several GPUs, shard the index over them (true) or replicate it (false).
        num_gpus: how many GPUs to use for faiss (0 = all visible).
        ivf_nlist: IVF cells; clamped to gallery_size // 39 for small galleries (recorded).
        ivf_nprobe: IVF cells visited per query (clamped to the effective nlist).
        ivf_train_size: gallery vectors sampled to train IVF/PQ; 0 = min(gallery, 50 * nlist) for
            ``ivfpq``, min(gallery, 256 * 2 ** pq_nbits) for ``pq`` (faiss's own cap of 256 points per
            centroid).
        ivf_kmeans_iters: k-means iterations of the coarse quantiser.
        ivf_by_residual: PQ-encode each vector's residual from its IVF centroid (more accurate) rather
            than the vector itself.
        pq_m: PQ sub-quantisers (must divide the embedding dimension); ``ivfpq`` and ``pq``. A ``pq``
            code takes ``pq_m * pq_nbits / 8`` bytes per vector.
        pq_nbits: bits per PQ code (8; or 4 with ``pq_fast_scan``). Training k-means needs at least
            ``2 ** pq_nbits`` gallery vectors (smaller galleries are refused naming these fields).
        pq_fast_scan: use faiss's SIMD fast-scan PQ (requires ``pq_nbits`` 4; CPU only); ``ivfpq`` and
            ``pq`` (faiss IndexPQFastScan).
        refine_factor: ``ivfpq`` and ``pq``: re-rank the top ``refine_factor * k`` PQ results exactly
            against the stored float32 vectors (faiss IndexRefineFlat; keeps ``4 * D`` bytes per vector
            besides the codes, so a re-ranked ``pq`` index is no longer compact); 0 = no re-ranking.
        sq_type: ``sq`` only: how each vector is stored and scanned: ``fp16`` (faiss QT_fp16, 2 bytes per
            dimension, no training) or ``int8`` (faiss QT_8bit, 1 byte per dimension, each dimension's
            range trained on the whole gallery).
        hnsw_m: HNSW neighbours per node.
        hnsw_ef_construction: HNSW build-time beam width.
        hnsw_ef_search: HNSW search-time beam width (raised to k when smaller).
        torch_query_chunk: torch backend: queries scored per matmul.
        torch_gallery_chunk: torch backend: gallery rows scored per matmul (running top-k merge).
        seed: seed of the training sample and k-means.
        multivector_search_factor: multi-vector images (``blip2_itc``) with a FAISS type: each text query
            searches ``factor * k`` image vectors, reduced to images by their best vector; 0 = ``(k - 1) * V + 1``
            (V vectors per image), exact with ``flat`` (see ``stage1_dual.multivector_search``).
    """

    type: IndexType = "flat"
    use_gpu: Union[Literal["auto"], bool] = "auto"
    gpu_shard: bool = False
    num_gpus: int = 0
    ivf_nlist: int = 4096
    ivf_nprobe: int = 64
    ivf_train_size: int = 0
    ivf_kmeans_iters: int = 10
    ivf_by_residual: bool = True
    pq_m: int = 64
    pq_nbits: int = 8
    pq_fast_scan: bool = False
    refine_factor: int = 4
    sq_type: ScalarQuantizerType = "fp16"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 256
    torch_query_chunk: int = 1024
    torch_gallery_chunk: int = 65536
    seed: int = 0
    multivector_search_factor: int = 0

    def __post_init__(self) -> None:
        _require(self.multivector_search_factor >= 0, "multivector_search_factor",
                 f"multivector_search_factor must be >= 0, got {self.multivector_search_factor}")
        _require(self.type in ("flat", "ivfpq", "hnsw", "torch", "sq", "pq"), "type",
                 f"type must be flat, ivfpq, hnsw, torch, sq or pq, got {self.type!r}")
        _require(self.sq_type in ("fp16", "int8"), "sq_type", f"sq_type must be fp16 or int8, got {self.sq_type!r}")
        _require(self.use_gpu in ("auto", True, False), "use_gpu",
                 f"use_gpu must be auto, true or false, got {self.use_gpu!r}")
        for name in ("ivf_nlist", "ivf_nprobe", "ivf_kmeans_iters", "pq_m", "hnsw_m",
                     "hnsw_ef_construction", "hnsw_ef_search", "torch_query_chunk", "torch_gallery_chunk"):
            _require(getattr(self, name) >= 1, name, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_gpus", "ivf_train_size", "refine_factor"):
            _require(getattr(self, name) >= 0, name, f"{name} must be >= 0, got {getattr(self, name)}")
        _require(self.pq_nbits in (4, 5, 6, 7, 8), "pq_nbits", f"pq_nbits must be 4..8, got {self.pq_nbits}")
        _require(not self.pq_fast_scan or self.pq_nbits == 4, "pq_fast_scan", "pq_fast_scan needs pq_nbits: 4")
        _require(0 <= self.seed < SEED_LIMIT, "seed", f"seed must be in [0, 2**32), got {self.seed}")


@dataclass
class Stage1Config:
    """Stage 1 of an experiment: encoder, index, candidate depth, caching and bad-input policy.

    Attributes:
        encoder: the dual encoder (see :class:`EncoderConfig`).
        index: the search index (see :class:`IndexConfig`).
        depth: candidates per query (N); larger than a gallery is clamped to its size (recorded).
        cache_dir: embedding cache root; None = no cache (always encode).
        cache_shard_size: items per cache shard; an interrupted encode resumes from finished shards.
        cache_dtype: how embeddings are kept: ``float32``, or ``float16`` (half the cache on disk). With
            ``float16`` every embedding is rounded to float16 as it is encoded, whether or not it is then
            cached (so a run that encodes and one that reads the cache hand the index the same vectors); the
            dtype is part of the cache key and checked on every shard read.
        on_bad_input: an image that cannot be opened or preprocessed: ``error`` raises naming the
            file; ``skip`` leaves it out of the gallery and the queries and records it.
        caption_preprocessing: how captions are prepared before the text encoder sees them (``none``: as
            given; ``blip_caption``: LAVIS's BLIP / BLIP-2 protocol; see
            ``rrbench_base.caption_preprocessing.CaptionPreprocessing``). Part of the text-embedding cache key.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    depth: int = 100
    cache_dir: Optional[Path] = None
    cache_shard_size: int = 4096
    cache_dtype: CacheDtype = "float32"
    on_bad_input: OnBadInput = "error"
    caption_preprocessing: CaptionPreprocessing = field(default_factory=CaptionPreprocessing)

    def __post_init__(self) -> None:
        _require(self.depth >= 1, "depth", f"depth must be >= 1, got {self.depth}")
        _require(self.cache_shard_size >= 1, "cache_shard_size",
                 f"cache_shard_size must be >= 1, got {self.cache_shard_size}")
        _require(self.cache_dtype in ("float32", "float16"), "cache_dtype",
                 f"cache_dtype must be float32 or float16, got {self.cache_dtype!r}")
        _require(self.on_bad_input in ("error", "skip"), "on_bad_input",
                 f"on_bad_input must be error or skip, got {self.on_bad_input!r}")


def device_problem(device: str) -> str | None:
    """Why ``device`` (a config device name) cannot be used on this machine, or None when it can.

    ``auto`` and ``cpu`` always can; ``cuda`` needs CUDA, ``cuda:N`` more than N CUDA devices, ``mps``
    Apple's Metal backend. Imports torch only for a cuda or mps name.
    """
    if device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            return "device 'mps' asked for, but MPS is not available on this machine (use auto or cpu)"
        return None
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return f"device {device!r} asked for, but CUDA is not available on this machine (use auto or cpu)"
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    count = torch.cuda.device_count()
    if index >= count:
        return f"device {device!r} asked for, but this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
    return None


def check_loadable(config: Stage1Config) -> None:
    """Checks of ``config`` against the backend table and this machine; ConfigFieldError naming the field.

    ``encoder.backend`` must be a known backend, ``encoder.device`` must exist here, and
    ``index.use_gpu: true`` needs a CUDA device.
    """
    encoder = config.encoder
    _require(encoder.backend in ENCODER_BACKEND_NAMES, "encoder.backend",
             f"unknown encoder backend {encoder.backend!r}; known backends: {', '.join(sorted(ENCODER_BACKEND_NAMES))}")
    problem = device_problem(encoder.device)
    _require(problem is None, "encoder.device", f"encoder.device: {problem}")
    if config.index.use_gpu is True:
        import torch

        _require(torch.cuda.is_available(), "index.use_gpu",
                 "index.use_gpu: true needs a GPU, but CUDA is not available on this machine (use auto or false)")
