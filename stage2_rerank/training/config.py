"""Typed config of ITM training (:class:`ItmTrainerConfig`), buildable from YAML with ``eval.typed_config``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

Schedule = Literal["cosine", "constant"]
NegativeSourceName = Literal["itc", "stage1", "topk"]
ComputeDtype = Literal["float32", "bfloat16"]


@dataclass
class ItmTrainerConfig:
    """How :class:`~stage2_rerank.training.trainer.ItmTrainer` trains a BLIP-2 ITM reranker.

    Attributes:
        epochs: passes over the training captions (each caption once per epoch, with its image).
        batch_size: positive (image, caption) pairs per step; the ITM loss sees 3x as many pairs (each image
            with a hard negative caption, each caption with a hard negative image).
        itm_batch_size: ITM on only this many of the batch's rows (3x as many pairs), ITC and in-batch
            negatives still on all ``batch_size`` (``None``: all rows). ITM cost grows with it, ITC quality
            with ``batch_size``.
        learning_rate: peak AdamW learning rate of the Q-Former and heads.
        vision_learning_rate: learning rate of a trainable vision module (``None``: ``learning_rate``);
            ignored for cached features.
        weight_decay: AdamW decoupled weight decay (not applied to biases, norms, embeddings, query tokens,
            temperature).
        warmup_steps: linear warm-up from 0 to ``learning_rate``.
        schedule: after warm-up, ``cosine`` decay to 0 at the last step, or ``constant``.
        grad_clip_norm: clip the global gradient norm to this (0 = no clipping).
        itc_weight: weight of the ITC loss added to the ITM loss (0 = ITM only).
        temperature_init: initial ITC temperature (BLIP-2: 0.07; learnable, clamped to [0.001, 0.5]).
        negatives: hard-negative source: ``itc`` (in-batch, softmax over the model's ITC similarity, as
            BLIP-2), ``stage1`` (in-batch, stage-1 embeddings), ``topk`` (stage-1 top-k lists of the whole
            training set; rows without a candidate fall back to the in-batch negative: ``stage1`` when the
            trainer has stage-1 embeddings, else ``itc``).
        mined_fraction: with ``negatives="topk"``, the fraction of rows (drawn at random per step) that take
            their mined top-k negative; the others keep the in-batch negative (1.0 = all mined).
        mined_from_step: mined negatives are used only after this many steps (before: in-batch ITC negatives
            only). From scratch, ITM starts learning once ITC has aligned the modalities; negatives that differ
            in a single attribute binding are only useful after that.
        grouped_from_epoch: with ``ItmTrainingData.image_group``, epochs from this one on keep each group's
            images together in batches; earlier epochs are shuffled freely (learn coarse matching first).
        listwise_weight: weight of the listwise ITM loss (``listwise``: each caption ranks its image among
            ``list_size - 1`` stage-1 top-k negatives, each image its caption among as many negative captions)
            added to the loss; 0 = off. Needs ``negatives="topk"`` lists.
        list_size: candidates per list of the listwise loss (the positive included).
        listwise_residual_scale: > 0: the listwise loss ranks by ``scale * stage-1 similarity + ITM gap`` (the
            ``residual`` fusion rule; the trainer's stage-1 embeddings give the similarity), so the head learns
            corrections to stage 1; 0 = the ITM gap alone.
        list_rows: the listwise loss uses the first this many captions of the batch (2 x rows x size pairs).
        pretrained_lr_scale: learning-rate factor of the parameters initialised from a pretrained checkpoint
            (the trainer's ``pretrained_parameters``, e.g. the MiniLM-initialised layers); fresh parameters
            (cross-attention, queries, heads) use ``learning_rate``.
        steps_per_epoch: cap on the steps of one epoch (``None``: all captions); an epoch then covers the
            first ``steps_per_epoch * batch_size`` captions of its shuffled order.
        text_max_length: caption tokens incl. [CLS]/[SEP] (the reranker's ``text_max_length``).
        seed: seed of the data order, the negative sampling and dropout.
        checkpoint_every_steps: also write the ``last`` checkpoint every this many steps (0 = at epoch ends only).
        selection_metric: key of the ``validate`` result to maximise for the ``best`` checkpoint (``rsum``);
            without ``validate``, the last epoch is the best.
        max_train_seconds: stop after the step that crosses this wall time of the ``fit`` call (then validate
            and save ``last``; 0 = no limit).
        max_steps: stop after this many optimizer steps in total (0 = no limit), then validate and save
            ``last``; the schedule still spans ``epochs``, so a later run with a larger limit continues it.
        compute_dtype: ``bfloat16`` runs each training step's forward (and so its backward) under
            ``torch.autocast`` in bf16 on the model's device: matrix products in bf16, weights, gradients,
            optimizer state and validation in fp32. On a 2-core CPU with AVX512-BF16 a step of the Flickr8k-lite
            reranker took 0.42x the fp32 time (``scripts/bench_itm_step.py``; GPUs not measured);
            ``float32`` = no autocast.
        progress: show tqdm progress bars.
        resume: continue from ``<run_dir>/last`` when it holds a training state.
    """

    epochs: int = 1
    batch_size: int = 32
    itm_batch_size: Optional[int] = None
    learning_rate: float = 1e-4
    vision_learning_rate: Optional[float] = None
    weight_decay: float = 0.05
    warmup_steps: int = 100
    schedule: Schedule = "cosine"
    grad_clip_norm: float = 1.0
    itc_weight: float = 1.0
    temperature_init: float = 0.07
    negatives: NegativeSourceName = "itc"
    mined_fraction: float = 1.0
    mined_from_step: int = 0
    grouped_from_epoch: int = 0
    listwise_weight: float = 0.0
    list_size: int = 6
    list_rows: int = 8
    listwise_residual_scale: float = 0.0
    pretrained_lr_scale: float = 1.0
    steps_per_epoch: Optional[int] = None
    text_max_length: int = 35
    seed: int = 0
    checkpoint_every_steps: int = 0
    selection_metric: str = "rsum"
    max_train_seconds: float = 0.0
    max_steps: int = 0
    compute_dtype: ComputeDtype = "float32"
    progress: bool = True
    resume: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "text_max_length", "list_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.itm_batch_size is not None and not 1 <= self.itm_batch_size <= self.batch_size:
            raise ValueError(f"itm_batch_size must be in [1, batch_size={self.batch_size}], got {self.itm_batch_size}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (in-batch negatives)")
        for name in ("learning_rate", "temperature_init"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.vision_learning_rate is not None and self.vision_learning_rate <= 0:
            raise ValueError(f"vision_learning_rate must be > 0, got {self.vision_learning_rate}")
        if self.list_size < 2:
            raise ValueError(f"list_size must be >= 2, got {self.list_size}")
        if self.listwise_weight > 0 and self.negatives != "topk":
            raise ValueError("listwise_weight > 0 needs negatives='topk' (the lists come from stage-1 top-k)")
        for name in ("weight_decay", "warmup_steps", "grad_clip_norm", "itc_weight", "listwise_weight",
                     "checkpoint_every_steps", "mined_from_step", "listwise_residual_scale", "max_train_seconds",
                     "max_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be cosine or constant, got {self.schedule!r}")
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"compute_dtype must be float32 or bfloat16, got {self.compute_dtype!r}")
        if self.negatives not in ("itc", "stage1", "topk"):
            raise ValueError(f"negatives must be itc, stage1 or topk, got {self.negatives!r}")
        if self.grouped_from_epoch < 0:
            raise ValueError(f"grouped_from_epoch must be >= 0, got {self.grouped_from_epoch}")
        if not 0.0 < self.pretrained_lr_scale <= 1.0:
            raise ValueError(f"pretrained_lr_scale must be in (0, 1], got {self.pretrained_lr_scale}")
        if not 0.0 <= self.mined_fraction <= 1.0:
            raise ValueError(f"mined_fraction must be in [0, 1], got {self.mined_fraction}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if not self.selection_metric:
            raise ValueError("selection_metric must name a key of the validation result")
