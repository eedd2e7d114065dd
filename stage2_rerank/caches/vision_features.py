"""Vision features per image, computed once: kept in RAM up to a budget, spilled to disk losslessly beyond it.

Key: the image fingerprint (content hash); the cache belongs to one feature key (provider identity, device,
library versions; see ``rerank.Reranker``), which together with :data:`FEATURE_FORMAT` names its spill
directory. Spilled features are stored in the dtype they were computed in (no rounding: a spilled image scores
bit for bit as an in-memory one), as safetensors whose metadata holds the format and the sha256 of dtype,
shape and bytes; a file is written under a temporary name and renamed, so a crash never leaves a partial file.
Spill files under a persistent ``spill_root`` are reused by later runs with the same feature key.

Recovery: every spill read is verified. A file that does not parse (truncated, garbled header) is renamed to
``<name>.corrupt-<UTC time>`` and a file whose checksum or format does not match is treated as missing
(overwritten by the next ``put``); either way a WARNING names the file (once per file) and ``get`` returns
None, so the caller recomputes the features: nothing is ever computed from a damaged spill.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from rrbench_base.cache_files import move_aside

log = logging.getLogger(__name__)

FEATURE_FORMAT = "rrbench-vision-features/2"  # bump when the spill layout or its checks change
STORAGE = "as-computed"  # spilled features keep their computed dtype (part of the pair-score key)


def tensor_sha256(features: torch.Tensor) -> str:
    """Hex sha256 of a tensor's dtype, shape and bytes."""
    features = features.detach().contiguous().cpu()
    digest = hashlib.sha256(f"{features.dtype}|{tuple(features.shape)}\x00".encode())
    if features.numel():
        digest.update(features.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


class VisionFeatureCache:
    """fingerprint -> features ``[T, D]`` (CPU tensors, in the dtype they were computed in)."""

    storage = STORAGE

    def __init__(self, provider_identity: str, memory_budget_bytes: int, spill_root: Path | None) -> None:
        self._budget = memory_budget_bytes
        self._memory: dict[str, torch.Tensor] = {}
        self._memory_bytes = 0
        self._temporary: tempfile.TemporaryDirectory | None = None
        digest = hashlib.sha1(f"{FEATURE_FORMAT}\x00{provider_identity}".encode()).hexdigest()[:16]
        self._spill_dir = None if spill_root is None else Path(spill_root) / digest
        self._digest = digest
        self._invalid: set[str] = set()  # fingerprints whose spill file failed its check
        self._warned: set[Path] = set()
        self.spilled = 0
        self.damaged = 0

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

    def _warn(self, path: Path, message: str, *args: object) -> None:
        self.damaged += 1
        if path not in self._warned:
            self._warned.add(path)
            log.warning(message, path, *args)

    def _load(self, fingerprint: str, path: Path) -> torch.Tensor | None:
        """The verified features of a spill file, or None (damaged: warned, moved aside or marked invalid)."""
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                features = handle.get_tensor("features")
        except (SafetensorError, ValueError, KeyError, RuntimeError) as exc:
            aside = move_aside(path)
            self._warn(path, "vision feature spill %s is unreadable (%s): moved to %s, recomputing",
                       exc, aside.name)
            return None
        if meta.get("format") != FEATURE_FORMAT or meta.get("sha256") != tensor_sha256(features):
            self._invalid.add(fingerprint)
            self._warn(path, "vision feature spill %s fails its checksum: ignoring it, recomputing")
            return None
        return features

    def get(self, fingerprint: str) -> torch.Tensor | None:
        """Features of the image, or None when neither in RAM nor validly spilled (a damaged spill file is
        reported and then treated as missing: see the module doc)."""
        if fingerprint in self._memory:
            return self._memory[fingerprint]
        if fingerprint in self._invalid:
            return None
        path = self._spill_path(fingerprint, create=False)
        if path is not None and path.exists():
            return self._load(fingerprint, path)
        return None

    def __contains__(self, fingerprint: str) -> bool:
        """Whether features are in RAM or spilled (a spill file is verified only when read by ``get``)."""
        if fingerprint in self._memory:
            return True
        if fingerprint in self._invalid:
            return False
        path = self._spill_path(fingerprint, create=False)
        return path is not None and path.exists()

    def put(self, fingerprint: str, features: torch.Tensor) -> None:
        """Store ``features`` ``[T, D]`` (moved to CPU, dtype kept): in RAM while within budget, else in a spill
        file with its checksum (replacing a damaged one). A fingerprint already stored is left as it is."""
        if fingerprint in self:
            return
        features = features.detach().to("cpu").contiguous()
        size = features.numel() * features.element_size()
        if self._memory_bytes + size <= self._budget:
            self._memory[fingerprint] = features
            self._memory_bytes += size
            self._invalid.discard(fingerprint)
            return
        path = self._spill_path(fingerprint, create=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        save_file({"features": features}, partial,
                  metadata={"format": FEATURE_FORMAT, "sha256": tensor_sha256(features)})
        os.replace(partial, path)
        self._invalid.discard(fingerprint)
        self.spilled += 1
        if self.spilled == 1:
            log.info("vision features above %.0f MB: spilling them (%s, lossless) to %s", self._budget / 2**20,
                     features.dtype, path.parent)

    def close(self) -> None:
        """Drop the RAM copies and delete a temporary spill directory."""
        self._memory.clear()
        self._memory_bytes = 0
        self._invalid.clear()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None
