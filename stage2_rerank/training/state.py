"""Pickle-free training state: module + optimizer + LR scheduler + RNG states as safetensors + JSON.

``save_train_state(directory, ...)`` writes ``training_state.safetensors`` (every tensor: the module's state
dict under ``module/``, optimizer per-parameter tensors under ``optimizer/<param index>/<name>``, RNG states
under ``rng/``) and ``training_state.json`` (optimizer param groups and non-tensor state, scheduler state, the
caller's counters). ``load_train_state`` restores them in place, so that training continues with exactly the
steps it would have taken without the interruption.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

TENSORS_FILE = "training_state.safetensors"
JSON_FILE = "training_state.json"


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
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


def save_train_state(directory: Path, module: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator,
                     counters: dict[str, Any]) -> None:
    """Write the state files into ``directory`` (created if needed). ``counters`` must be JSON-serialisable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"module/{k}": v.detach().contiguous().cpu().clone() for k, v in module.state_dict().items()}
    optimizer_tensors, optimizer_meta = _optimizer_parts(optimizer)
    tensors.update(optimizer_tensors)
    tensors["rng/torch"] = torch.get_rng_state()
    tensors["rng/generator"] = generator.get_state()
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{index}"] = cuda_state
    save_file(tensors, str(directory / TENSORS_FILE))
    meta = {"optimizer": optimizer_meta, "scheduler": scheduler.state_dict(), "counters": counters}
    (directory / JSON_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def has_train_state(directory: Path) -> bool:
    return (Path(directory) / TENSORS_FILE).is_file() and (Path(directory) / JSON_FILE).is_file()


def load_train_state(directory: Path, module: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator) -> dict[str, Any]:
    """Restore everything :func:`save_train_state` wrote (in place); returns the saved counters."""
    directory = Path(directory)
    tensors = load_file(str(directory / TENSORS_FILE))
    meta = json.loads((directory / JSON_FILE).read_text(encoding="utf-8"))
    module_state = {k.removeprefix("module/"): v for k, v in tensors.items() if k.startswith("module/")}
    module.load_state_dict(module_state)
    _restore_optimizer(optimizer, tensors, meta["optimizer"])
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng/torch"])
    generator.set_state(tensors["rng/generator"])
    if torch.cuda.is_available():
        cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda")]
        if cuda_states:
            torch.cuda.set_rng_state_all(cuda_states)
    return meta["counters"]
