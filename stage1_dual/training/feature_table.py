"""In-memory tables of a frozen tower's features, one row per item, with batch lookup.

Dense features (``pooled [N, C]``) are stored as they are. Sequence features (``hidden [N, T, C]`` with
``attention_mask [N, T]``) are stored ragged: only real tokens, concatenated (``values [sum T_i, C]``)
with ``offsets [N + 1]``; :meth:`FeatureTable.batch` pads them back to the longest item of the batch
and rebuilds ``attention_mask``. ``positions`` says which input item each row belongs to (items that
failed, e.g. unreadable images skipped by policy, have no row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
import torch

from stage1_dual.trainable.towers import Features

MASK = "attention_mask"


@dataclass
class FeatureTable:
    """``dense[name] [N, ...]``, ``ragged[name] = (values [total, ...], offsets [N + 1])``, ``positions [N]``."""

    dense: dict[str, torch.Tensor]
    ragged: dict[str, tuple[torch.Tensor, torch.Tensor]]
    positions: np.ndarray
    skipped: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.positions)

    def batch(self, rows: np.ndarray, device: Optional[torch.device] = None) -> Features:
        """Features of table rows ``rows`` (float32), ragged ones padded with ``attention_mask``."""
        index = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        out = {name: _as_float(values[index]) for name, values in self.dense.items()}
        for name, (values, offsets) in self.ragged.items():
            starts, ends = offsets[index], offsets[index + 1]
            lengths = ends - starts
            longest = int(lengths.max()) if len(lengths) else 0
            padded = torch.zeros((len(index), longest) + tuple(values.shape[1:]), dtype=torch.float32)
            mask = torch.zeros((len(index), longest), dtype=torch.long)
            for row, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist())):
                padded[row, :length] = _as_float(values[start:start + length])
                mask[row, :length] = 1
            out[name] = padded
            out[MASK] = mask
        if device is not None:
            out = {k: v.to(device, non_blocking=True) for k, v in out.items()}
        return out


def _as_float(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.is_floating_point() else tensor


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def table_from_batches(batches: Iterable[tuple[np.ndarray, Features]], dtype: torch.dtype = torch.float32,
                       skipped: Optional[list[dict]] = None) -> FeatureTable:
    """Assemble a table from ``(input positions, features)`` batches (features on any device)."""
    dense: dict[str, list[torch.Tensor]] = {}
    ragged: dict[str, list[torch.Tensor]] = {}
    lengths: list[torch.Tensor] = []
    positions: list[np.ndarray] = []
    for batch_positions, features in batches:
        positions.append(np.asarray(batch_positions, dtype=np.int64))
        mask = features.get(MASK)
        for name, value in features.items():
            value = value.detach().to("cpu")
            if name == MASK:
                continue
            if mask is not None and tuple(value.shape[:2]) == tuple(mask.shape):
                keep = mask.to("cpu").bool()
                ragged.setdefault(name, []).append(_cast(value[keep], dtype))
            else:
                dense.setdefault(name, []).append(_cast(value, dtype))
        if mask is not None:
            lengths.append(mask.to("cpu").long().sum(dim=1))
    offsets = torch.zeros(1, dtype=torch.long)
    if lengths:
        offsets = torch.cat([offsets, torch.cat(lengths).cumsum(0)])
    return FeatureTable(dense={k: torch.cat(v) for k, v in dense.items()},
                        ragged={k: (torch.cat(v), offsets) for k, v in ragged.items()},
                        positions=np.concatenate(positions) if positions else np.zeros(0, np.int64),
                        skipped=list(skipped or []))
