"""Damaged stage-2 caches written by a real tiny run: detected, reported (WARNING naming the file), set aside or
ignored, recomputed; the metrics equal the clean run's, and a third run is served by the repaired cache.

One clean run (vision features spilled to disk: ``stage2.vision_memory_mb=0``) per module; each case copies its
cache directory, damages a real file in the copy and reruns the same experiment on it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import struct
from pathlib import Path

import pytest

from eval.experiment_config import load_experiment
from eval.runner.experiment import run_experiment
from stage2_rerank.caches.pair_scores import TABLE
from tests.tiny_experiment import write_tiny_experiment

SPILL = "stage2.vision_memory_mb=0"


def run(config: Path, cache: Path, out: Path) -> dict:
    """Run the tiny experiment with caches under ``cache`` and results under ``out``; results.json as a dict."""
    overrides = [SPILL, f"cache_dir={cache}", f"output_dir={out}"]
    return json.loads(Path(run_experiment(load_experiment(config, overrides))).read_text())


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """(config path, clean cache dir, results of the clean run with a fresh cache)."""
    root = tmp_path_factory.mktemp("tiny_recovery")
    config = write_tiny_experiment(root)
    results = run(config, root / "clean_cache", root / "clean_out")
    assert results["counts"]["stage2"]["pairs_scored"] > 0
    return config, root / "clean_cache", results


def copy_cache(clean, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(clean[1], cache)
    return cache


def spill_files(cache: Path) -> list[Path]:
    files = sorted((cache / "stage2" / "vision_features").rglob("*.safetensors"))
    assert len(files) == 12  # every test image spilled
    return files


def drop_scores(cache: Path) -> None:
    """Delete the score cache so that the next run scores every pair from the (spilled) features."""
    for path in (cache / "stage2").glob("scores.sqlite*"):
        path.unlink()


def warnings_naming(caplog, path: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.getMessage()]


def assert_repaired_and_served(config: Path, cache: Path, tmp_path: Path, clean_results: dict, caplog) -> dict:
    """A third run: the clean metrics, no warning, every pair from the score cache."""
    caplog.clear()
    third = run(config, cache, tmp_path / "out3")
    assert third["metrics"] == clean_results["metrics"]
    counts = third["counts"]["stage2"]
    assert counts["pairs_scored"] == 0 and counts["pairs_from_cache"] == counts["unique_keys"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "stage2_rerank" in r.name]
    return third


def test_flipped_score_values_are_detected_and_recomputed(clean, tmp_path, caplog):
    config, _, clean_results = clean
    cache = copy_cache(clean, tmp_path)
    db_path = cache / "stage2" / "scores.sqlite"
    db = sqlite3.connect(db_path)
    rows = db.execute(f"SELECT key, itm_match FROM {TABLE}").fetchall()
    assert len(rows) == clean_results["counts"]["stage2"]["unique_keys"]
    flipped = []
    for key, value in rows[::2]:  # flip the lowest exponent bit of every other match logit (x2 or x0.5)
        bits = struct.unpack("<Q", struct.pack("<d", value))[0] ^ (1 << 52)
        flipped.append((struct.unpack("<d", struct.pack("<Q", bits))[0], key))
    with db:
        db.executemany(f"UPDATE {TABLE} SET itm_match = ? WHERE key = ?", flipped)  # checksums left as they were
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # SQLite sees nothing wrong
    db.close()

    caplog.set_level(logging.WARNING)
    second = run(config, cache, tmp_path / "out2")
    assert second["metrics"] == clean_results["metrics"]
    assert len(warnings_naming(caplog, db_path)) == 1  # once per file, not once per row
    assert second["counts"]["stage2"]["pairs_scored"] == len(flipped)  # exactly the bad rows recomputed
    assert_repaired_and_served(config, cache, tmp_path, clean_results, caplog)


@pytest.mark.parametrize("damage", ["garbage_header", "truncated"])
def test_unreadable_score_database_is_moved_aside(clean, tmp_path, caplog, damage):
    config, _, clean_results = clean
    cache = copy_cache(clean, tmp_path)
    db_path = cache / "stage2" / "scores.sqlite"
    original = db_path.read_bytes()
    if damage == "garbage_header":
        with open(db_path, "r+b") as handle:
            handle.write(b"\xa5\x17garbage over the header" * 4)
    else:
        os.truncate(db_path, db_path.stat().st_size // 2)
    damaged = db_path.read_bytes()

    caplog.set_level(logging.WARNING)
    second = run(config, cache, tmp_path / "out2")
    assert second["metrics"] == clean_results["metrics"]
    assert warnings_naming(caplog, db_path)
    aside = list(db_path.parent.glob("scores.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged != original  # kept, not deleted
    assert second["counts"]["stage2"]["pairs_scored"] == second["counts"]["stage2"]["unique_keys"]
    assert second["counts"]["stage2"]["images_encoded"] == 0  # the intact spilled features were used
    assert_repaired_and_served(config, cache, tmp_path, clean_results, caplog)


def test_garbled_spill_payload_is_detected_and_recomputed(clean, tmp_path, caplog):
    config, _, clean_results = clean
    cache = copy_cache(clean, tmp_path)
    drop_scores(cache)  # score every pair again, from the spilled features
    garbled = spill_files(cache)[:3]
    for path in garbled:
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.seek(size // 2)
            handle.write(b"\x7b\xff" * 64)  # inside the tensor payload; the header still parses

    caplog.set_level(logging.WARNING)
    second = run(config, cache, tmp_path / "out2")
    assert second["metrics"] == clean_results["metrics"]
    for path in garbled:
        assert len(warnings_naming(caplog, path)) == 1
    assert second["counts"]["stage2"]["images_encoded"] == len(garbled)
    # nothing computed from a bad entry was kept: without the score cache, the repaired spills give the same
    caplog.clear()
    drop_scores(cache)
    third = run(config, cache, tmp_path / "out3")
    assert third["metrics"] == clean_results["metrics"]
    assert third["counts"]["stage2"]["images_encoded"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "stage2_rerank" in r.name]
    assert_repaired_and_served(config, cache, tmp_path, clean_results, caplog)


def test_truncated_spill_is_moved_aside_and_recomputed(clean, tmp_path, caplog):
    config, _, clean_results = clean
    cache = copy_cache(clean, tmp_path)
    drop_scores(cache)
    truncated = spill_files(cache)[-2:]
    for path in truncated:
        os.truncate(path, path.stat().st_size // 2)

    caplog.set_level(logging.WARNING)
    second = run(config, cache, tmp_path / "out2")
    assert second["metrics"] == clean_results["metrics"]
    for path in truncated:
        assert len(warnings_naming(caplog, path)) == 1
        assert len(list(path.parent.glob(path.name + ".corrupt-*"))) == 1  # set aside, not deleted
        assert path.exists()  # recomputed in its place
    assert second["counts"]["stage2"]["images_encoded"] == len(truncated)
    caplog.clear()
    drop_scores(cache)
    third = run(config, cache, tmp_path / "out3")
    assert third["metrics"] == clean_results["metrics"] and third["counts"]["stage2"]["images_encoded"] == 0
    assert_repaired_and_served(config, cache, tmp_path, clean_results, caplog)
