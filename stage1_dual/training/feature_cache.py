"""Frozen-tower features computed once (LiT training) and cached on disk.

Key = sha256 of (code-level ``CACHE_FORMAT``; tower identity: name, weights hash, frozen layers,
preprocessing, text length; a text tower's tokenizer by content (``tokenizer_identity``); item kind; the items' fingerprints in order: image content hashes or caption
strings; storage dtype). Layout::

    <root>/<kind>/<key[:24]>/features.safetensors   dense.<name>, ragged.<name>.values/.offsets,
                                                    positions (input position of each row); its metadata
                                                    holds the sha256 of every tensor (``arrays_sha256``)
    <root>/<kind>/<key[:24]>/meta.json              key material and skipped items

The file is written to a temporary name and renamed, so an interrupted run leaves no partial entry. Every
read is checked: an unreadable ``features.safetensors`` / ``meta.json`` (truncated, garbage), a tensor whose
sha256 does not match, or one missing, is moved aside (``<name>.corrupt-<time>``; see
``stage1_dual.cache_integrity``) with a WARNING naming the file, and the features are recomputed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from rrbench_base.image_refs import BadImageError, ImageRef
from stage1_dual.cache_integrity import READ_ERRORS, CorruptCacheError, arrays_sha256, quarantine
from stage1_dual.embedding_cache import EmbeddingCache, items_digest
from stage1_dual.tokenizer_identity import tokenizer_identity
from stage1_dual.trainable.image_towers import ImageTower
from stage1_dual.trainable.towers import Tower
from stage1_dual.training.feature_table import FeatureTable, table_from_batches

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
"""2: a sha256 of every tensor in the safetensors metadata."""
_CHECKSUMS = "rrbench_sha256"
_DTYPES = {"float32": torch.float32, "float16": torch.float16}


class _ImageFiles(Dataset):
    def __init__(self, images: Sequence[ImageRef], transform: Any) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[int, Optional[torch.Tensor], str]:
        try:
            return i, self.transform(self.images[i].open()), ""
        except Exception as exc:  # noqa: BLE001 - judged by the on_bad_input policy
            return i, None, f"{type(exc).__name__}: {exc}"


def _collate(items: list) -> tuple[list[int], Optional[torch.Tensor], list[tuple[int, str]]]:
    good = [(i, t) for i, t, _ in items if t is not None]
    return [i for i, _ in good], torch.stack([t for _, t in good]) if good else None, \
        [(i, e) for i, t, e in items if t is None]


def image_feature_batches(tower: ImageTower, images: Sequence[ImageRef], batch_size: int, num_workers: int,
                          on_bad_input: str, skipped: list[dict], device: torch.device
                          ) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """``(positions, frozen features)`` per batch of ``images`` (eval preprocessing); failures follow
    ``on_bad_input`` (``error`` raises BadImageError naming the image, ``skip`` appends to ``skipped``)."""
    loader = DataLoader(_ImageFiles(images, tower.eval_transform()), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=_collate, generator=torch.Generator().manual_seed(0))
    for positions, pixels, failures in tqdm(loader, desc="frozen image features", unit="batch"):
        for position, reason in failures:
            if on_bad_input == "error":
                raise BadImageError(f"image {images[position].id!r} could not be read for training: {reason} "
                                    f"(set on_bad_input: skip to leave it out)")
            skipped.append({"position": position, "id": images[position].id, "reason": reason})
        if pixels is not None:
            yield np.asarray(positions), tower.frozen_features(pixels.to(device))


def text_feature_batches(tower: Tower, texts: Sequence[str], batch_size: int
                         ) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """``(positions, frozen features)`` per batch of ``texts``."""
    for start in tqdm(range(0, len(texts), batch_size), desc="frozen text features", unit="batch"):
        stop = min(start + batch_size, len(texts))
        yield np.arange(start, stop), tower.frozen_features(list(texts[start:stop]))


class FrozenFeatureCache:
    """Disk cache of frozen features (module docstring); ``root`` None keeps everything in memory only."""

    def __init__(self, root: Optional[Path], dtype: str = "float32") -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"feature cache dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        self.root = Path(root) if root is not None else None
        self.dtype = dtype
        self.hits = 0
        self.misses = 0

    def _directory(self, material: dict[str, Any]) -> Optional[Path]:
        if self.root is None:
            return None
        return self.root / material["kind"] / EmbeddingCache.make_key(material)[:24]

    def images(self, tower: ImageTower, images: Sequence[ImageRef], *, batch_size: int = 64, num_workers: int = 0,
               on_bad_input: str = "error", device: torch.device = torch.device("cpu")) -> FeatureTable:
        """Frozen features of ``images`` (from the cache when present)."""
        material = self._material(tower, "images", (image.fingerprint() for image in images))
        skipped: list[dict] = []
        return self._load_or_build(material, lambda: image_feature_batches(
            tower, images, batch_size, num_workers, on_bad_input, skipped, device), skipped, on_bad_input)

    def texts(self, tower: Tower, texts: Sequence[str], *, batch_size: int = 256) -> FeatureTable:
        """Frozen features of ``texts`` (from the cache when present)."""
        material = self._material(tower, "texts", (str(t) for t in texts))
        return self._load_or_build(material, lambda: text_feature_batches(tower, texts, batch_size), [], "error")

    def _material(self, tower: Tower, kind: str, fingerprints: Any) -> dict[str, Any]:
        material = {"format": CACHE_FORMAT, "kind": kind, "tower": tower.identity(), "dtype": self.dtype,
                    "items": items_digest(fingerprints)}
        if getattr(tower, "tokenizer", None) is not None:  # a text tower's tokenizer, by content
            material["tokenizer"] = tokenizer_identity(tower.tokenizer)
        return material

    def _load_or_build(self, material: dict[str, Any], batches: Any, skipped: list[dict],
                       on_bad_input: str) -> FeatureTable:
        directory = self._directory(material)
        table = _read_checked(directory) if directory is not None else None
        if table is not None:
            if on_bad_input == "error" and table.skipped:
                raise BadImageError(f"image {table.skipped[0]['id']!r} (cached as skipped by an earlier "
                                    f"on_bad_input=skip run): {table.skipped[0]['reason']}")
            self.hits += 1
            log.info("frozen features from cache %s (%d rows)", directory, len(table))
            return table
        self.misses += 1
        table = table_from_batches(batches(), _DTYPES[self.dtype], skipped)
        if directory is not None:
            _write(directory, table, material)
        return table


def _tensor_sha256(tensor: torch.Tensor) -> str:
    return arrays_sha256([tensor.detach().cpu().contiguous().numpy()])


def _write(directory: Path, table: FeatureTable, material: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"dense.{k}": v.contiguous() for k, v in table.dense.items()}
    for name, (values, offsets) in table.ragged.items():
        tensors[f"ragged.{name}.values"] = values.contiguous()
        tensors[f"ragged.{name}.offsets"] = offsets.contiguous()
    tensors["positions"] = torch.from_numpy(table.positions.copy())
    checksums = {name: _tensor_sha256(tensor) for name, tensor in tensors.items()}
    meta_tmp = directory / f"meta.json.tmp{os.getpid()}"
    meta_tmp.write_text(json.dumps({**material, "skipped": table.skipped}, indent=1))
    os.replace(meta_tmp, directory / "meta.json")
    tmp = directory / f"features.safetensors.tmp{os.getpid()}"
    save_file(tensors, str(tmp), metadata={_CHECKSUMS: json.dumps(checksums, sort_keys=True)})
    os.replace(tmp, directory / "features.safetensors")


def _read_checked(directory: Path) -> Optional[FeatureTable]:
    """The entry in ``directory`` when present and sound; None when absent or damaged (moved aside, WARNING)."""
    if not (directory / "features.safetensors").is_file():
        return None
    try:
        return _read(directory)
    except CorruptCacheError as exc:
        damaged = exc.path or directory / "features.safetensors"
        if damaged.is_file():
            quarantine(damaged, str(exc), log)
        return None


def _read(directory: Path) -> FeatureTable:
    """The entry's table, every tensor checked against its stored sha256; CorruptCacheError naming the file."""
    path, meta_path = directory / "features.safetensors", directory / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        skipped = list(meta.get("skipped", []))
    except (*READ_ERRORS, AttributeError) as exc:
        raise CorruptCacheError(f"frozen feature cache file {meta_path} is unreadable: {type(exc).__name__}: {exc}",
                                meta_path) from exc
    try:
        with safe_open(str(path), framework="pt") as handle:
            checksums = json.loads((handle.metadata() or {}).get(_CHECKSUMS, "{}"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for damaged files
        raise CorruptCacheError(f"frozen feature cache file {path} is unreadable: {type(exc).__name__}: {exc}",
                                path) from exc
    bad = sorted(name for name in set(tensors) | set(checksums)
                 if name not in tensors or _tensor_sha256(tensors[name]) != checksums.get(name))
    if bad or "positions" not in tensors:
        raise CorruptCacheError(f"frozen feature cache file {path}: tensors {bad or ['positions']} do not match "
                                f"their sha256 checksums", path)
    dense = {k[len("dense."):]: v for k, v in tensors.items() if k.startswith("dense.")}
    names = {k[len("ragged."):].rsplit(".", 1)[0] for k in tensors if k.startswith("ragged.")}
    ragged = {n: (tensors[f"ragged.{n}.values"], tensors[f"ragged.{n}.offsets"]) for n in names}
    return FeatureTable(dense, ragged, tensors["positions"].numpy(), skipped)
