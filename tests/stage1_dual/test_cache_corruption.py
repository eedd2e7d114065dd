"""Damaged stage-1 embedding shards written by a real run are detected, moved aside with a WARNING naming them,
and recomputed: the rerun's metrics equal the clean run's exactly, and the run after that is served from cache."""

from __future__ import annotations

import io
import json
import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eval.experiment_config import load_experiment
from eval.runner.experiment import run_experiment
from tests.tiny_experiment import write_tiny_experiment


def _run(root: Path) -> dict:
    results = json.loads(Path(run_experiment(load_experiment(write_tiny_experiment(root)))).read_text())
    return {"metrics": results["metrics"], "stage1": results["counts"]["stage1"]}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tiny_clean")
    return root, _run(root)


def _shard(root: Path, kind: str) -> Path:
    shards = sorted((root / "cache" / "stage1" / kind).rglob("shard_*.npz"))
    assert len(shards) == 1, shards
    return shards[0]


def _payload_span(path: Path, entry: str) -> tuple[int, int]:
    """Byte range of the array data of ``entry`` inside the (stored, uncompressed) npz."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(entry)
    assert info.compress_type == zipfile.ZIP_STORED
    name_len = int.from_bytes(data[info.header_offset + 26: info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28: info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    npy = data[start: start + info.file_size]
    header_len = int.from_bytes(npy[8:10], "little")  # .npy version 1.0 header
    return start + 10 + header_len, start + info.file_size


def flip_payload_bytes(path: Path) -> None:
    lo, hi = _payload_span(path, "embeddings.npy")
    data = bytearray(path.read_bytes())
    for offset in range(lo + (hi - lo) // 3, lo + (hi - lo) // 3 + 8):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def rewrite_with_stale_checksum(path: Path) -> None:
    """A valid npz (zip CRCs fine) whose embeddings were changed after the checksum was stored."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["embeddings"] = arrays["embeddings"].copy()
    arrays["embeddings"][0, 0] += 0.5
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def overwrite_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 64: middle + 64] = np.random.default_rng(0).integers(0, 256, 128, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("corrupt", [flip_payload_bytes, rewrite_with_stale_checksum, truncate, overwrite_middle],
                         ids=lambda corrupt: corrupt.__name__)
def test_damaged_shards_are_recomputed_with_a_warning(clean_run, tmp_path, caplog, corrupt):
    clean_root, clean = clean_run
    root = tmp_path / "copy"
    shutil.copytree(clean_root, root)
    shards = {kind: _shard(root, kind) for kind in ("images", "texts")}
    before = {kind: shard.read_bytes() for kind, shard in shards.items()}
    for shard in shards.values():
        corrupt(shard)
    damaged = {kind: shard.read_bytes() for kind, shard in shards.items()}
    assert all(damaged[kind] != before[kind] for kind in shards)

    with caplog.at_level(logging.WARNING):
        rerun = _run(root)
    assert rerun["metrics"] == clean["metrics"]
    for kind, shard in shards.items():
        named = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and str(shard) in r.getMessage()]
        assert len(named) == 1, [r.getMessage() for r in caplog.records]
        assert rerun["stage1"][kind]["encoded_items"] == clean["stage1"][kind]["encoded_items"] > 0
        assert shard.read_bytes() == before[kind]  # recomputed and saved again, identical
        moved = list(shard.parent.glob(shard.name + ".corrupt-*"))
        assert len(moved) == 1 and moved[0].read_bytes() == damaged[kind]  # the damaged file is kept, aside

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = _run(root)
    assert not [r for r in caplog.records if "stage1_dual" in r.name and r.levelno >= logging.WARNING]
    assert third["metrics"] == clean["metrics"]
    assert third["stage1"]["images"]["encoded_items"] == third["stage1"]["texts"]["encoded_items"] == 0
