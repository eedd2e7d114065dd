"""Stage 1 (blip2_itc) hands its ViT output to stage 2 (blip2_itm) only when both run the same vision tower, and
what it hands over is what stage 2's own provider computes."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from eval.runner.shared_vision import FeatureCacheSink, shared_vision_sink, sharing_problem
from rrbench_base.image_refs import as_image_refs
from stage1_dual.config import EncoderConfig, Stage1Config
from stage1_dual.encode import encode_images
from stage1_dual.encoders import load_encoder
from stage2_rerank.bench.random_checkpoint import save_random_checkpoint, tiny_blip2_itm_config
from stage2_rerank.config import RerankerConfig
from stage2_rerank.rerank import load_reranker
from tests.tiny_experiment import WORDS


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shared_vision") / "ckpt"
    save_random_checkpoint(directory, tiny_blip2_itm_config(image_size=32, vocab_size=256), WORDS, seed=2)
    return str(directory)


def _stage1(checkpoint, **encoder):
    return Stage1Config(encoder=EncoderConfig(**{"backend": "blip2_itc", "model": checkpoint, "device": "cpu",
                                                 "num_workers": 0, **encoder}))


@pytest.fixture(scope="module")
def reranker(checkpoint):
    with load_reranker(RerankerConfig(model=checkpoint, device="cpu")) as loaded:
        yield loaded


def test_same_checkpoint_dtype_and_device_share(checkpoint, reranker):
    stage1 = _stage1(checkpoint)
    sink, why_not = shared_vision_sink(stage1, load_encoder(stage1.encoder), reranker)
    assert isinstance(sink, FeatureCacheSink) and why_not == ""


@pytest.mark.parametrize("change, reason", [
    ({"precision": "fp64"}, "vision towers in torch.float64 (stage 1) and torch.float32"),
    ({"preprocess": "seed_rule"}, "stage 1 preprocess 'seed_rule'"),
    ({"preprocess": "blip_image_eval"}, "stage 1 preprocess 'blip_image_eval' and stage2.image_preprocessing "
                                        "'checkpoint' give different pixels"),
    ({"model": "other"}, "different checkpoints"),
])
def test_any_difference_in_the_vision_tower_prevents_sharing(checkpoint, reranker, change, reason):
    stage1 = _stage1(checkpoint, **{k: v for k, v in change.items() if k != "model"})
    encoder = load_encoder(stage1.encoder)
    if "model" in change:
        stage1 = dataclasses.replace(stage1, encoder=dataclasses.replace(stage1.encoder, model=change["model"]))
    assert reason in sharing_problem(stage1, encoder, reranker)
    assert shared_vision_sink(stage1, encoder, reranker)[0] is None
    assert sharing_problem(stage1, encoder, None) == "no stage 2"


def test_handed_over_features_are_stage2s_own(checkpoint, reranker):
    rng = np.random.default_rng(4)
    images = as_image_refs([Image.fromarray(rng.integers(0, 256, (28 + i, 36, 3), dtype=np.uint8))
                            for i in range(3)])
    stage1 = _stage1(checkpoint)
    sink, _ = shared_vision_sink(stage1, load_encoder(stage1.encoder), reranker)
    encode_images(load_encoder(stage1.encoder), images, batch_size=2, vision_sink=sink)
    assert sink.images == 3
    own = reranker.model.vision.encode([image.open() for image in images])
    for image, want in zip(images, own):
        got = reranker.features.get(image.fingerprint())
        assert got.dtype == want.dtype and got.shape == want.shape
        torch.testing.assert_close(got, want.cpu(), rtol=1e-5, atol=1e-5)


def test_blip_image_eval_in_both_stages_shares_the_same_pixels(checkpoint):
    """The paper protocol: LAVIS's blip_image_eval in both stages; the handed-over features are stage 2's own."""
    with load_reranker(RerankerConfig(model=checkpoint, device="cpu", image_preprocessing="blip_image_eval")) as rr:
        stage1 = _stage1(checkpoint, preprocess="blip_image_eval")
        encoder = load_encoder(stage1.encoder)
        sink, why_not = shared_vision_sink(stage1, encoder, rr)
        assert isinstance(sink, FeatureCacheSink) and why_not == ""
        rng = np.random.default_rng(5)
        images = as_image_refs([Image.fromarray(rng.integers(0, 256, (30, 44 + i, 3), dtype=np.uint8))
                                for i in range(2)])
        encode_images(encoder, images, batch_size=2, preprocess="blip_image_eval", vision_sink=sink)
        own = rr.model.vision.encode([image.open() for image in images])
        for image, want in zip(images, own):
            torch.testing.assert_close(rr.features.get(image.fingerprint()), want.cpu(), rtol=1e-5, atol=1e-5)
        assert "different pixels" in sharing_problem(_stage1(checkpoint), encoder, rr)
