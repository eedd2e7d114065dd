"""Stage-1 contrastive training loop: :func:`train_dual_encoder`.

Run directory layout::

    <run_dir>/last/        resumable checkpoint (model dir + ``rrbench_base.training_state``: optimizer,
                           queues, hard-negative partners, RNG state, counters), updated at the end of
                           every epoch and every ``checkpoint_every_steps``
    <run_dir>/best/        model dir with the best ``selection_metric`` on the validation split (the
                           final model when there is no validation split); load it with backend rrbench_dual
    <run_dir>/log.jsonl    one JSON record per line: ``train`` (step, loss, lr, temperature), ``val``
                           (epoch metrics), ``skipped`` (unreadable images), ``end``

Each step: batch plan (``training.data``) -> inputs (cached frozen features or live) -> embeddings ->
all-gather across processes -> multi-positive InfoNCE (+ memory-queue columns) -> backward (plain or
gradient-cached) -> AdamW step with warm-up + cosine schedule. Resuming from ``last`` replays exactly
the steps an uninterrupted run would take.

Randomness: initialisation and dropout draw from the trainer's private copy of torch's global RNG
(``rrbench_base.global_rng``, seeded by ``seed``, saved in ``last``); batch order, augmentation and
hard-negative mining from generators seeded by ``(seed, epoch, ...)``. The caller's global RNG state is the
same after training as before.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from rrbench_base.global_rng import PrivateGlobalRng, cuda_devices_of
from rrbench_base.training_state import has_training_state, load_training_state, save_training_state
from stage1_dual.trainable.checkpoint import (load_weights_into, read_checkpoint_config, save_model_dir,
                                              write_directory_atomically, write_model_files)
from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.trainable.model_config import DualModelConfig, model_config_from_dict
from stage1_dual.trainable.text_towers import TEXT_TOWER_FITTERS
from stage1_dual.training.config import TrainConfig
from stage1_dual.training.data import Batch, TrainingSplit, plan_epoch
from stage1_dual.training.distributed import gather_no_grad, gather_with_local_grad
from stage1_dual.training.feature_cache import FrozenFeatureCache
from stage1_dual.training.grad_cache import grad_cached_backward
from stage1_dual.training.hard_negatives import sample_hard_negatives
from stage1_dual.training.losses import contrastive_loss
from stage1_dual.training.memory_queue import FeatureQueue
from stage1_dual.training.optim import lr_factor, parameter_groups, set_learning_rates
from stage1_dual.training.split_sources import SplitSources, build_split_sources
from stage1_dual.training.validation import ValidationScorer, embed_split, recall_at_k_scorer

log = logging.getLogger(__name__)

LAST, BEST, LOG_FILE = "last", "best", "log.jsonl"


@dataclass
class TrainResult:
    """Where the checkpoints are, the best validation metrics, the log records and the counters."""

    best_dir: Path
    last_dir: Path
    best_metrics: dict[str, float]
    history: list[dict[str, Any]]
    train_seconds: float
    steps: int
    stopped_early: bool
    skipped: list[dict] = field(default_factory=list)


def _model_config(cfg: TrainConfig, train: TrainingSplit, run_dir: Path, resume: bool) -> DualModelConfig:
    if resume and has_training_state(run_dir / LAST):
        return model_config_from_dict(read_checkpoint_config(run_dir / LAST)["model"])
    if cfg.init_from is not None:
        return model_config_from_dict(read_checkpoint_config(cfg.init_from)["model"])
    model_cfg = copy.deepcopy(cfg.model)
    fit = TEXT_TOWER_FITTERS.get(model_cfg.text_tower.name)
    if fit is not None:
        model_cfg.text_tower = fit(model_cfg.text_tower, train.texts)
    return model_cfg


def _save_last(directory: Path, model: DualEncoderModel, optimizer: torch.optim.Optimizer,
               queues: dict[str, FeatureQueue], state: dict[str, Any], rng: PrivateGlobalRng,
               partner: Optional[np.ndarray], info: dict[str, Any]) -> None:
    """Model files + training state (queues and hard-negative partners as arrays) into ``directory``, atomically."""
    arrays = {f"queue/{name}/{key}": value
              for name, queue in queues.items() for key, value in queue.state_dict().items()}
    if partner is not None:
        arrays["partner"] = torch.from_numpy(partner)

    def write(tmp: Path) -> None:
        write_model_files(model, tmp, info)
        save_training_state(tmp, optimizer, state, random_states=rng.states(), arrays=arrays)

    write_directory_atomically(directory, write)


def _resume(directory: Path, model: DualEncoderModel, optimizer: torch.optim.Optimizer,
            queues: dict[str, FeatureQueue], rng: PrivateGlobalRng) -> tuple[dict[str, Any], Optional[np.ndarray]]:
    """Restore weights, optimizer, queues and RNG from a ``last`` checkpoint; ``(counters, partner)``."""
    load_weights_into(model, directory)
    loaded = load_training_state(directory, optimizer)
    for name, queue in queues.items():
        prefix = f"queue/{name}/"
        queue.load_state_dict({k[len(prefix):]: v for k, v in loaded.arrays.items() if k.startswith(prefix)})
    rng.set_states(loaded.random_states)
    partner = loaded.arrays["partner"].numpy() if "partner" in loaded.arrays else None
    return loaded.counters, partner


def _append_log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _to(features: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in features.items()}


class _Step:
    """One optimisation step (plain or gradient-cached backward), queues updated afterwards."""

    def __init__(self, model: Any, optimizer: torch.optim.Optimizer, accelerator: Accelerator, cfg: TrainConfig,
                 queues: dict[str, FeatureQueue]) -> None:
        self.model, self.optimizer, self.accelerator, self.cfg, self.queues = model, optimizer, accelerator, cfg, queues
        self.core: DualEncoderModel = accelerator.unwrap_model(model)

    def __call__(self, batch: Batch, image_features: dict, text_features: dict) -> dict[str, float]:
        device = self.accelerator.device
        image_keys = gather_no_grad(torch.as_tensor(batch.images, device=device), self.accelerator)
        text_keys = gather_no_grad(torch.as_tensor(batch.text_keys, device=device), self.accelerator)
        parts: dict[str, torch.Tensor] = {}

        def loss_fn(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
            result = contrastive_loss(
                gather_with_local_grad(images, self.accelerator), gather_with_local_grad(texts, self.accelerator),
                image_keys, text_keys, self.core.scale(),
                image_bank=self.queues["images"].bank() if self.queues else None,
                text_bank=self.queues["texts"].bank() if self.queues else None)
            parts.update(t2i=result.t2i.detach(), i2t=result.i2t.detach())
            return result.loss

        image_features, text_features = _to(image_features, device), _to(text_features, device)
        if self.cfg.grad_cache_chunk:
            loss, images, texts = grad_cached_backward(self.model, image_features, text_features, loss_fn,
                                                       self.cfg.grad_cache_chunk,
                                                       no_sync=lambda: self.accelerator.no_sync(self.model))
        else:
            images, texts = self.model(image_features=image_features, text_features=text_features)
            loss = loss_fn(images, texts)
            self.accelerator.backward(loss)
        if self.cfg.grad_clip_norm:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.queues:
            self.queues["images"].push(gather_no_grad(images.detach(), self.accelerator), image_keys)
            self.queues["texts"].push(gather_no_grad(texts.detach(), self.accelerator), text_keys)
        return {"loss": float(loss.detach()), "t2i_loss": float(parts["t2i"]), "i2t_loss": float(parts["i2t"]),
                "temperature": float(1.0 / self.core.scale().detach())}


def _mine_partners(model: DualEncoderModel, sources: SplitSources, cfg: TrainConfig, epoch: int,
                   device: torch.device) -> np.ndarray:
    """Hard-negative partner image of every training image (one of its captions against all images)."""
    split = sources.split
    images, texts = embed_split(model, sources.images, sources.texts, len(split.images), len(split.texts),
                                cfg.feature_batch_size, device)
    rng = np.random.default_rng([cfg.seed, epoch, 7])
    has_caption = [i for i, own in enumerate(split.image_texts) if len(own)]
    queries = torch.from_numpy(texts[[int(rng.choice(split.image_texts[i])) for i in has_caption]])
    picked = sample_hard_negatives(queries, torch.from_numpy(images), [[i] for i in has_caption],
                                   cfg.hard_negatives.top_k, rng)
    partner = np.full(len(split.images), -1, dtype=np.int64)
    partner[has_caption] = picked
    return partner


def _validate(model: DualEncoderModel, sources: Optional[SplitSources], cfg: TrainConfig,
              scorer: ValidationScorer, device: torch.device) -> dict[str, float]:
    if sources is None:
        return {}
    split = sources.split
    images, texts = embed_split(model, sources.images, sources.texts, len(split.images), len(split.texts),
                                cfg.feature_batch_size, device)
    return {k: float(v) for k, v in scorer(images, texts, split.text_image).items()}


def train_dual_encoder(cfg: TrainConfig, train: TrainingSplit, val: Optional[TrainingSplit], run_dir: Path, *,
                       scorer: Optional[ValidationScorer] = None, resume: bool = True,
                       accelerator: Optional[Accelerator] = None) -> TrainResult:
    """Train (or resume training of) a dual encoder; see the module docstring for outputs."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    accelerator = accelerator or Accelerator(cpu=cfg.device == "cpu")
    device = accelerator.device
    scorer = scorer or recall_at_k_scorer
    log_path = run_dir / LOG_FILE
    model_cfg = _model_config(cfg, train, run_dir, resume)
    resuming = resume and has_training_state(run_dir / LAST)
    with PrivateGlobalRng(cfg.seed).use():
        model = DualEncoderModel(model_cfg)
        if cfg.init_from is not None and not resuming:
            load_weights_into(model, cfg.init_from)
            log.info("initialised from %s", cfg.init_from)
        model = model.to(device)
    cache = FrozenFeatureCache(cfg.feature_cache_dir, cfg.feature_cache_dtype)
    feature_start = time.perf_counter()
    with accelerator.main_process_first():
        train_sources = build_split_sources(model, cfg, train, cache, device, train=True)
        val_sources = build_split_sources(model, cfg, val, cache, device, train=False) if val is not None else None
    skipped = train_sources.skipped + (val_sources.skipped if val_sources else [])
    feature_seconds = time.perf_counter() - feature_start
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg.learning_rate, cfg.tower_learning_rate,
                                                   cfg.weight_decay))
    queues = ({"images": FeatureQueue(cfg.queue_size, model_cfg.embed_dim),
               "texts": FeatureQueue(cfg.queue_size, model_cfg.embed_dim)} if cfg.queue_size else {})
    state: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "train_seconds": 0.0,
                             "best_metric": None, "best_metrics": {}, "history": []}
    rng = PrivateGlobalRng(cfg.seed, cuda_devices_of(device))
    partner: Optional[np.ndarray] = None
    if resuming:
        state, partner = _resume(run_dir / LAST, model, optimizer, queues, rng)
        log.info("resumed from %s at epoch %d step %d", run_dir / LAST, state["epoch"], state["step_in_epoch"])
    elif skipped:
        _append_log(log_path, {"event": "skipped", "items": skipped})
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    step = _Step(wrapped, optimizer, accelerator, cfg, queues)
    steps_per_epoch = len(plan_epoch(train_sources.split, cfg.batch_size, cfg.captions_per_image, cfg.seed, 0))
    total_steps = cfg.epochs * steps_per_epoch
    info = {"train_config": json.loads(json.dumps(dataclasses.asdict(cfg), default=str)),
            "train_images": len(train_sources.split.images), "train_texts": len(train_sources.split.texts)}
    stopped_early = stop_requested = False
    start = time.perf_counter() - state["train_seconds"]

    def save_last() -> None:
        state["train_seconds"] = time.perf_counter() - start
        if accelerator.is_main_process:
            _save_last(run_dir / LAST, model, optimizer, queues, state, rng, partner, info)

    with rng.use():  # dropout (and anything else drawing from torch's global RNG) in the loop
        while state["epoch"] < cfg.epochs and not stopped_early:
            epoch = state["epoch"]
            hard = cfg.hard_negatives
            mining = hard.enabled and epoch >= hard.start_epoch
            if mining and state["step_in_epoch"] == 0 and (epoch - hard.start_epoch) % hard.refresh_every_epochs == 0:
                partner = _mine_partners(model, train_sources, cfg, epoch, device)
            plan = plan_epoch(train_sources.split, cfg.batch_size, cfg.captions_per_image, cfg.seed, epoch,
                              partner if mining else None, hard.fraction if mining else 0.0)
            plan_start = state["step_in_epoch"]
            plan = plan[plan_start:]
            wrapped.train()
            inputs = zip(plan, train_sources.images.iterate([b.images for b in plan], epoch, True),
                         train_sources.texts.iterate([b.texts for b in plan], epoch, True))
            bar = tqdm(inputs, total=len(plan), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step")
            for batch, image_features, text_features in bar:
                lr = set_learning_rates(optimizer, lr_factor(state["global_step"], total_steps, cfg.warmup_steps,
                                                             cfg.min_lr_ratio))
                record = step(batch, image_features, text_features)
                state["global_step"] += 1
                state["step_in_epoch"] += 1
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                if state["global_step"] % cfg.log_every_steps == 0 and accelerator.is_main_process:
                    _append_log(log_path, {"event": "train", "epoch": epoch, "step": state["global_step"], "lr": lr,
                                           **record, "seconds": round(time.perf_counter() - start, 2)})
                if cfg.checkpoint_every_steps and state["global_step"] % cfg.checkpoint_every_steps == 0:
                    save_last()
                if (cfg.max_train_seconds and time.perf_counter() - start > cfg.max_train_seconds) or (
                        cfg.max_steps and state["global_step"] >= cfg.max_steps):
                    stop_requested = True
                    break
            bar.close()
            if state["step_in_epoch"] >= plan_start + len(plan):
                state["epoch"] += 1
                state["step_in_epoch"] = 0
            stopped_early = stop_requested and state["epoch"] < cfg.epochs
            final = state["epoch"] >= cfg.epochs or stopped_early
            if final or (epoch + 1) % cfg.validate_every_epochs == 0:
                metrics = _validate(model, val_sources, cfg, scorer, device)
                value = metrics.get(cfg.selection_metric)
                if metrics and value is None:
                    raise ValueError(f"selection_metric {cfg.selection_metric!r} not among validation metrics "
                                     f"{sorted(metrics)}")
                improved = value is not None and (state["best_metric"] is None or value > state["best_metric"])
                record = {"event": "val", "epoch": epoch, "step": state["global_step"], **metrics, "best": improved,
                          "seconds": round(time.perf_counter() - start, 2),
                          "process_cpu_seconds": round(time.process_time(), 2)}
                state["history"].append(record)
                if accelerator.is_main_process:
                    _append_log(log_path, record)
                if improved:
                    state["best_metric"], state["best_metrics"] = value, metrics
                    if accelerator.is_main_process:
                        save_model_dir(model, run_dir / BEST, {**info, "epoch": epoch, "step": state["global_step"],
                                                               "val_metrics": metrics})
            save_last()
    if val_sources is None and accelerator.is_main_process:
        save_model_dir(model, run_dir / BEST, {**info, "step": state["global_step"]})
    if accelerator.is_main_process:
        _append_log(log_path, {"event": "end", "steps": state["global_step"], "train_seconds": state["train_seconds"],
                               "feature_seconds": round(feature_seconds, 2), "best_metrics": state["best_metrics"],
                               "stopped_early": stopped_early})
    return TrainResult(run_dir / BEST, run_dir / LAST, state["best_metrics"], state["history"],
                       state["train_seconds"], state["global_step"], stopped_early, skipped)
