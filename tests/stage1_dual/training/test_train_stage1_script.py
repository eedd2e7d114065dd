"""scripts/train_stage1.py end to end on a tiny synthetic benchmark: trains, selects, reports test metrics
through load_encoder + run_stage1, and does not retrain a finished run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import yaml

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "train_stage1.py"


def _script():
    spec = importlib.util.spec_from_file_location("train_stage1_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_train_stage1_script_on_tiny_synthetic(tmp_path: Path):
    config = {
        "dataset": {"format": "synthetic", "cache_dir": str(tmp_path / "data"),
                    "synthetic": {"num_train": 24, "num_val": 8, "num_test": 8, "image_size": 32}},
        "run_dir": str(tmp_path / "run"),
        "depth": 20,
        "training": {"model": {"image_tower": {"name": "small_cnn", "width": 4, "depth": 2, "output_dim": 16},
                               "text_tower": {"name": "word_transformer", "width": 16, "layers": 1, "heads": 2},
                               "embed_dim": 16},
                     "epochs": 2, "batch_size": 8, "device": "cpu", "warmup_steps": 1},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    script = _script()
    report = script.main([str(path), "training.captions_per_image=2"])
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())["test"]
    assert test["images"] == 8 and test["captions"] == 40
    assert {"t2i/R@1", "t2i/R@10", "i2t/R@1", "i2t/R@10", "rsum"} <= set(test["metrics"])
    assert report["steps"] == 2 * 3 and "rsum" in report["best_val"]
    again = script.main([str(path), "training.captions_per_image=2", "--skip-test"])
    assert again["steps"] == 6 and again["wall_seconds_this_call"] < report["wall_seconds_this_call"]
