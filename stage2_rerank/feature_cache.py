"""Vision features per image, computed once: kept in RAM up to a budget, spilled to fp16 files beyond it.

Key: the image fingerprint (content hash); the cache belongs to one provider identity (model, image size,
dtype), which names its spill directory. Spilled features are stored as float16 safetensors (written to a
temporary name, then renamed: a crash never leaves a partial file) and are read back as float16, so a
spilled image's scores carry fp16 rounding of its features (what the vision tower produces on GPU anyway).
Spill files under a persistent ``spill_root`` are reused by later runs of the same provider.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)


class VisionFeatureCache:
    """fingerprint -> features ``[T, D]`` (CPU tensors)."""

    def __init__(self, provider_identity: str, memory_budget_bytes: int, spill_root: Path | None) -> None:
        self._budget = memory_budget_bytes
        self._memory: dict[str, torch.Tensor] = {}
        self._memory_bytes = 0
        self._temporary: tempfile.TemporaryDirectory | None = None
        digest = hashlib.sha1(provider_identity.encode()).hexdigest()[:16]
        self._spill_dir = None if spill_root is None else Path(spill_root) / digest
        self._digest = digest
        self.spilled = 0

    @property
    def memory_bytes(self) -> int:
        return self._memory_bytes

    def _spill_path(self, fingerprint: str, create: bool) -> Path | None:
        if self._spill_dir is None:
            if self._temporary is None:
                if not create:
                    return None
                self._temporary = tempfile.TemporaryDirectory(prefix=f"rrbench-vision-{self._digest}-")
            directory = Path(self._temporary.name)
        else:
            directory = self._spill_dir
        if create:
            directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{fingerprint}.safetensors"

    def get(self, fingerprint: str) -> torch.Tensor | None:
        """Features of the image, or None when neither in RAM nor spilled."""
        if fingerprint in self._memory:
            return self._memory[fingerprint]
        path = self._spill_path(fingerprint, create=False)
        if path is not None and path.exists():
            return load_file(path)["features"]
        return None

    def __contains__(self, fingerprint: str) -> bool:
        if fingerprint in self._memory:
            return True
        path = self._spill_path(fingerprint, create=False)
        return path is not None and path.exists()

    def put(self, fingerprint: str, features: torch.Tensor) -> None:
        """Store ``features`` ``[T, D]`` (moved to CPU): in RAM while within budget, else as an fp16 file.
        A fingerprint already stored is left as it is."""
        if fingerprint in self:
            return
        features = features.detach().to("cpu")
        size = features.numel() * features.element_size()
        if self._memory_bytes + size <= self._budget:
            self._memory[fingerprint] = features
            self._memory_bytes += size
            return
        path = self._spill_path(fingerprint, create=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        save_file({"features": features.to(torch.float16).contiguous()}, partial)
        os.replace(partial, path)
        self.spilled += 1
        if self.spilled == 1:
            log.info("vision features above %.0f MB: spilling to fp16 files in %s", self._budget / 2**20, path.parent)

    def close(self) -> None:
        """Drop the RAM copies and delete a temporary spill directory."""
        self._memory.clear()
        self._memory_bytes = 0
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None
