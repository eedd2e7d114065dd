"""Vision features of a whole image set, computed once and kept on disk for training (fp16 ``.npy`` + index).

A store is a directory: ``features.npy`` (float16 ``[N, T, D]``, memory-mapped when read) and ``index.json``
(provider identity, image ids and content fingerprints in row order). ``index.json`` is written last, so a
store without it is unfinished and is recomputed. :func:`cached_features` reuses a store only when the
provider identity and every (id, fingerprint) match; otherwise it recomputes it.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from stage2_rerank.protocols import ImageRef, RerankInputError, VisionFeatureProvider

log = logging.getLogger(__name__)

FEATURES_FILE = "features.npy"
INDEX_FILE = "index.json"


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


def _matches(directory: Path, identity: str, ids: list[str], prints: list[str]) -> bool:
    index_path = directory / INDEX_FILE
    if not index_path.is_file():
        return False
    index = json.loads(index_path.read_text(encoding="utf-8"))
    kept = dict(zip(index["ids"], index["fingerprints"]))
    skipped = {i for i, _ in index["skipped"]}
    return index["identity"] == identity and all(
        kept.get(i) == p or i in skipped for i, p in zip(ids, prints)) and len(kept) + len(skipped) == len(ids)


def load_feature_store(directory: Path) -> FeatureStore:
    """A finished store (features memory-mapped read-only)."""
    index = json.loads((Path(directory) / INDEX_FILE).read_text(encoding="utf-8"))
    features = np.load(Path(directory) / FEATURES_FILE, mmap_mode="r")
    return FeatureStore(index["identity"], index["ids"], features, [tuple(s) for s in index["skipped"]])


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
    if _matches(directory, provider.identity, ids, prints):
        log.info("vision features: reusing %s", directory)
        return load_feature_store(directory)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    positions, dim = provider.feature_shape
    out = open_memmap(directory / FEATURES_FILE, mode="w+", dtype=np.float16, shape=(len(images), positions, dim))
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
                        raise RerankInputError(f"image {ids[row]!r}: {exc}") from exc
                    skipped.append((ids[row], str(exc)))
            if opened:
                out[len(kept): len(kept) + len(rows)] = provider.encode(opened).float().cpu().numpy()
                kept.extend(rows)
    out.flush()
    del out
    if skipped:  # compact: drop the unused tail rows
        full = np.load(directory / FEATURES_FILE, mmap_mode="r")[: len(kept)].copy()
        np.save(directory / FEATURES_FILE, full)
    index = {"identity": provider.identity, "ids": [ids[r] for r in kept],
             "fingerprints": [prints[r] for r in kept], "skipped": skipped}
    (directory / INDEX_FILE).write_text(json.dumps(index), encoding="utf-8")
    return load_feature_store(directory)
