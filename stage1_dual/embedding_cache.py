"""On-disk embedding cache: one directory per key, embeddings stored in checksummed shards written atomically.

Key = sha256 of a JSON "key material": the code-level ``CACHE_FORMAT``, the encoder fingerprint (backend,
content hashes of every weights / config / tokenizer file, architecture config, parameter dtype, tokenizer and
text length; see ``TorchDualEncoder.fingerprint``), the preprocessing description (images; for texts the
caption preprocessing's identity unless ``none``), the effective precision, the kind, the items' content
fingerprints in order (image bytes hashes / caption strings after caption preprocessing), the number of items,
the shard size and, for a storage dtype other than float32, that dtype (``storage_dtype``; float32 keys are the
same as before the option existed, so a float16 entry and a float32 one never share a key). No path or
modification time stands in for content. Layout::

    <root>/<kind>/<key[:24]>/manifest.json          key material (item fingerprints as a digest)
    <root>/<kind>/<key[:24]>/shard_00000.npz        embeddings [n_ok, D] in the entry's storage dtype
                                                    (float32 or float16), positions int64 [n_ok],
                                                    skipped items (JSON) of items [start, stop), and
                                                    sha256: checksum of the three (``arrays_sha256``)

A shard file appears only when complete (written to a temporary name, then ``os.replace``), so an
interrupted encode resumes from the shards already present. :meth:`CacheEntry.read_shard` checks every
shard it reads: an unreadable file (truncated, bad zip CRC, garbage), a checksum mismatch or rows that do
not fit the shard (storage dtype, dimension, positions) is moved aside (``<name>.corrupt-<time>``, see
``stage1_dual.cache_integrity``) with a WARNING naming it, and reported as missing, so the caller recomputes
that shard; nothing read from it is used. Shards are always returned as float32 (a float16 shard
upcast exactly); :func:`as_stored` rounds fresh embeddings the same way, so encoded and cached values agree.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from stage1_dual.cache_integrity import CorruptCacheError, arrays_sha256, quarantine

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
"""2: shards carry a sha256 of their content; keys hold content identities only (weights, config, tokenizer)."""

STORAGE_DTYPES: dict[str, type] = {"float32": np.float32, "float16": np.float16}
"""Storage dtype name (``Stage1Config.cache_dtype``) -> numpy dtype of the stored embeddings."""


def check_storage_dtype(dtype: str) -> str:
    """``dtype`` when it is a key of :data:`STORAGE_DTYPES`; ValueError naming the known ones otherwise."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"unknown embedding storage dtype {dtype!r}; known: {', '.join(STORAGE_DTYPES)}")
    return dtype


