"""BLIP-2's image preprocessing against LAVIS's ``blip_image_eval`` (bicubic resize of the whole image to
size x size, no crop, ToTensor, OpenAI CLIP mean / std), at 364 px (``blip2-itm-vit-g-coco``) and 224 px.

The reference is torchvision's own ``Resize`` / ``ToTensor`` / ``Normalize`` on PIL images, as LAVIS builds it;
``Resize`` on a PIL image calls PIL's bicubic filter.

- ``image_preprocessing: blip_image_eval`` (``BlipImageEval``) equals it exactly (tolerance 0): the same PIL
  resize, then the same float32 division by 255, subtraction and division, each correctly rounded.
- The checkpoint's processor (transformers' ``BlipImageProcessor``, as ``random_checkpoint.build_processor``
  writes it) has the same settings. Its pixels: with a PIL backend (transformers 4) they match within 1e-5
  (its rescale and normalise run in another order); with the torchvision backend (transformers 5) it resizes
  8-bit tensors with torchvision's bicubic kernel, whose result is rounded back to 8 bits and differs from
  PIL's: on the photo-like test scenes by at most 10 levels of 255 at sharp edges and 0.05 levels on average
  (measured: 1-2 levels on smooth areas, 7-9 at ellipse edges; on random noise up to 20). The test pins that
  cause: the processor equals torchvision's v2 uint8 bicubic resize within 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from transformers import Blip2ForImageTextRetrieval

from rrbench_base.config_errors import ConfigFieldError
from stage2_rerank.bench.random_checkpoint import build_processor
from stage2_rerank.config import RerankerConfig
from stage2_rerank.protocols import RerankerLoadError
from stage2_rerank.rerank import load_reranker
from rrbench_base.blip_image_eval import BlipImageEval

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIZES = (224, 364)


def reference_blip_image_eval(size: int) -> transforms.Compose:
    return transforms.Compose([transforms.Resize((size, size), interpolation=InterpolationMode.BICUBIC),
                               transforms.ToTensor(), transforms.Normalize(CLIP_MEAN, CLIP_STD)])


def scene(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like non-square image: colour gradients and filled ellipses (smooth areas and sharp edges)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    gradients = np.stack([x / width, y / height, (x + y) / (width + height)], -1) * 255
    image = Image.fromarray(gradients.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        draw.ellipse([x0, y0, x0 + int(rng.integers(5, width // 2)), y0 + int(rng.integers(5, height // 2))],
                     fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def noise(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


SCENES = [scene(640, 427, 0), scene(300, 500, 1), scene(97, 211, 2), scene(400, 400, 3)]
IMAGES = SCENES + [noise(211, 97, 4), noise(333, 500, 5), noise(64, 64, 6), noise(500, 40, 7)]


@pytest.mark.parametrize("size", SIZES)
def test_blip_image_eval_option_equals_the_reference_exactly(size):
    ours = BlipImageEval(size)(IMAGES)["pixel_values"]
    reference = torch.stack([reference_blip_image_eval(size)(image) for image in IMAGES])
    assert ours.shape == (len(IMAGES), 3, size, size) and ours.dtype == torch.float32
    assert torch.equal(ours, reference)
    grey = IMAGES[0].convert("L")  # LAVIS datasets open images as RGB
    assert torch.equal(BlipImageEval(size)([grey])["pixel_values"][0],
                       reference_blip_image_eval(size)(grey.convert("RGB")))


@pytest.mark.parametrize("size", SIZES)
def test_checkpoint_processor_has_blip_image_eval_settings_and_near_pixels(size):
    processor = build_processor(size, ["a"]).image_processor
    settings = processor.to_dict()
    assert settings["size"] == {"height": size, "width": size} and settings["resample"] == Image.BICUBIC
    assert tuple(settings["image_mean"]) == CLIP_MEAN and tuple(settings["image_std"]) == CLIP_STD
    assert not settings.get("do_center_crop") and settings["do_resize"] and settings["do_normalize"]
    ours = processor(images=SCENES, return_tensors="pt")["pixel_values"]
    reference = torch.stack([reference_blip_image_eval(size)(image) for image in SCENES])
    levels = ((ours - reference) * torch.tensor(CLIP_STD)[:, None, None] * 255).abs()
    assert levels.max() <= 10 and levels.mean() <= 0.05


@pytest.mark.parametrize("size", SIZES)
def test_where_the_checkpoint_processor_differs_it_is_torchvisions_uint8_bicubic(size):
    processor = build_processor(size, ["a"]).image_processor
    ours = processor(images=IMAGES, return_tensors="pt")["pixel_values"]
    pil = torch.stack([reference_blip_image_eval(size)(image) for image in IMAGES])
    if torch.allclose(ours, pil, atol=1e-5, rtol=0):
        return  # a PIL-backed processor: no difference to explain
    from torchvision.transforms.v2 import functional as v2

    normalise = transforms.Normalize(CLIP_MEAN, CLIP_STD)
    resized = [v2.resize(v2.pil_to_tensor(image), [size, size], interpolation=InterpolationMode.BICUBIC,
                         antialias=True) for image in IMAGES]
    expected = torch.stack([normalise(r.float() / 255) for r in resized])
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_reranker_option_feeds_the_vision_tower_blip_image_eval_pixels(tiny_checkpoint, tiny_images):
    plain = load_reranker(RerankerConfig(model=str(tiny_checkpoint), device="cpu"))
    paper = load_reranker(RerankerConfig(model=str(tiny_checkpoint), device="cpu",
                                         image_preprocessing="blip_image_eval"))
    assert plain.feature_key != paper.feature_key and plain.model_key != paper.model_key
    images = [item.open() for item in tiny_images[:3]]
    vision = Blip2ForImageTextRetrieval.from_pretrained(tiny_checkpoint).eval().vision_model
    size = vision.config.image_size
    pixels = torch.stack([reference_blip_image_eval(size)(image) for image in images])
    with torch.inference_mode():
        expected = vision(pixel_values=pixels).last_hidden_state
        torch.testing.assert_close(paper.model.vision.encode(images), expected, atol=0, rtol=0)
    plain.close()
    paper.close()


def test_other_vision_providers_refuse_it(tiny_checkpoint):
    with pytest.raises(RerankerLoadError, match="blip_image_eval needs the blip2_vit vision provider"):
        load_reranker(RerankerConfig(model=str(tiny_checkpoint), device="cpu", vision_provider="conv_grid",
                                     image_preprocessing="blip_image_eval"))


def test_unknown_choice_is_refused_naming_the_field():
    with pytest.raises(ConfigFieldError) as info:
        RerankerConfig(image_preprocessing="clip")
    assert info.value.key == "image_preprocessing"
