"""Resumable training checkpoints: a model directory plus optimizer, queue and RNG state (no pickles).

Added to a model directory (``stage1_dual.trainable.checkpoint``)::

    optimizer.safetensors   optimizer tensors (state.<param index>.<name>), queue tensors
                            (queue.<name>.<field>), torch RNG (rng.torch, rng.cuda.<i>), extra arrays
    trainer_state.json      optimizer scalars and param groups, epoch / step counters, best metric,
                            history, anything else the trainer needs (JSON)

Loading restores the optimizer state, the queues and the torch RNG, and returns the JSON state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_file, save_file

from stage1_dual.trainable.checkpoint import (CheckpointError, load_weights_into, write_directory_atomically,
                                              write_model_files)
from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.training.memory_queue import FeatureQueue

OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_checkpoint(directory: Path, model: DualEncoderModel, optimizer: torch.optim.Optimizer,
                             queues: dict[str, FeatureQueue], trainer_state: dict[str, Any],
                             arrays: Optional[dict[str, torch.Tensor]] = None,
                             info: Optional[dict[str, Any]] = None) -> Path:
    """Write model files + optimizer/queue/RNG tensors + ``trainer_state`` JSON into ``directory``, atomically."""
    tensors, optimizer_meta = _optimizer_parts(optimizer)
    for name, queue in queues.items():
        for field_name, value in queue.state_dict().items():
            tensors[f"queue.{name}.{field_name}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = value
    for name, value in (arrays or {}).items():
        tensors[f"array.{name}"] = value.detach().cpu().contiguous()
    state = {**trainer_state, "optimizer": optimizer_meta}

    def write(tmp: Path) -> None:
        write_model_files(model, tmp, info)
        save_file(tensors, str(tmp / OPTIMIZER_FILE))
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1), encoding="utf-8")

    write_directory_atomically(Path(directory), write)
    return Path(directory)


def load_training_checkpoint(directory: Path, model: DualEncoderModel, optimizer: torch.optim.Optimizer,
                             queues: dict[str, FeatureQueue]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore ``model`` weights, ``optimizer``, ``queues`` and the torch RNG from ``directory``;
    returns ``(trainer_state, arrays)``."""
    directory = Path(directory)
    if not (directory / STATE_FILE).is_file() or not (directory / OPTIMIZER_FILE).is_file():
        raise CheckpointError(f"{directory} is not a resumable training checkpoint "
                              f"({STATE_FILE} / {OPTIMIZER_FILE} missing)")
    load_weights_into(model, directory)
    tensors = load_file(str(directory / OPTIMIZER_FILE))
    state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    optimizer.load_state_dict(_optimizer_state(tensors, state.pop("optimizer")))
    for name, queue in queues.items():
        prefix = f"queue.{name}."
        queue.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    arrays = {k[len("array."):]: v for k, v in tensors.items() if k.startswith("array.")}
    return state, arrays
