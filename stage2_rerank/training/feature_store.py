"""Vision features of a whole image set, computed once and kept on disk for training (fp16 ``.npy`` + index).

A store is a directory: ``features.npy`` (float16 ``[N, T, D]``, memory-mapped when read) and ``index.json``
(format, provider identity, image ids and content fingerprints in row order, skipped images, and the shape,
dtype and sha256 of the features array). ``index.json`` is written last, so a store without it is unfinished
and is recomputed. :func:`cached_features` reuses a store only when the format, the provider identity and every
(id, fingerprint) match; otherwise it recomputes it in place.

Integrity: :func:`load_feature_store` checks ``features.npy`` against the index (readable, shape, dtype, sha256
of the bytes) and raises :class:`CorruptFeatureStoreError` naming the file when it fails. :func:`cached_features`
then moves the damaged file aside (``<name>.corrupt-<UTC time>``, in the store directory; never deleted), logs
one WARNING naming it, and recomputes the store; a garbled ``index.json`` is handled the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from rrbench_base.cache_files import move_aside
from rrbench_base.image_refs import ImageRef
from stage2_rerank.protocols import RerankInputError, VisionFeatureProvider

log = logging.getLogger(__name__)

FEATURES_FILE = "features.npy"
INDEX_FILE = "index.json"
STORE_FORMAT = 2
"""2: the index holds the features' shape, dtype and sha256."""
_HASH_ROWS = 1024


