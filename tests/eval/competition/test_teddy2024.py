"""``rrbench compete`` on the real competition sample (../shared/data/teddy2024), held-out pairs as the tasks.

Deterministic split (seed 0): 50 held-out images become the four task files + answer key; the training
file keeps its first 100 rows plus the rows of the sample's 2 missing images (so the bad-input policy
sees them). Stage 1 is the offline Chinese checkpoint fine-tuned for a few steps when it exists, else a
tiny model trained from scratch. Both result files are checked against the template; R@5 is reported.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from eval.cli import main as cli_main
from eval.competition.config import DEFAULT_STAGE1_MODEL
from eval.competition.holdout import make_holdout
from eval.competition.result_files import RESULT1_COLUMNS, RESULT2_COLUMNS, validate_result_file
from tests.eval.competition.helpers import tiny_finetune_overrides, write_csv

REPO = Path(__file__).resolve().parents[3]
TEDDY = REPO.parent / "shared" / "data" / "teddy2024"
TEDDY_MISSING = {"Image14001001-2540.jpg", "Image14001005-3174.jpg"}
CHECKPOINT = REPO / DEFAULT_STAGE1_MODEL

pytestmark = [pytest.mark.shared_data,
              pytest.mark.skipif(not TEDDY.is_dir(), reason="../shared/data/teddy2024 is absent")]


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))[1:]


def _trim_training_file(data: Path, keep: int) -> None:
    rows = _rows(data / "ImageWordData.csv")
    write_csv(data / "ImageWordData.csv", ["image_id", "caption"],
              [r for k, r in enumerate(rows) if k < keep or r[0] in TEDDY_MISSING])


def _overrides(tmp_path: Path) -> list[str]:
    if CHECKPOINT.is_dir():
        return ["finetune.enabled=true", f"stage1.encoder.model={CHECKPOINT}", "stage1.encoder.device=cpu",
                "finetune.training.epochs=3", "finetune.training.batch_size=32", "finetune.training.device=cpu",
                "finetune.training.feature_batch_size=32", f"cache_dir={tmp_path / 'cache'}"]
    return tiny_finetune_overrides(tmp_path / "cache", epochs=5) + ["finetune.training.model.image_tower.image_size=32"]


def test_compete_on_held_out_teddy2024_pairs(tmp_path, record_property):
    data, out = tmp_path / "data", tmp_path / "out"
    summary = make_holdout(TEDDY / "ImageWordData.csv", data, held_out_fraction=0.05, seed=0)
    assert (summary.held_out_images, summary.train_images) == (50, 950)
    _trim_training_file(data, keep=100)
    status = cli_main(["compete", "--data", str(data), "--out", str(out), f"files.images={TEDDY / 'ImageData'}",
                       "on_bad_input=skip", *_overrides(tmp_path)])
    assert status == 0
    report = json.loads((out / "compete.json").read_text(encoding="utf-8"))
    skipped = report["skipped"]["task_files"] + report["finetune"]["skipped"] + report["skipped"]["task1"] + \
        report["skipped"]["task2"]
    missing = {s["item"] for s in skipped if s.get("reason", "").startswith("missing image file")}
    assert missing == TEDDY_MISSING  # the sample's 2 missing files, wherever the split put them
    assert not [s for s in skipped if "decode" in s.get("reason", "")]  # GIF/PNG named .jpg decode fine
    texts = [r[0] for r in _rows(data / "word_test.csv")]
    held_images = [r[0] for r in _rows(data / "image_test.csv") if r[0] not in TEDDY_MISSING]
    s1 = validate_result_file(out / "result1.csv", RESULT1_COLUMNS, texts, held_images, 5)
    s2 = validate_result_file(out / "result2.csv", RESULT2_COLUMNS, held_images, texts, 5)
    assert (s1.queries, s2.queries) == (len(texts), len(held_images))
    r5 = {"task1 t2i R@5": report["task1"]["metrics"]["t2i/R@5"],
          "task2 i2t R@5": report["task2"]["metrics"]["i2t/R@5"]}
    for name, value in r5.items():
        record_property(name, value)
    print(f"teddy2024 held-out (50 images, gallery 50): {r5}, stage 1 {report['finetune']['init_from']}")
    if CHECKPOINT.is_dir():  # chance is 5 of 50 = 10%
        assert sum(r5.values()) > 2 * 10.0
