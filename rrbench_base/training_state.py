"""Resumable training state of either stage's trainer, without pickles: optimizer, LR scheduler, random states,
the trainer's counters, extra tensors and (optionally) the module's own state dict.

Two files, written into a checkpoint directory next to the model files::

    training_state.safetensors   module state (``module/<key>``, when a module is given), optimizer
                                 per-parameter tensors (``optimizer/<param index>/<name>``), random states
                                 (``rng/<name>``: e.g. ``torch``, ``cuda0``, a trainer's generator), the caller's
                                 tensors (``array/<name>``)
    training_state.json          {"format_version", "optimizer": param groups + non-tensor state,
                                  "scheduler": its state dict or null, "counters": the caller's JSON,
                                  "tensors_sha256": digest of the tensors file}

Each file is written under a temporary name and renamed into place, the tensors first; loading checks that
both files exist and that the tensors file is the one the JSON was written with, so a torn pair is an
error, never a silent mix. Files of format version 0 (stage 2 before the format had a version: no digest)
still load. Stage 1's older ``optimizer.safetensors`` + ``trainer_state.json`` are refused with a message.

Restoring the state into the same objects in a fresh process continues training with exactly the steps an
uninterrupted run would take (the caller restores the random states it saved).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rrbench_base.file_digest import file_sha256

TENSORS_FILE = "training_state.safetensors"
JSON_FILE = "training_state.json"
FORMAT_VERSION = 1
LEGACY_STAGE1_FILES = ("trainer_state.json", "optimizer.safetensors")


class TrainingStateError(ValueError):
    """A training state that is missing a file, torn, of an unknown format or of another layout."""


@dataclass
class TrainingState:
    """What :func:`load_training_state` returns besides restoring optimizer, scheduler and module in place.

    Attributes:
        counters: the JSON the trainer saved (step, epoch, best metric, history, ...).
        random_states: ``name -> state tensor`` as saved (restore them into their generators).
        arrays: the caller's extra tensors by name.
    """

    counters: dict[str, Any]
    random_states: dict[str, torch.Tensor] = field(default_factory=dict)
    arrays: dict[str, torch.Tensor] = field(default_factory=dict)


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = value.detach().contiguous().cpu().clone()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = []
    for saved, current in zip(meta["param_groups"], optimizer.param_groups):
        group = dict(saved)
        for name, value in current.items():  # JSON turned tuples (e.g. Adam betas) into lists
            if isinstance(value, tuple) and isinstance(group.get(name), list):
                group[name] = tuple(group[name])
        groups.append(group)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _replace_atomically(path: Path, write) -> None:
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_training_state(directory: Path, optimizer: torch.optim.Optimizer, counters: dict[str, Any], *,
                        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
                        module: Optional[nn.Module] = None,
                        random_states: Optional[Mapping[str, torch.Tensor]] = None,
                        arrays: Optional[Mapping[str, torch.Tensor]] = None) -> None:
    """Write the two state files into ``directory`` (created if needed); ``counters`` must be JSON-ready."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    if module is not None:
        tensors.update({f"module/{k}": v.detach().contiguous().cpu().clone() for k, v in module.state_dict().items()})
    optimizer_tensors, optimizer_meta = _optimizer_parts(optimizer)
    tensors.update(optimizer_tensors)
    tensors.update({f"rng/{name}": value.detach().cpu().contiguous() for name, value in (random_states or {}).items()})
    tensors.update({f"array/{name}": value.detach().cpu().contiguous() for name, value in (arrays or {}).items()})
    tensors_path = directory / TENSORS_FILE
    _replace_atomically(tensors_path, lambda tmp: save_file(tensors, str(tmp)))
    meta = {"format_version": FORMAT_VERSION, "optimizer": optimizer_meta,
            "scheduler": scheduler.state_dict() if scheduler is not None else None, "counters": counters,
            "tensors_sha256": file_sha256(tensors_path)}
    _replace_atomically(directory / JSON_FILE,
                        lambda tmp: tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8"))


def has_training_state(directory: Path) -> bool:
    """Whether ``directory`` holds a training state to resume from; TrainingStateError for stage 1's older
    layout, which this code cannot resume."""
    directory = Path(directory)
    if all((directory / name).is_file() for name in LEGACY_STAGE1_FILES) and not (directory / JSON_FILE).is_file():
        raise TrainingStateError(f"{directory} holds a training state of an older rrbench "
                                 f"({' + '.join(LEGACY_STAGE1_FILES)}) that cannot be resumed; start over "
                                 f"(--no-resume) or move the run directory aside")
    return (directory / TENSORS_FILE).is_file() and (directory / JSON_FILE).is_file()


def load_training_state(directory: Path, optimizer: torch.optim.Optimizer, *,
                        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
                        module: Optional[nn.Module] = None) -> TrainingState:
    """Restore ``optimizer`` (and ``scheduler``, ``module`` when given) in place from what
    :func:`save_training_state` wrote; returns counters, random states and arrays."""
    directory = Path(directory)
    if not has_training_state(directory):
        raise TrainingStateError(f"{directory} is not a resumable training checkpoint "
                                 f"({TENSORS_FILE} / {JSON_FILE} missing)")
    meta = json.loads((directory / JSON_FILE).read_text(encoding="utf-8"))
    version = int(meta.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise TrainingStateError(f"{directory / JSON_FILE}: format_version {version} is newer than this code "
                                 f"({FORMAT_VERSION})")
    expected = meta.get("tensors_sha256")
    if version >= 1 and expected != file_sha256(directory / TENSORS_FILE):
        raise TrainingStateError(f"{directory / TENSORS_FILE} is not the file {JSON_FILE} was written with "
                                 f"(sha256 differs: torn or damaged training state)")
    tensors = load_file(str(directory / TENSORS_FILE))
    if module is not None:
        module.load_state_dict({k.removeprefix("module/"): v for k, v in tensors.items() if k.startswith("module/")})
    _restore_optimizer(optimizer, tensors, meta["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(meta["scheduler"])
    return TrainingState(
        counters=meta["counters"],
        random_states={k.removeprefix("rng/"): v for k, v in tensors.items() if k.startswith("rng/")},
        arrays={k.removeprefix("array/"): v for k, v in tensors.items() if k.startswith("array/")})
