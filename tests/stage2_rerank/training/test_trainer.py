"""ITM training: losses, resume = uninterrupted run, best-checkpoint selection, and reload through load_reranker."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from stage2_rerank.config import RerankerConfig
from stage2_rerank.pair_scoring import tokenize_captions
from stage2_rerank.rerank import load_reranker
from stage2_rerank.training.checkpoint import read_checkpoint_info
from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.training.losses import batch_losses, itc_loss
from stage2_rerank.training.trainable import ItmTrainingData, score_pairs_in_memory
from stage2_rerank.training.trainer import ItmTrainer
from stage2_rerank.vision.efficientnet import EfficientNetGridProvider
from tests.stage2_rerank.helpers import make_captions
from tests.stage2_rerank.training.helpers import tiny_conv_grid_trainable, tiny_feature_data, tiny_trainable


def _config(**overrides) -> ItmTrainerConfig:
    values = dict(epochs=2, batch_size=6, steps_per_epoch=2, learning_rate=1e-3, warmup_steps=1, progress=False, seed=5)
    values.update(overrides)
    return ItmTrainerConfig(**values)


def test_itc_loss_matches_a_hand_computed_multi_positive_value():
    similarity = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    positive = torch.tensor([[True, True, False], [True, True, False], [False, False, True]])

    def ce(row, targets):
        log_z = math.log(sum(math.exp(v) for v in row))
        return -sum(t * (v - log_z) for v, t in zip(row, targets))

    rows = similarity.tolist()
    cols = similarity.T.tolist()
    i2t = (ce(rows[0], [0.5, 0.5, 0]) + ce(rows[1], [0.5, 0.5, 0]) + ce(rows[2], [0, 0, 1])) / 3
    t2i = (ce(cols[0], [0.5, 0.5, 0]) + ce(cols[1], [0.5, 0.5, 0]) + ce(cols[2], [0, 0, 1])) / 3
    assert itc_loss(similarity, positive).item() == pytest.approx((i2t + t2i) / 2, rel=1e-6)


@pytest.mark.parametrize("negatives", ["itc", "stage1", "topk"])
def test_batch_losses_score_three_pairs_per_positive(negatives):
    from stage2_rerank.training.hard_negatives import TopKNegatives
    from stage2_rerank.training.losses import Stage1Embeddings

    trainable, processor = tiny_trainable()
    data = tiny_feature_data(processor)
    rng = np.random.default_rng(0)
    n_img, n_cap = len(data.image_inputs), len(data.caption_tokens)
    stage1 = Stage1Embeddings(rng.normal(size=(n_img, 8)), rng.normal(size=(n_cap, 8)))
    topk = TopKNegatives(data.caption_image.numpy(), np.tile(np.arange(n_img), (n_cap, 1)), np.zeros((n_cap, n_img)),
                         np.tile(np.arange(n_cap), (n_img, 1)), np.zeros((n_img, n_cap)))
    losses = batch_losses(trainable, data, torch.arange(6), itc_weight=0.5, negatives=negatives,
                          generator=torch.Generator().manual_seed(0), topk=topk, stage1=stage1)
    assert losses.itm.item() > 0 and losses.itc.item() > 0
    assert losses.loss.item() == pytest.approx(losses.itm.item() + 0.5 * losses.itc.item(), rel=1e-6)
    losses.loss.backward()
    assert trainable.model.itm_head.weight.grad.abs().sum() > 0
    assert trainable.temperature.grad is not None


def _run_log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_resume_takes_exactly_the_steps_of_an_uninterrupted_run(tmp_path):
    trainable, processor = tiny_trainable()
    ItmTrainer(trainable, processor, tiny_feature_data(processor), _config(), tmp_path / "straight").fit()
    straight = [r for r in _run_log(tmp_path / "straight") if r["event"] == "train"]

    first, processor = tiny_trainable()
    interrupted = ItmTrainer(first, processor, tiny_feature_data(processor), _config(max_steps=3),
                             tmp_path / "resumed")
    assert interrupted.fit().stopped_early  # stops mid-epoch 2
    second, processor = tiny_trainable()  # a fresh process: same init, then resume from last/
    result = ItmTrainer(second, processor, tiny_feature_data(processor), _config(), tmp_path / "resumed").fit()
    resumed = [r for r in _run_log(tmp_path / "resumed") if r["event"] == "train"]

    assert result.steps == 4 and len(straight) == 4 and [r["step"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(straight, resumed):
        assert (a["loss"], a["lr"], a["temperature"]) == (b["loss"], b["lr"], b["temperature"])
    for (name, p), q in zip(trainable.named_parameters(), second.parameters()):
        assert torch.equal(p, q), name
    assert len({r["loss"] for r in straight}) == 4  # the steps differ, so equality above means something


def test_best_checkpoint_follows_the_validation_metric(tmp_path):
    trainable, processor = tiny_trainable()
    scores = iter([3.0, 1.0])
    trainer = ItmTrainer(trainable, processor, tiny_feature_data(processor), _config(), tmp_path,
                         validate=lambda model: {"rsum": next(scores), "other": 0.0})
    result = trainer.fit()
    assert result.best_metrics == {"rsum": 3.0, "other": 0.0}
    assert read_checkpoint_info(result.best_dir)["step"] == 2
    assert read_checkpoint_info(result.last_dir)["step"] == 4
    val = [r for r in _run_log(tmp_path) if r["event"] == "val"]
    assert [(r["step"], r["best"]) for r in val] == [(2, True), (4, False)]


def test_unknown_selection_metric_is_an_error(tmp_path):
    trainable, processor = tiny_trainable()
    trainer = ItmTrainer(trainable, processor, tiny_feature_data(processor), _config(epochs=1), tmp_path,
                         validate=lambda model: {"t2i/R@1": 1.0})
    with pytest.raises(KeyError, match="rsum"):
        trainer.fit()


def _reload_and_compare(run_dir, trainable, data, images, captions):
    pairs = np.array([[i, c] for i in range(len(images)) for c in range(len(captions))])
    expected_logits, expected_itc = score_pairs_in_memory(trainable, data, pairs)
    with load_reranker(RerankerConfig(backend="blip2_itm", model=str(run_dir / "last"), device="cpu",
                                      pair_batch_size=5)) as reranker:
        scores = reranker.score_pairs(images, captions, pairs, progress=False)
    np.testing.assert_allclose(scores.itm_logits, expected_logits, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(scores.itc, expected_itc, atol=1e-5, rtol=1e-5)
    assert np.ptp(scores.itm_logits[:, 1]) > 1e-3  # the pairs really differ
    return reranker


def test_trained_efficientnet_checkpoint_reloads_through_load_reranker(tmp_path, tiny_images):
    trainable, processor = tiny_trainable()
    provider = EfficientNetGridProvider("lite0", processor.image_processor, torch.device("cpu"), torch.float32)
    with torch.inference_mode():
        features = provider.encode([image.open() for image in tiny_images])
    assert features.shape == (len(tiny_images), 4, 1280)  # 64 px -> 2 x 2 grid
    captions = make_captions(2 * len(tiny_images), seed=3)
    data = ItmTrainingData(features, tokenize_captions(processor.tokenizer, captions, 35),
                           np.repeat(np.arange(len(tiny_images)), 2), processor.tokenizer.pad_token_id)
    ItmTrainer(trainable, processor, data, _config(epochs=1, learning_rate=1e-2), tmp_path).fit()
    reranker = _reload_and_compare(tmp_path, trainable, data, tiny_images, captions)
    assert reranker.model.vision.identity.startswith("efficientnet_lite0|64px")  # provider named by the checkpoint


def test_trained_conv_grid_checkpoint_reloads_through_load_reranker(tmp_path, tiny_images):
    trainable, processor = tiny_conv_grid_trainable()
    pixels = processor.image_processor(images=[image.open() for image in tiny_images],
                                       return_tensors="pt")["pixel_values"]
    captions = make_captions(2 * len(tiny_images), seed=4)
    data = ItmTrainingData(pixels, tokenize_captions(processor.tokenizer, captions, 35),
                           np.repeat(np.arange(len(tiny_images)), 2), processor.tokenizer.pad_token_id)
    before = trainable.vision.project.weight.detach().clone()
    ItmTrainer(trainable, processor, data, _config(epochs=1, learning_rate=1e-2), tmp_path).fit()
    assert not torch.equal(before, trainable.vision.project.weight)  # the CNN trained jointly
    reranker = _reload_and_compare(tmp_path, trainable, data, tiny_images, captions)
    assert reranker.model.vision.identity.startswith("conv_grid|")


def test_itm_rows_restrict_itm_to_the_first_rows_and_keep_the_full_itc_batch():
    trainable, processor = tiny_trainable()
    trainable.eval()  # no dropout: both calls see the same model
    data = tiny_feature_data(processor)
    kwargs = dict(itc_weight=1.0, negatives="itc")
    full = batch_losses(trainable, data, torch.arange(6), generator=torch.Generator().manual_seed(0), **kwargs)
    part = batch_losses(trainable, data, torch.arange(6), generator=torch.Generator().manual_seed(0), itm_rows=2,
                        **kwargs)
    assert part.itc.item() == pytest.approx(full.itc.item(), rel=1e-6)
    assert part.itm_accuracy * 6 == pytest.approx(round(part.itm_accuracy * 6))  # 3 x 2 ITM pairs
    assert part.itm.item() != pytest.approx(full.itm.item(), rel=1e-6)
    with pytest.raises(ValueError, match="itm_batch_size"):
        ItmTrainerConfig(batch_size=4, itm_batch_size=5)


def test_bfloat16_steps_run_under_autocast_and_keep_fp32_weights(tmp_path):
    trainable, processor = tiny_trainable()
    trainer = ItmTrainer(trainable, processor, tiny_feature_data(processor), _config(compute_dtype="bfloat16"),
                         tmp_path)
    seen = []
    hook = trainable.model.itm_head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    before = trainable.model.itm_head.weight.detach().clone()
    record = trainer.train_step(torch.arange(6))
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}  # the matrix products ran in bf16 ...
    assert trainable.model.itm_head.weight.dtype == torch.float32  # ... the weights stay fp32 and were updated
    assert not torch.equal(before, trainable.model.itm_head.weight)
    assert math.isfinite(record["loss"])


def test_bfloat16_loss_is_close_to_the_fp32_loss_of_the_same_batch(tmp_path):
    trainable, processor = tiny_trainable()
    data = tiny_feature_data(processor)
    trainable.eval()  # no dropout: both precisions see the same network
    losses = {}
    for dtype in ("float32", "bfloat16"):
        trainer = ItmTrainer(trainable, processor, data, _config(compute_dtype=dtype), tmp_path / dtype)
        with torch.no_grad(), trainer.autocast():
            losses[dtype] = batch_losses(trainable, data, torch.arange(6), itc_weight=1.0, negatives="itc",
                                         generator=torch.Generator().manual_seed(0)).loss.float().item()
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.02)
    assert losses["bfloat16"] != losses["float32"]  # autocast was on: bf16 rounding changes the value a little


def test_compute_dtype_is_validated():
    with pytest.raises(ValueError, match="compute_dtype"):
        ItmTrainerConfig(compute_dtype="float16")


def _global_states():
    return torch.get_rng_state(), np.random.get_state()


def _same_global_states(a, b) -> bool:
    return torch.equal(a[0], b[0]) and a[1][0] == b[1][0] and np.array_equal(a[1][1], b[1][1]) and a[1][2:] == b[1][2:]


def test_training_leaves_the_callers_global_rng_alone_and_one_seed_gives_one_run(tmp_path):
    """Dropout is on (tiny Q-Former, 0.1): the trainer draws from its own copy of the global RNG."""
    runs = []
    for name in ("a", "b"):
        trainable, processor = tiny_trainable()
        data = tiny_feature_data(processor)
        torch.manual_seed(1234)
        np.random.seed(99)
        before = _global_states()
        result = ItmTrainer(trainable, processor, data, _config(), tmp_path / name).fit()
        assert _same_global_states(before, _global_states())
        runs.append(([r["loss"] for r in _run_log(tmp_path / name) if r["event"] == "train"], trainable, result))
    (losses_a, model_a, _), (losses_b, model_b, _) = runs
    assert losses_a == losses_b and len(set(losses_a)) == 4
    for (name, p), q in zip(model_a.named_parameters(), model_b.parameters()):
        assert torch.equal(p, q), name


def test_caller_draws_between_steps_do_not_shift_the_dropout_stream(tmp_path):
    losses = []
    for name, draw_between in (("quiet", False), ("noisy", True)):
        trainable, processor = tiny_trainable()
        trainer = ItmTrainer(trainable, processor, tiny_feature_data(processor), _config(), tmp_path / name)
        steps = []
        for _ in range(3):
            steps.append(trainer.train_step(torch.arange(6))["loss"])
            if draw_between:
                torch.rand(1000)
        losses.append(steps)
    assert losses[0] == losses[1]


def test_max_steps_stops_validates_and_a_larger_limit_continues_the_run(tmp_path):
    trainable, processor = tiny_trainable()
    data = tiny_feature_data(processor)
    first = ItmTrainer(trainable, processor, data, _config(max_steps=3), tmp_path).fit()
    assert first.stopped_early and first.steps == 3
    assert [r["step"] for r in _run_log(tmp_path) if r["event"] == "val"] == [2, 3]
    second = ItmTrainer(trainable, processor, data, _config(max_steps=10), tmp_path).fit()
    assert not second.stopped_early and second.steps == 4


def test_the_shipped_demo_checkpoint_written_with_the_former_trainer_names_still_loads():
    from pathlib import Path

    from stage2_rerank.training.checkpoint import load_itm_checkpoint

    demo = Path(__file__).resolve().parents[3] / "results" / "demo" / "models" / "stage2"
    trainer = read_checkpoint_info(demo)["trainer"]  # provenance as it was written: read, never parsed into a config
    assert trainer["lr"] == 0.003 and "learning_rate" not in trainer
    trainable, processor = load_itm_checkpoint(demo)
    assert trainable.vision is not None and processor.tokenizer is not None
