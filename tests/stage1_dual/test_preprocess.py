"""Seed-rule preprocessing geometry, and the choice between it and the model's own transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from stage1_dual.preprocess import SeedRuleTransform, build_image_transform, seed_rule_crop_box

IDENTITY_NORM = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


@pytest.mark.parametrize("size, box", [
    ((300, 100), (50, 0, 250, 100)),    # 3:1 landscape -> centre 2:1
    ((100, 300), (0, 50, 100, 250)),    # 1:3 portrait -> centre 1:2
    ((150, 100), (0, 0, 150, 100)),     # 1.5:1 kept whole (stretched later)
    ((200, 100), (0, 0, 200, 100)),     # exactly 2:1 kept whole
    ((64, 64), (0, 0, 64, 64)),
])
def test_crop_box(size, box):
    assert seed_rule_crop_box(*size) == box


def _bands(width: int, height: int, edges: list[int], colours: list[tuple[int, int, int]]) -> Image.Image:
    array = np.zeros((height, width, 3), np.uint8)
    for (lo, hi), colour in zip(zip([0, *edges], [*edges, width]), colours):
        array[:, lo:hi] = colour
    return Image.fromarray(array)


def test_three_to_one_is_cropped_to_two_to_one_then_square():
    # red | green | blue with the green band exactly the central 2:1 part
    image = _bands(300, 100, [50, 250], [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    out = SeedRuleTransform((32, 32), **IDENTITY_NORM)(image)
    assert out.shape == (3, 32, 32)
    assert torch.allclose(out[1], torch.ones(32, 32), atol=1e-3)            # all green
    assert out[0].abs().max() < 1e-3 and out[2].abs().max() < 1e-3          # no red or blue left


def test_under_two_to_one_is_stretched_not_cropped():
    # 150x100: red left 30 px (20 %), rest green; stretched, the left 20 % of the output stays red
    image = _bands(150, 100, [30], [(255, 0, 0), (0, 255, 0)])
    out = SeedRuleTransform((40, 40), **IDENTITY_NORM)(image)
    assert out.shape == (3, 40, 40)
    assert torch.all(out[0, :, :7] > 0.95) and torch.all(out[1, :, :7] < 0.05)
    assert torch.all(out[1, :, 10:] > 0.95)


def test_normalisation_uses_given_mean_and_std():
    image = Image.new("RGB", (50, 50), (255, 255, 255))
    out = SeedRuleTransform((8, 8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))(image)
    assert torch.allclose(out[:, 0, 0], torch.tensor([2.0, 1.0, 0.5]), atol=1e-3)


def test_modes_from_encoder(tiny_encoder):
    model_transform, model_text = build_image_transform(tiny_encoder, "model")
    seed_transform, seed_text = build_image_transform(tiny_encoder, "seed_rule")
    assert model_text != seed_text and '"seed_rule"' in seed_text
    # 150x100, red left 20 %: open_clip centre-crops the middle 100 px (5 % red left), the seed rule
    # stretches the whole image (20 % red left); both normalise with the model's mean/std
    image = _bands(150, 100, [30], [(255, 0, 0), (0, 255, 0)])
    red_fraction = {}
    for name, transform in (("model", model_transform), ("seed_rule", seed_transform)):
        out = transform(image)
        assert out.shape == (3, 32, 32)
        red_fraction[name] = float((out[0, 16] > out[1, 16]).float().mean())
    assert red_fraction["model"] < 0.1 and 0.15 < red_fraction["seed_rule"] < 0.25
    with pytest.raises(ValueError, match="known: blip_image_eval, model, seed_rule"):
        build_image_transform(tiny_encoder, "letterbox")


def test_blip_image_eval_mode_is_lavis_transform_at_the_models_size(tiny_encoder):
    from rrbench_base.blip_image_eval import BlipImageEval

    transform, text = build_image_transform(tiny_encoder, "blip_image_eval")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 50, 3), dtype=np.uint8))
    size = tiny_encoder.image_size[0]
    np.testing.assert_array_equal(transform(image).numpy(), BlipImageEval(size).pixels(image))
    assert '"blip_image_eval"' in text and f'"size": {size}' in text
