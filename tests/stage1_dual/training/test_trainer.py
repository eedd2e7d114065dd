"""The training loop on a toy dataset: outputs, exact resume, memory queue learning, bad-input policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stage1_dual.training.config import AugmentationConfig, HardNegativeConfig
from stage1_dual.training.data import TrainingSplit
from stage1_dual.training.trainer import train_dual_encoder
from tests.stage1_dual.trainable_helpers import tiny_model_config, tiny_train_config, toy_split


def _records(run_dir: Path, event: str) -> list[dict]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def test_training_writes_best_last_and_log_and_calls_the_scorer(tmp_path: Path):
    split = toy_split(tmp_path / "images")
    calls = []

    def scorer(images: np.ndarray, texts: np.ndarray, text_image: np.ndarray) -> dict[str, float]:
        calls.append((images.shape, texts.shape))
        assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
        return {"score": float(-len(calls))}  # first validation is the best

    result = train_dual_encoder(tiny_train_config(epochs=3, selection_metric="score"), split, split,
                                tmp_path / "run", scorer=scorer)
    assert calls == [((20, 16), (40, 16))] * 3
    assert result.best_metrics == {"score": -1.0} and result.steps == 3 * (20 // 8)
    best_info = json.loads((result.best_dir / "config.json").read_text())["info"]
    assert best_info["epoch"] == 0
    assert sorted(p.name for p in result.best_dir.iterdir()) == ["config.json", "model.safetensors"]
    assert {"training_state.safetensors", "training_state.json"} <= {p.name for p in result.last_dir.iterdir()}
    assert len(_records(tmp_path / "run", "train")) == result.steps
    assert [r["best"] for r in _records(tmp_path / "run", "val")] == [True, False, False]


def test_resume_replays_exactly_the_uninterrupted_run(tmp_path: Path):
    """Dropout, augmentation, memory queue and hard-negative batches all on: a run stopped mid-epoch and
    resumed ends with the same losses and weights as one that was never interrupted."""
    split = toy_split(tmp_path / "images")
    settings = dict(model=tiny_model_config(dropout=0.2), epochs=3, queue_size=12,
                    augmentation=AugmentationConfig(enabled=True, min_crop_scale=0.5, flip=True),
                    hard_negatives=HardNegativeConfig(enabled=True, fraction=0.5, top_k=3, start_epoch=1))
    full = train_dual_encoder(tiny_train_config(**settings), split, split, tmp_path / "full")
    first = train_dual_encoder(tiny_train_config(**settings, max_steps=4), split, split, tmp_path / "resumed")
    assert first.stopped_early and first.steps == 4
    second = train_dual_encoder(tiny_train_config(**settings), split, split, tmp_path / "resumed")
    assert second.steps == full.steps and not second.stopped_early
    losses = {r["step"]: r["loss"] for r in _records(tmp_path / "full", "train")}
    resumed = {r["step"]: r["loss"] for r in _records(tmp_path / "resumed", "train")}
    assert resumed == losses
    weights_full = load_file(str(full.last_dir / "model.safetensors"))
    weights_resumed = load_file(str(second.last_dir / "model.safetensors"))
    for name, value in weights_full.items():
        assert torch.equal(value, weights_resumed[name]), name


def test_memory_queue_training_lowers_the_loss_and_raises_recall(tmp_path: Path):
    split = toy_split(tmp_path / "images")  # 20 images, 40 captions: chance t2i R@5 = 25, i2t R@1 = 10
    cfg = tiny_train_config(epochs=30, queue_size=20, batch_size=10, learning_rate=1e-3, weight_decay=0.0,
                            validate_every_epochs=30)
    result = train_dual_encoder(cfg, split, split, tmp_path / "run")
    queue = load_file(str(result.last_dir / "training_state.safetensors"))
    assert queue["array/queue/images/embeddings"].shape == (20, 16) and queue["array/queue/texts/keys"].shape == (20,)
    losses = [r["loss"] for r in _records(tmp_path / "run", "train")]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0
    final = result.history[-1]
    assert final["t2i/R@5"] >= 60 and final["i2t/R@1"] >= 25


def test_unreadable_image_is_skipped_or_named(tmp_path: Path):
    split = toy_split(tmp_path / "images")
    broken = split.images[3].path
    broken.write_bytes(b"not a png")
    with pytest.raises(Exception, match=broken.stem):
        train_dual_encoder(tiny_train_config(epochs=1), split, None, tmp_path / "error")
    result = train_dual_encoder(tiny_train_config(epochs=1, on_bad_input="skip"), split, None, tmp_path / "skip")
    assert [s["id"] for s in result.skipped] == [broken.stem]
    assert _records(tmp_path / "skip", "skipped")[0]["items"][0]["id"] == broken.stem


def test_training_split_validates_positions(tmp_path: Path):
    split = toy_split(tmp_path / "images")
    with pytest.raises(ValueError, match="outside"):
        TrainingSplit(split.images, ["x"], np.array([len(split.images)]))
    subset = split.subset_images(np.array([2, 0]))
    assert [i.id for i in subset.images] == [split.images[2].id, split.images[0].id]
    assert subset.texts == split.texts[0:2] + split.texts[4:6]
    assert subset.text_image.tolist() == [1, 1, 0, 0]
    assert [list(t) for t in subset.image_texts] == [[2, 3], [0, 1]]


def test_training_leaves_the_callers_global_rng_alone_and_one_seed_gives_one_run(tmp_path: Path):
    """Dropout and augmentation on: initialisation and dropout draw from the trainer's own RNG copy."""
    split = toy_split(tmp_path / "images")
    settings = dict(model=tiny_model_config(dropout=0.2), epochs=2,
                    augmentation=AugmentationConfig(enabled=True, min_crop_scale=0.5, flip=True))
    losses = []
    for name in ("a", "b"):
        torch.manual_seed(4321)
        np.random.seed(7)
        torch_before, numpy_before = torch.get_rng_state(), np.random.get_state()
        train_dual_encoder(tiny_train_config(**settings), split, split, tmp_path / name)
        numpy_after = np.random.get_state()
        assert torch.equal(torch.get_rng_state(), torch_before)
        assert np.array_equal(numpy_after[1], numpy_before[1]) and numpy_after[2:] == numpy_before[2:]
        losses.append([r["loss"] for r in _records(tmp_path / name, "train")])
    assert losses[0] == losses[1] and len(set(losses[0])) == len(losses[0])
    weights = [load_file(str(tmp_path / name / "last" / "model.safetensors")) for name in ("a", "b")]
    assert all(torch.equal(value, weights[1][key]) for key, value in weights[0].items())


def test_a_stage1_training_state_of_the_older_layout_is_refused_by_name(tmp_path: Path):
    split = toy_split(tmp_path / "images")
    last = tmp_path / "run" / "last"
    last.mkdir(parents=True)
    for name in ("optimizer.safetensors", "trainer_state.json"):
        (last / name).write_text("{}")
    with pytest.raises(ValueError, match="older rrbench.*--no-resume"):
        train_dual_encoder(tiny_train_config(epochs=1), split, None, tmp_path / "run")
