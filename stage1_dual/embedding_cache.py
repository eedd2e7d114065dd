"""On-disk embedding cache: one directory per key, embeddings stored in shards written atomically.

Key = sha256 of a JSON "key material" (encoder fingerprint, preprocessing description, effective
precision, kind, the items' fingerprints in order, shard size). Layout::

    <root>/<kind>/<key[:24]>/manifest.json          key material (item fingerprints as a digest)
    <root>/<kind>/<key[:24]>/shard_00000.npz        embeddings float32 [n_ok, D], positions int64 [n_ok],
                                                    skipped items (JSON) of items [start, stop)

A shard file appears only when complete (written to a temporary name, then ``os.replace``), so an
interrupted encode resumes from the shards already present.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

CACHE_FORMAT = 1


def items_digest(fingerprints: Iterable[str]) -> str:
    """sha256 (hex) over item fingerprints in order (each length-prefixed, so no ambiguity)."""
    digest = hashlib.sha256()
    for text in fingerprints:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@dataclass
class ShardData:
    """Embeddings of items ``[start, stop)``: rows for the items that encoded, plus the skipped ones.

    ``embeddings`` float32 ``[n_ok, D]``; ``positions`` int64 ``[n_ok]`` (global positions in the item
    list); ``skipped``: dicts ``{"position", "id", "reason"}``.
    """

    embeddings: np.ndarray
    positions: np.ndarray
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class CacheEntry:
    """The shards of one cache key (see module docstring)."""

    def __init__(self, directory: Path, key: str, num_items: int, shard_size: int) -> None:
        self.directory = directory
        self.key = key
        self.num_items = num_items
        self.shard_size = shard_size

    @property
    def num_shards(self) -> int:
        return max(1, -(-self.num_items // self.shard_size))

    def shard_range(self, index: int) -> tuple[int, int]:
        """Item positions ``[start, stop)`` of shard ``index``."""
        start = index * self.shard_size
        return start, min(start + self.shard_size, self.num_items)

    def _shard_path(self, index: int) -> Path:
        return self.directory / f"shard_{index:05d}.npz"

    def has_shard(self, index: int) -> bool:
        return self._shard_path(index).is_file()

    def load_shard(self, index: int) -> ShardData:
        with np.load(self._shard_path(index), allow_pickle=False) as data:
            return ShardData(embeddings=data["embeddings"].astype(np.float32, copy=False),
                             positions=data["positions"].astype(np.int64, copy=False),
                             skipped=json.loads(str(data["skipped_json"])))

    def save_shard(self, index: int, shard: ShardData) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, embeddings=np.ascontiguousarray(shard.embeddings, dtype=np.float32),
                 positions=np.asarray(shard.positions, dtype=np.int64),
                 skipped_json=np.array(json.dumps(shard.skipped)))
        _atomic_write(self._shard_path(index), buffer.getvalue())

    def mark_complete(self, summary: dict[str, Any]) -> None:
        """Record totals in ``complete.json`` (informational; shards alone decide what is cached)."""
        _atomic_write(self.directory / "complete.json", json.dumps(summary, indent=1).encode())


class EmbeddingCache:
    """Cache root; ``entry(kind, key_material, num_items, shard_size)`` opens one key's directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @staticmethod
    def make_key(key_material: dict[str, Any]) -> str:
        """sha256 hex of the canonical JSON of ``key_material``."""
        text = json.dumps({"format": CACHE_FORMAT, **key_material}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def entry(self, kind: str, key_material: dict[str, Any], num_items: int, shard_size: int) -> CacheEntry:
        material = {**key_material, "kind": kind, "num_items": num_items, "shard_size": shard_size}
        key = self.make_key(material)
        directory = self.root / kind / key[:24]
        directory.mkdir(parents=True, exist_ok=True)
        manifest = directory / "manifest.json"
        if not manifest.is_file():
            _atomic_write(manifest, json.dumps({"format": CACHE_FORMAT, "key": key, **material},
                                               indent=1, sort_keys=True, default=str).encode())
        return CacheEntry(directory, key, num_items, shard_size)
