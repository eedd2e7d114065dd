"""Stage-2 cache keys are content identities: what changes a score changes the key, what does not keeps it.

- a feature spill (``vision_memory_mb: 0``) is lossless, so sharing a cache with a default run changes nothing;
- a checkpoint copied elsewhere keeps its cache hits; other bytes under the same size and mtime miss;
- processor files (preprocessing) are part of the identity; ``SHA256SUMS`` is verified at load;
- rows of the previous score-cache format are never read."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from eval.experiment_config import load_experiment
from eval.runner.experiment import run_experiment
from stage2_rerank.caches.pair_scores import ScoreCache
from stage2_rerank.protocols import RerankerLoadError
from stage2_rerank.rerank import Reranker, load_reranker
from tests.stage2_rerank.helpers import make_captions
from tests.tiny_experiment import write_tiny_experiment

PAIRS = np.array([(i, c) for i in range(4) for c in range(5)])


def test_feature_spill_cannot_change_a_score_or_a_metric(tmp_path, monkeypatch):
    """Default and spilled configs share one cache dir in either order; each gives its fresh run's scores and
    metrics bit for bit."""
    config = write_tiny_experiment(tmp_path)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    score_pairs = Reranker.score_pairs

    def spy(self, *args, **kwargs):
        scores = score_pairs(self, *args, **kwargs)
        seen.append((scores.itm_logits.copy(), scores.itc.copy()))
        return scores

    monkeypatch.setattr(Reranker, "score_pairs", spy)
    variants = {"default": [], "spill": ["stage2.vision_memory_mb=0"]}

    def run(variant: str, cache: str) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
        overrides = variants[variant] + [f"cache_dir={tmp_path / cache}", f"output_dir={tmp_path / 'out'}"]
        results = json.loads(Path(run_experiment(load_experiment(config, overrides))).read_text())
        return results, seen[-1]

    fresh = {variant: run(variant, f"fresh_{variant}") for variant in variants}
    for first, second in (("default", "spill"), ("spill", "default")):
        shared = f"shared_{first}_first"
        for variant in (first, second):
            results, (logits, itc) = run(variant, shared)
            assert results["metrics"] == fresh[variant][0]["metrics"], (variant, shared)
            np.testing.assert_array_equal(logits, fresh[variant][1][0])
            np.testing.assert_array_equal(itc, fresh[variant][1][1])
        counts = results["counts"]["stage2"]
        assert counts["pairs_from_cache"] == counts["unique_keys"]  # same values, same key: shared


def _float_payload_offset(weights: Path) -> int:
    """Byte offset of the first element of a float32 tensor in a safetensors file."""
    raw = weights.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])
    name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    return 8 + header_len + header[name]["data_offsets"][0]


def test_checkpoint_copy_hits_and_same_mtime_rewrite_misses(tiny_config, tiny_checkpoint, tiny_images, tmp_path):
    captions = make_captions(5, seed=4)
    cache = tmp_path / "cache"
    with load_reranker(tiny_config(cache_dir=cache)) as reranker:
        first = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    copy = tmp_path / "elsewhere" / "checkpoint"
    shutil.copytree(tiny_checkpoint, copy)
    with load_reranker(tiny_config(model=str(copy), cache_dir=cache)) as reranker:
        copied = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    assert copied.stats.cache_hits == len(PAIRS) and copied.stats.scored == 0
    np.testing.assert_array_equal(copied.itm_logits, first.itm_logits)

    weights = copy / "model.safetensors"
    before = weights.stat()
    raw = bytearray(weights.read_bytes())
    raw[_float_payload_offset(weights)] ^= 0x01  # lowest mantissa bit of one weight
    weights.write_bytes(bytes(raw))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = weights.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with load_reranker(tiny_config(model=str(copy), cache_dir=cache)) as reranker:
        rewritten = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    assert rewritten.stats.cache_hits == 0 and rewritten.stats.scored == len(PAIRS)


def test_processor_settings_are_part_of_the_key(tiny_config, tiny_checkpoint, tiny_images, tmp_path):
    captions = make_captions(5, seed=4)
    cache = tmp_path / "cache"
    copy = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, copy)
    with load_reranker(tiny_config(model=str(copy), cache_dir=cache)) as reranker:
        reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    processor_file = next(p for p in copy.glob("*.json") if "image_mean" in p.read_text())
    settings = json.loads(processor_file.read_text())
    section = settings.get("image_processor", settings)
    section["image_mean"] = [0.5, 0.5, 0.5]  # other preprocessing in place; weights and config.json untouched
    processor_file.write_text(json.dumps(settings, indent=2))
    with load_reranker(tiny_config(model=str(copy), cache_dir=cache)) as reranker:
        scores = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    assert scores.stats.cache_hits == 0 and scores.stats.images_encoded == 4
    assert scores.stats.scored == len(PAIRS)


def _write_sums(directory: Path) -> None:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}"
             for p in sorted(directory.iterdir()) if p.is_file()]
    (directory / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_sha256sums_is_verified_at_load(tiny_config, tiny_checkpoint, tmp_path):
    good = tmp_path / "good"
    shutil.copytree(tiny_checkpoint, good)
    _write_sums(good)
    with load_reranker(tiny_config(model=str(good))) as reranker:
        assert reranker.model.checkpoint_identity.startswith("sha256:")
        assert str(good) not in reranker.model.checkpoint_identity  # content, not path

    damaged = tmp_path / "damaged"
    shutil.copytree(good, damaged)
    weights = damaged / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[_float_payload_offset(weights)] ^= 0x01
    weights.write_bytes(bytes(raw))
    with pytest.raises(RerankerLoadError, match="model.safetensors"):
        load_reranker(tiny_config(model=str(damaged)))

    missing = tmp_path / "missing"
    shutil.copytree(good, missing)
    (missing / "tokenizer.json").unlink()
    with pytest.raises(RerankerLoadError, match="tokenizer.json"):
        load_reranker(tiny_config(model=str(missing)))

    malformed = tmp_path / "malformed"
    shutil.copytree(good, malformed)
    (malformed / "SHA256SUMS").write_text("not a checksum line\n")
    with pytest.raises(RerankerLoadError, match="SHA256SUMS"):
        load_reranker(tiny_config(model=str(malformed)))


def test_score_rows_of_the_old_format_are_not_read(tmp_path):
    path = tmp_path / "scores.sqlite"
    old = sqlite3.connect(path)  # the a92d045 layout: table "scores", sha1 keys, no checksum
    old.execute("CREATE TABLE scores (key BLOB PRIMARY KEY, itm_no REAL NOT NULL, itm_match REAL NOT NULL, "
                "itc REAL NOT NULL) WITHOUT ROWID")
    key = hashlib.sha1(b"model\x00qformer=fp32\x00" + b"fp1" + b"\x00" + b"a cat").digest()
    with old:
        old.execute("INSERT INTO scores VALUES (?, ?, ?, ?)", (key, 0.1, 0.2, 0.3))
    old.close()
    cache = ScoreCache(path, "model", "qformer=fp32")
    assert not cache.get_many([("fp1", "a cat")])[0].any()
    cache.close()


def test_score_row_checksum_unit(tmp_path, caplog):
    cache = ScoreCache(tmp_path / "s.sqlite", "model", "qformer=fp32")
    keys = [("fp1", "a cat"), ("fp2", "a dog")]
    logits, itc = np.array([[0.1, 0.2], [0.3, 0.4]], np.float32), np.array([0.5, 0.6], np.float32)
    cache.put_many(keys, logits, itc)
    cache.close()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    table = next(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    with db:
        db.execute(f"UPDATE {table} SET itc = 0.75 WHERE itc = ?", (float(np.float32(0.6)),))
    db.close()
    cache = ScoreCache(tmp_path / "s.sqlite", "model", "qformer=fp32")
    found, _, read_itc = cache.get_many(keys)
    assert found.tolist() == [True, False] and read_itc[0] == np.float32(0.5)
    assert str(tmp_path / "s.sqlite") in caplog.text
    cache.put_many(keys[1:], logits[1:], itc[1:])  # the recomputed value overwrites the bad row
    found, got_logits, read_itc = cache.get_many(keys)
    assert found.all() and read_itc[1] == np.float32(0.6) and got_logits[1].tolist() == logits[1].tolist()
    cache.close()
