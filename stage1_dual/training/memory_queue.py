"""A FIFO memory of past embeddings (with their image keys), used as extra negatives/positives.

Holds at most ``size`` rows; :meth:`FeatureQueue.push` appends a batch (detached) and drops the oldest
rows beyond ``size``; :meth:`FeatureQueue.bank` returns the current rows as a
:class:`~stage1_dual.training.losses.FeatureBank`. The state (rows and keys) is saved with training
checkpoints, so a resumed run sees the same queue.
"""

from __future__ import annotations

import torch

from stage1_dual.training.losses import FeatureBank


class FeatureQueue:
    """Ring buffer of ``[size, dim]`` float embeddings and ``[size]`` int64 keys (oldest first)."""

    def __init__(self, size: int, dim: int) -> None:
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.size = size
        self.dim = dim
        self.embeddings = torch.zeros(0, dim)
        self.keys = torch.zeros(0, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.keys)

    def push(self, embeddings: torch.Tensor, keys: torch.Tensor) -> None:
        """Append ``embeddings [B, dim]`` with ``keys [B]``; keep only the newest ``size`` rows."""
        if embeddings.shape[1] != self.dim or len(embeddings) != len(keys):
            raise ValueError(f"queue push: expected [B, {self.dim}] embeddings and [B] keys, got "
                             f"{tuple(embeddings.shape)} and {tuple(keys.shape)}")
        device = embeddings.device
        self.embeddings = torch.cat([self.embeddings.to(device), embeddings.detach().float()])[-self.size:]
        self.keys = torch.cat([self.keys.to(device), keys.detach().long()])[-self.size:]

    def bank(self) -> FeatureBank:
        """The queued rows as loss columns."""
        return FeatureBank(self.embeddings, self.keys)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"embeddings": self.embeddings.cpu().contiguous(), "keys": self.keys.cpu().contiguous()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.embeddings = state["embeddings"].float()
        self.keys = state["keys"].long()
