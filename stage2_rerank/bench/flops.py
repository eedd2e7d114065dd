"""FLOP counts of BLIP-2 ITM reranking from the model's config, and efficiency against a device's FLOP rate.

Counting rule: every matrix product of ``m x k`` by ``k x n`` costs ``2 m k n`` FLOPs (a multiply and an add);
elementwise work (layer norms, softmax, GELU, biases, residuals, embedding look-ups) is not counted. This is
the rule of ``torch.utils.flop_counter.FlopCounterMode`` (linear, bmm, attention, convolution), which the unit
test checks these formulas against on real forwards of a tiny config.

With ``d`` = Q-Former hidden size, ``f`` its feed-forward size, ``Q`` query tokens, ``L`` text tokens,
``T = Q + L``, ``N`` vision tokens, ``e`` vision width, ``C`` cross-attention layers (layer ``i`` has one when
``i % cross_attention_frequency == 0``) and ``E`` the ITC projection size:

- one Transformer encoder layer over ``T`` tokens (:func:`encoder_layer_flops`): Q, K, V and output
  projections ``8 T d^2``, attention scores and weighted values ``4 T^2 d``, feed-forward ``4 T d f``;
- ITM, one (image, caption) pair with the image's cross-attention K/V cached (:func:`qformer_itm_pair_flops`):
  every layer over ``T`` tokens (query and text tokens each have their own feed-forward, same sizes), plus in
  the ``C`` cross-attention layers the queries' projections ``4 Q d^2`` and attention over the image ``4 Q N d``,
  plus the ITM head ``4 Q d``;
- cross-attention K/V of one image (:func:`cross_attention_kv_flops`): ``C * 4 N e d`` (done once per image by
  the reranker; once per *pair* by the stock forward);
- vision tower per image (:func:`vision_tower_flops`): patch embedding ``2 (N - 1) 3 p^2 e`` plus every ViT layer
  over ``N`` tokens of width ``e``;
- ITC per image (:func:`qformer_itc_image_flops`): the Q-Former over the ``Q`` queries with cross-attention
  (K/V recomputed) and the projection ``2 Q d E``; per caption (:func:`qformer_itc_text_flops`): the layers over
  ``L`` text tokens without cross-attention and the projection of [CLS] ``2 d E``.

These are the FLOPs of the forwards as the architecture defines them (e.g. the text tokens' feed-forward of the
last layer is counted though only query outputs reach the ITM head); a floor in seconds is FLOPs / the device's
FLOP rate (:func:`matmul_flop_rate` measures a large matrix product; a data-sheet peak can be given instead).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig


def encoder_layer_flops(tokens: float, width: int, mlp: int) -> float:
    """FLOPs of one pre/post-norm Transformer encoder layer (self-attention + feed-forward) over ``tokens``."""
    return 8 * tokens * width**2 + 4 * tokens**2 * width + 4 * tokens * width * mlp


def vision_tokens(vision: Blip2VisionConfig) -> int:
    """Tokens of the ViT: ``(image_size / patch_size)^2`` patches + [CLS]."""
    return (vision.image_size // vision.patch_size) ** 2 + 1


def vision_tower_flops(vision: Blip2VisionConfig) -> float:
    """FLOPs of the vision tower's forward on one image (patch embedding + every layer)."""
    n, e = vision_tokens(vision), vision.hidden_size
    patch = 2 * (n - 1) * 3 * vision.patch_size**2 * e
    return patch + vision.num_hidden_layers * encoder_layer_flops(n, e, vision.intermediate_size)


def cross_attention_layers(qformer: Blip2QFormerConfig) -> int:
    """Number of Q-Former layers with cross-attention (``i % cross_attention_frequency == 0``)."""
    return sum(1 for i in range(qformer.num_hidden_layers) if i % qformer.cross_attention_frequency == 0)


def cross_attention_kv_flops(qformer: Blip2QFormerConfig, image_tokens: int) -> float:
    """FLOPs of one image's cross-attention keys and values in every cross-attention layer."""
    return cross_attention_layers(qformer) * 4 * image_tokens * qformer.encoder_hidden_size * qformer.hidden_size


def qformer_itm_pair_flops(qformer: Blip2QFormerConfig, query_tokens: int, text_tokens: float,
                           image_tokens: int) -> float:
    """FLOPs of the ITM forward of one pair, the image's cross-attention K/V given (see the module doc)."""
    d, q = qformer.hidden_size, query_tokens
    layers = qformer.num_hidden_layers * encoder_layer_flops(q + text_tokens, d, qformer.intermediate_size)
    cross = cross_attention_layers(qformer) * (4 * q * d**2 + 4 * q * image_tokens * d)
    head = 2 * q * d * 2
    return layers + cross + head


def qformer_itc_image_flops(qformer: Blip2QFormerConfig, query_tokens: int, image_tokens: int,
                            projection: int) -> float:
    """FLOPs of one image's ITC embedding: the Q-Former over its queries (K/V included) + projection."""
    d, q = qformer.hidden_size, query_tokens
    layers = qformer.num_hidden_layers * encoder_layer_flops(q, d, qformer.intermediate_size)
    cross = cross_attention_layers(qformer) * (4 * q * d**2 + 4 * q * image_tokens * d)
    return layers + cross + cross_attention_kv_flops(qformer, image_tokens) + 2 * q * d * projection


def qformer_itc_text_flops(qformer: Blip2QFormerConfig, text_tokens: float, projection: int) -> float:
    """FLOPs of one caption's ITC embedding: the Q-Former over its tokens (no cross-attention) + projection."""
    d = qformer.hidden_size
    layers = qformer.num_hidden_layers * encoder_layer_flops(text_tokens, d, qformer.intermediate_size)
    return layers + 2 * d * projection


@dataclass(frozen=True)
class RerankFlops:
    """Per-unit FLOPs of BLIP-2 ITM reranking for one config and mean caption length (tokens incl. [CLS]/[SEP])."""

    text_tokens: float
    vision_tokens: int
    vision_per_image: float
    kv_per_image: float
    itm_per_pair: float
    itc_per_image: float
    itc_per_caption: float

    @classmethod
    def of(cls, config: Blip2Config, text_tokens: float) -> "RerankFlops":
        n = vision_tokens(config.vision_config)
        qf, q, e = config.qformer_config, config.num_query_tokens, config.image_text_hidden_size
        return cls(text_tokens, n, vision_tower_flops(config.vision_config), cross_attention_kv_flops(qf, n),
                   qformer_itm_pair_flops(qf, q, text_tokens, n), qformer_itc_image_flops(qf, q, n, e),
                   qformer_itc_text_flops(qf, text_tokens, e))

    def stage2_qformer(self, pairs: int, images: int, captions: int) -> float:
        """Q-Former FLOPs of scoring ``pairs`` distinct pairs over ``images`` / ``captions`` (K/V once per image,
        ITC once per image and caption), as the reranker computes them."""
        return (pairs * self.itm_per_pair + images * (self.kv_per_image + self.itc_per_image)
                + captions * self.itc_per_caption)


def efficiency(flops: float, seconds: float, flop_rate: float) -> float | None:
    """Floor seconds (``flops / flop_rate``) over measured ``seconds``: 1.0 = at the rate, 0.5 = half of it."""
    if seconds <= 0 or flop_rate <= 0:
        return None
    return flops / flop_rate / seconds


def matmul_flop_rate(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 10) -> float:
    """FLOP/s of a ``size`` x ``size`` matrix product in ``dtype`` on ``device`` (after one untimed warm-up)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.matmul(a, b)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    _sync(device)
    return repeats * 2 * size**3 / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
