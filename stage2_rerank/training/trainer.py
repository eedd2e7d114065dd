"""ITM (+ITC) training loop of a BLIP-2 reranker: epochs, resume, validation, best-checkpoint selection, log.

Run directory layout:

- ``last/``: checkpoint (see ``checkpoint``) + training state (``rrbench_base.training_state``), written at
  every epoch end, every ``checkpoint_every_steps`` steps and when training stops early; ``fit`` resumes
  from it.
- ``best/``: checkpoint with the highest ``validate(trainable)[selection_metric]`` so far (validated at every
  epoch end and when ``max_train_seconds`` or ``max_steps`` stops training).
- ``log.jsonl``: one JSON object per line: ``{"event": "train", "step", "epoch", "loss", "itm", "itc",
  "itm_accuracy", "lr" (the largest group's), "temperature", "seconds"}`` per step (plus "listwise" and
  "listwise_top1" when the listwise loss is on),
  ``{"event": "val", "step", "epoch", <metrics>, "best"}`` per validation.

Determinism: the caption order of epoch ``e`` is a permutation seeded by ``(seed, e)`` (grouped by
``ItmTrainingData.image_group`` when given); negative sampling draws from the trainer's generator and
dropout from the trainer's private copy of torch's global RNG (``rrbench_base.global_rng``, swapped in for
each step only, so the caller's global state is never changed), both seeded by ``seed`` and saved in the
training state, so an interrupted and resumed run takes the same steps as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Optional

import torch
from tqdm.auto import tqdm

from rrbench_base.global_rng import PrivateGlobalRng, cuda_devices_of
from rrbench_base.training_state import has_training_state, load_training_state, save_training_state
from stage2_rerank.training.checkpoint import save_itm_checkpoint
from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.training.hard_negatives import TopKNegatives
from stage2_rerank.training.listwise import listwise_itm_loss
from stage2_rerank.training.losses import Stage1Embeddings, batch_losses
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData, grouped_caption_order

log = logging.getLogger(__name__)

Validate = Callable[[ItmTrainable], dict[str, float]]


@dataclass
class FitResult:
    """Outcome of :meth:`ItmTrainer.fit`.

    Attributes:
        last_dir: the ``last`` checkpoint.
        best_dir: the ``best`` checkpoint.
        best_metrics: validation metrics of the best checkpoint (empty without ``validate``).
        steps: optimizer steps taken in total (including before a resume).
        seconds: wall time of this call.
        stopped_early: ``max_train_seconds`` or ``max_steps`` ended training before the last epoch.
    """

    last_dir: Path
    best_dir: Path
    best_metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def _no_decay(name: str, param: torch.nn.Parameter) -> bool:
    return param.ndim < 2 or "embeddings" in name or "query_tokens" in name or name.endswith("position")


class ItmTrainer:
    """Trains ``trainable`` on ``data`` (see module doc); ``processor`` is saved with every checkpoint."""

    def __init__(self, trainable: ItmTrainable, processor: Any, data: ItmTrainingData, config: ItmTrainerConfig,
                 run_dir: Path, validate: Optional[Validate] = None, topk: Optional[TopKNegatives] = None,
                 stage1: Optional[Stage1Embeddings] = None, pretrained_parameters: Collection[str] = ()) -> None:
        """``pretrained_parameters``: names (as in ``trainable.named_parameters()``) trained at
        ``learning_rate * pretrained_lr_scale``."""
        self.trainable, self.processor, self.data, self.config = trainable, processor, data, config
        self.pretrained = frozenset(pretrained_parameters)
        unknown = self.pretrained - {name for name, _ in trainable.named_parameters()}
        if unknown:
            raise ValueError(f"pretrained_parameters not in the model: {sorted(unknown)[:3]}")
        self.run_dir = Path(run_dir)
        self.validate, self.topk, self.stage1 = validate, topk, stage1
        full = len(data.caption_tokens) // config.batch_size
        if full < 1:
            raise ValueError(f"{len(data.caption_tokens)} captions do not fill one batch of {config.batch_size}")
        self.steps_per_epoch = min(full, config.steps_per_epoch or full)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.dropout_rng = PrivateGlobalRng(config.seed, cuda_devices_of(trainable.temperature.device))
        self.counters: dict[str, Any] = {"step": 0, "epoch": 0, "step_in_epoch": 0, "best": None,
                                         "best_metrics": {}}

    def _param_groups(self) -> list[dict]:
        cfg = self.config
        groups: dict[tuple[bool, bool, bool], list[torch.nn.Parameter]] = {}
        for name, param in self.trainable.named_parameters():
            if param.requires_grad:
                key = (name.startswith("vision."), name in self.pretrained, _no_decay(name, param))
                groups.setdefault(key, []).append(param)
        return [{"params": params,
                 "lr": ((cfg.vision_learning_rate or cfg.learning_rate) if vision
                        else cfg.learning_rate * (cfg.pretrained_lr_scale if pretrained else 1)),
                 "weight_decay": 0.0 if no_decay else cfg.weight_decay}
                for (vision, pretrained, no_decay), params in sorted(groups.items())]

    def _lr_factor(self, step: int) -> float:
        warmup = self.config.warmup_steps
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if self.config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, self.total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        if self.data.image_group is not None and epoch >= self.config.grouped_from_epoch:
            return grouped_caption_order(self.data.caption_image, self.data.image_group, generator)
        return torch.randperm(len(self.data.caption_tokens), generator=generator)

    def _log(self, record: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / "log.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def train_step(self, captions: torch.Tensor) -> dict[str, float]:
        """One optimizer step on the positive pairs of ``captions`` (int64 ``[B]``); returns the logged record.
        Dropout draws from the trainer's private global RNG (module doc)."""
        with self.dropout_rng.use():
            return self._train_step(captions)

    def _train_step(self, captions: torch.Tensor) -> dict[str, float]:
        cfg = self.config
        self.trainable.train()
        mined = cfg.mined_fraction if self.counters["step"] >= cfg.mined_from_step else 0.0
        with self.autocast():
            losses = batch_losses(self.trainable, self.data, captions, itc_weight=cfg.itc_weight,
                                  negatives=cfg.negatives, generator=self.generator, topk=self.topk,
                                  stage1=self.stage1, mined_fraction=mined, itm_rows=cfg.itm_batch_size)
            loss, extra = losses.loss.float(), {}
            if cfg.listwise_weight > 0:
                if self.topk is None:
                    raise ValueError("listwise_weight > 0 needs the trainer's TopKNegatives (topk=...)")
                listwise = listwise_itm_loss(self.trainable, self.data, captions[: cfg.list_rows], self.topk,
                                             self.generator, cfg.list_size, stage1=self.stage1,
                                             residual_scale=cfg.listwise_residual_scale)
                loss = loss + cfg.listwise_weight * listwise.loss.float()
                extra = {"listwise": listwise.loss.detach().item(), "listwise_top1": listwise.top1}
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable.parameters(), cfg.grad_clip_norm)
        lr = max(group["lr"] for group in self.optimizer.param_groups)
        self.optimizer.step()
        self.scheduler.step()
        self.counters["step"] += 1
        return {"event": "train", "step": self.counters["step"], "epoch": self.counters["epoch"],
                "loss": loss.detach().item(), "itm": losses.itm.detach().item(), **extra,
                "itc": losses.itc.detach().item(), "itm_accuracy": losses.itm_accuracy, "lr": lr,
                "temperature": self.trainable.clamped_temperature().detach().item()}

    def autocast(self) -> torch.autocast:
        """bf16 autocast on the model's device when ``compute_dtype`` asks for it, else a disabled one."""
        device_type = self.trainable.temperature.device.type
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16,
                              enabled=self.config.compute_dtype == "bfloat16")

    def save_last(self) -> Path:
        info = {"trainer": asdict(self.config), **self.counters}
        random_states = {**self.dropout_rng.states(), "generator": self.generator.get_state()}
        return save_itm_checkpoint(self.run_dir / "last", self.trainable, self.processor, info, lambda tmp:
                                   save_training_state(tmp, self.optimizer, self.counters, scheduler=self.scheduler,
                                                       module=self.trainable, random_states=random_states))

    def resume(self, directory: Path) -> None:
        """Restore model, optimizer, scheduler, random states and counters from a ``last`` checkpoint."""
        state = load_training_state(directory, self.optimizer, scheduler=self.scheduler, module=self.trainable)
        self.generator.set_state(state.random_states["generator"])
        self.dropout_rng.set_states(state.random_states)
        self.counters = state.counters
        log.info("resumed from %s at step %d (epoch %d)", directory, self.counters["step"], self.counters["epoch"])

    def _validate_and_select(self) -> None:
        metrics: dict[str, float] = {}
        if self.validate is not None:
            with torch.random.fork_rng():
                metrics = {k: float(v) for k, v in self.validate(self.trainable).items()}
            if self.config.selection_metric not in metrics:
                raise KeyError(f"validate() returned no {self.config.selection_metric!r} (selection_metric); "
                               f"it returned {sorted(metrics)}")
        value = metrics.get(self.config.selection_metric, float(self.counters["step"]))
        better = self.counters["best"] is None or value > self.counters["best"]
        self._log({"event": "val", "step": self.counters["step"], "epoch": self.counters["epoch"], **metrics,
                   "best": better})
        if better:
            self.counters["best"], self.counters["best_metrics"] = value, metrics
            info = {"trainer": asdict(self.config), **self.counters}
            save_itm_checkpoint(self.run_dir / "best", self.trainable, self.processor, info)

    def fit(self) -> FitResult:
        """Train to ``epochs`` (resuming from ``last/`` when ``config.resume``), or until ``max_train_seconds`` /
        ``max_steps`` stop it."""
        start = time.perf_counter()
        last = self.run_dir / "last"
        cfg = self.config
        if cfg.resume and has_training_state(last):
            self.resume(last)
        stopped = False
        while self.counters["epoch"] < self.config.epochs and not stopped:
            order = self._epoch_order(self.counters["epoch"])
            bar = tqdm(total=self.steps_per_epoch, initial=self.counters["step_in_epoch"], unit="step",
                       desc=f"ITM epoch {self.counters['epoch'] + 1}/{self.config.epochs}",
                       disable=not self.config.progress)
            while self.counters["step_in_epoch"] < self.steps_per_epoch:
                b = self.counters["step_in_epoch"]
                record = self.train_step(order[b * self.config.batch_size: (b + 1) * self.config.batch_size])
                self.counters["step_in_epoch"] = b + 1
                record["seconds"] = time.perf_counter() - start
                self._log(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['itm_accuracy']:.2f}")
                if cfg.checkpoint_every_steps and self.counters["step"] % cfg.checkpoint_every_steps == 0:
                    self.save_last()
                if cfg.max_train_seconds and time.perf_counter() - start >= cfg.max_train_seconds:
                    log.warning("max_train_seconds %.0f reached at step %d", cfg.max_train_seconds,
                                self.counters["step"])
                    stopped = True
                    break
                if cfg.max_steps and self.counters["step"] >= cfg.max_steps:
                    stopped = True
                    break
            bar.close()
            if self.counters["step_in_epoch"] >= self.steps_per_epoch:
                self.counters["epoch"] += 1
                self.counters["step_in_epoch"] = 0
            self._validate_and_select()
            self.save_last()
        return self._result(start, stopped_early=stopped and self.counters["epoch"] < cfg.epochs)

    def _result(self, start: float, stopped_early: bool) -> FitResult:
        return FitResult(self.run_dir / "last", self.run_dir / "best", dict(self.counters["best_metrics"]),
                         self.counters["step"], time.perf_counter() - start, stopped_early)