class CorruptFeatureStoreError(ValueError):
    """A store file (``path``) that cannot be read or does not match its index; the message names it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"feature store file {path}: {problem}")
        self.path = Path(path)


@dataclass
class FeatureStore:
    """Features of ``ids`` (row order) from provider ``identity``.

    Attributes:
        identity: the provider's identity.
        ids: image ids, one per row.
        features: float16 ``[N, T, D]`` (a read-only memory map when loaded from disk).
        skipped: (image id, reason) of images that failed to open under ``on_bad_input="skip"`` (no row).
    """

    identity: str
    ids: list[str]
    features: np.ndarray
    skipped: list[tuple[str, str]]

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """int64 row of each id; KeyError naming the first missing one."""
        position = {image_id: row for row, image_id in enumerate(self.ids)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise KeyError(f"image {missing[0]!r} is not in the feature store")
        return np.array([position[i] for i in ids], dtype=np.int64)


def features_sha256(features: np.ndarray) -> str:
    """sha256 hex of the C-order bytes of ``features``, read in row blocks (a memory map is not loaded whole)."""
    digest = hashlib.sha256()
    for start in range(0, len(features), _HASH_ROWS):
        digest.update(np.ascontiguousarray(features[start: start + _HASH_ROWS]).tobytes())
    return digest.hexdigest()


def _read_index(directory: Path) -> dict:
    path = directory / INDEX_FILE
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(index, dict) or not all(k in index for k in ("identity", "ids", "skipped")):
            raise ValueError("entries missing")
        return index
    except (OSError, ValueError) as exc:
        raise CorruptFeatureStoreError(path, f"unreadable: {type(exc).__name__}: {exc}") from exc


def _matches(directory: Path, identity: str, ids: list[str], prints: list[str]) -> bool:
    if not (directory / INDEX_FILE).is_file():
        return False
    index = _read_index(directory)
    if index.get("format") != STORE_FORMAT:
        return False
    kept = dict(zip(index["ids"], index.get("fingerprints", [])))
    skipped = {i for i, _ in index["skipped"]}
    return index["identity"] == identity and all(
        kept.get(i) == p or i in skipped for i, p in zip(ids, prints)) and len(kept) + len(skipped) == len(ids)


def load_feature_store(directory: Path) -> FeatureStore:
    """A finished store (features memory-mapped read-only), checked against its index (module docstring);
    CorruptFeatureStoreError naming the file when a check fails."""
    directory = Path(directory)
    index = _read_index(directory)
    path = directory / FEATURES_FILE
    try:
        features = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptFeatureStoreError(path, f"unreadable: {type(exc).__name__}: {exc}") from exc
    if "sha256" not in index:
        log.warning("feature store %s has no checksum (written by an older version): not verified", directory)
    elif [list(features.shape), features.dtype.str] != [index.get("shape"), index.get("dtype")] \
            or len(features) != len(index["ids"]):
        raise CorruptFeatureStoreError(path, f"holds {features.dtype} {features.shape}, its index says "
                                             f"{index.get('dtype')} {index.get('shape')} ({len(index['ids'])} rows)")
    elif features_sha256(features) != index["sha256"]:
        raise CorruptFeatureStoreError(path, "content does not match its sha256 checksum")
    return FeatureStore(index["identity"], index["ids"], features, [tuple(s) for s in index["skipped"]])


def _move_aside(path: Path, problem: str) -> None:
    """Set a damaged store file aside (``rrbench_base.cache_files.move_aside``: kept, renamed) and log one
    WARNING naming it."""
    target = move_aside(path)
    log.warning("%s; moved it aside to %s and recomputing the store", problem, target)


def _reuse(directory: Path, identity: str, ids: list[str], prints: list[str]) -> FeatureStore | None:
    """The store in ``directory`` when it is finished, sound and holds exactly these images; else None
    (a damaged file is moved aside first)."""
    try:
        if _matches(directory, identity, ids, prints):
            store = load_feature_store(directory)
            log.info("vision features: reusing %s", directory)
            return store
    except CorruptFeatureStoreError as exc:
        if exc.path.is_file():
            _move_aside(exc.path, str(exc))
    return None


def cached_features(provider: VisionFeatureProvider, images: Sequence[ImageRef], directory: Path,
                    batch_size: int = 32, on_bad_input: Literal["error", "skip"] = "error",
                    progress: bool = True) -> FeatureStore:
    """Features of ``images`` by ``provider``, from ``directory`` when it holds exactly them, else computed.

    An image that fails to open raises RerankInputError naming it (``on_bad_input="error"``) or is left out
    and listed in ``skipped`` (``"skip"``).
    """
    directory = Path(directory)
    ids = [str(image.id) for image in images]
    prints = [image.fingerprint() for image in images]
    reused = _reuse(directory, provider.identity, ids, prints)
    if reused is not None:
        return reused
    directory.mkdir(parents=True, exist_ok=True)
    (directory / INDEX_FILE).unlink(missing_ok=True)  # unfinished until the new index is written
    kept, skipped, written = _compute(provider, images, ids, directory, batch_size, on_bad_input, progress)
    index = {"format": STORE_FORMAT, "identity": provider.identity, "ids": [ids[r] for r in kept],
             "fingerprints": [prints[r] for r in kept], "skipped": skipped,
             "shape": list(written.shape), "dtype": written.dtype.str, "sha256": features_sha256(written)}
    tmp = directory / f"{INDEX_FILE}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(index), encoding="utf-8")
    os.replace(tmp, directory / INDEX_FILE)
    return FeatureStore(provider.identity, index["ids"], written, skipped)


def _compute(provider: VisionFeatureProvider, images: Sequence[ImageRef], ids: list[str], directory: Path,
             batch_size: int, on_bad_input: str, progress: bool) -> tuple[list[int], list[tuple[str, str]], np.ndarray]:
    """Encode ``images`` into ``directory/features.npy`` (written under a temporary name, then renamed, so a
    reader's memory map of the old file stays valid); (kept rows, skipped, the features memory-mapped)."""
    positions, dim = provider.feature_shape
    tmp = directory / f"{FEATURES_FILE}.tmp{os.getpid()}.npy"
    out = open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(images), positions, dim))
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc="caching vision features", unit="batch",
                          disable=not progress):
            opened, rows = [], []
            for row in range(start, min(start + batch_size, len(images))):
                try:
                    opened.append(images[row].open())
                    rows.append(row)
                except Exception as exc:  # noqa: BLE001 - the policy decides
                    if on_bad_input == "error":
                        del out
                        tmp.unlink()
                        raise RerankInputError(f"image {ids[row]!r}: {exc}") from exc
                    skipped.append((ids[row], str(exc)))
            if opened:
                out[len(kept): len(kept) + len(rows)] = provider.encode(opened).float().cpu().numpy()
                kept.extend(rows)
    out.flush()
    if skipped:  # compact: drop the unused tail rows
        full = np.array(out[: len(kept)])
        del out
        np.save(tmp, full)
    else:
        del out
    os.replace(tmp, directory / FEATURES_FILE)
    return kept, skipped, np.load(directory / FEATURES_FILE, mmap_mode="r")