def as_stored(embeddings: np.ndarray, dtype: str) -> np.ndarray:
    """float32 ``embeddings`` rounded to storage ``dtype`` and back: what a shard of that dtype returns on read."""
    stored = np.asarray(embeddings).astype(STORAGE_DTYPES[check_storage_dtype(dtype)], copy=False)
    return stored.astype(np.float32, copy=False)


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

    def checksum(self, dtype: str = "float32") -> str:
        """sha256 of embeddings (as storage ``dtype``), positions (int64) and the skipped list (canonical JSON)."""
        return arrays_sha256([np.asarray(self.embeddings, dtype=STORAGE_DTYPES[dtype]),
                              np.asarray(self.positions, np.int64), json.dumps(self.skipped, sort_keys=True)])


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class CacheEntry:
    """The shards of one cache key (see module docstring); ``dtype``: the storage dtype of its embeddings."""

    def __init__(self, directory: Path, key: str, num_items: int, shard_size: int, dtype: str = "float32") -> None:
        self.directory = directory
        self.key = key
        self.num_items = num_items
        self.shard_size = shard_size
        self.dtype = check_storage_dtype(dtype)

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

    def load_shard(self, index: int, dim: Optional[int] = None) -> ShardData:
        """Shard ``index`` with float32 embeddings, checked (storage dtype, checksum, row count, ``dim`` when
        given, positions inside the shard's range); CorruptCacheError naming the file when it is unreadable or
        fails a check."""
        path = self._shard_path(index)
        try:
            with np.load(path, allow_pickle=False) as data:
                shard = ShardData(embeddings=data["embeddings"], positions=data["positions"],
                                  skipped=json.loads(str(data["skipped_json"])))
                stored = str(data["sha256"])
        except Exception as exc:  # noqa: BLE001 - BadZipFile, zlib/struct errors, ValueError, EOFError, OSError, ...
            raise CorruptCacheError(f"embedding cache shard {path} is unreadable: {type(exc).__name__}: {exc}",
                                    path) from exc
        problem = self._check(index, shard, stored, dim)
        if problem:
            raise CorruptCacheError(f"embedding cache shard {path}: {problem}", path)
        return ShardData(shard.embeddings.astype(np.float32, copy=False),
                         shard.positions.astype(np.int64, copy=False), shard.skipped)

    def _check(self, index: int, shard: ShardData, stored: str, dim: Optional[int]) -> str:
        embeddings, positions = shard.embeddings, shard.positions
        if embeddings.dtype != STORAGE_DTYPES[self.dtype]:
            return f"embeddings stored as {embeddings.dtype}, but this cache entry holds {self.dtype}"
        if positions.dtype != np.int64 or embeddings.ndim != 2 or positions.ndim != 1 \
                or len(embeddings) != len(positions):
            return (f"unexpected arrays (embeddings {embeddings.dtype} {embeddings.shape}, "
                    f"positions {positions.dtype} {positions.shape})")
        if dim is not None and embeddings.shape[1] != dim:
            return f"embedding dimension {embeddings.shape[1]}, expected {dim}"
        if shard.checksum(self.dtype) != stored:
            return "content does not match its sha256 checksum"
        start, stop = self.shard_range(index)
        if len(positions) and (positions.min() < start or positions.max() >= stop or np.any(np.diff(positions) <= 0)):
            return f"positions outside [{start}, {stop}) or out of order"
        return ""

    def read_shard(self, index: int, dim: Optional[int] = None) -> Optional[ShardData]:
        """Shard ``index`` when present and sound; None when absent or damaged (a damaged file is moved
        aside with a WARNING naming it, see module docstring), so the caller recomputes it."""
        if not self.has_shard(index):
            return None
        try:
            return self.load_shard(index, dim)
        except CorruptCacheError as exc:
            quarantine(self._shard_path(index), str(exc), log)
            return None

    def save_shard(self, index: int, shard: ShardData) -> None:
        """Write shard ``index`` atomically, its embeddings converted to the entry's storage dtype."""
        buffer = io.BytesIO()
        np.savez(buffer, embeddings=np.ascontiguousarray(shard.embeddings, dtype=STORAGE_DTYPES[self.dtype]),
                 positions=np.asarray(shard.positions, dtype=np.int64),
                 skipped_json=np.array(json.dumps(shard.skipped)), sha256=np.array(shard.checksum(self.dtype)))
        _atomic_write(self._shard_path(index), buffer.getvalue())

    def mark_complete(self, summary: dict[str, Any]) -> None:
        """Record totals in ``complete.json`` (informational; shards alone decide what is cached)."""
        _atomic_write(self.directory / "complete.json", json.dumps(summary, indent=1).encode())


class EmbeddingCache:
    """Cache root; ``entry(kind, key_material, num_items, shard_size, dtype)`` opens one key's directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @staticmethod
    def make_key(key_material: dict[str, Any]) -> str:
        """sha256 hex of the canonical JSON of ``key_material``."""
        text = json.dumps({"format": CACHE_FORMAT, **key_material}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def entry(self, kind: str, key_material: dict[str, Any], num_items: int, shard_size: int,
              dtype: str = "float32") -> CacheEntry:
        """The entry of ``key_material`` + kind, item count, shard size and storage ``dtype`` (see module docstring)."""
        material = {**key_material, "kind": kind, "num_items": num_items, "shard_size": shard_size}
        if check_storage_dtype(dtype) != "float32":
            material["storage_dtype"] = dtype
        key = self.make_key(material)
        directory = self.root / kind / key[:24]
        directory.mkdir(parents=True, exist_ok=True)
        manifest = directory / "manifest.json"
        if not manifest.is_file():
            _atomic_write(manifest, json.dumps({"format": CACHE_FORMAT, "key": key, **material},
                                               indent=1, sort_keys=True, default=str).encode())
        return CacheEntry(directory, key, num_items, shard_size, dtype)
