"""One vision-tower pass per image for both stages, when stage 1 and stage 2 run the same BLIP-2 checkpoint.

Stage 1 ``blip2_itc`` runs the checkpoint's ViT to compute the ITC embeddings; stage 2 ``blip2_itm`` with its own
``blip2_vit`` provider needs that same ViT output for ITM. When the two can share it (:func:`sharing_problem`
returns None: same checkpoint name and revision, stage 1 on the model's own preprocessing, the tower on the same
device type in the same dtype), the runner hands stage 1 a :class:`FeatureCacheSink`: every batch of images stage 1
encodes puts each image's ViT output into stage 2's vision feature cache (``Reranker.features``) under the image's
fingerprint, the key stage 2 looks up, so stage 2 runs the tower on none of them. The features are what stage 2
would compute (same weights, processor, dtype and device type; only the batch composition differs, which reorders
float sums as stage 2's own batching does). Images whose stage-1 embeddings come from the embedding cache are not
encoded at stage 1; stage 2 then runs the tower for them itself, so each image's tower still runs at most once
per run (twice for none).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from stage1_dual.config import Stage1Config
from stage2_rerank.config import resolve_dtype
from stage2_rerank.rerank import Reranker
from stage2_rerank.vision.blip2_vit import Blip2VisionProvider

SHARING_BACKENDS = ("blip2_itc", "blip2_itm")
"""(stage-1 backend, stage-2 backend) that run the same BLIP-2 vision tower."""


class FeatureCacheSink:
    """A stage-1 vision sink that stores each image's ViT output in stage 2's vision feature cache.

    ``images``: how many images it stored (``put`` keeps an entry already present)."""

    def __init__(self, reranker: Reranker) -> None:
        self._features = reranker.features
        self._shape = tuple(reranker.model.vision.feature_shape)
        self.images = 0

    def __call__(self, images: Sequence[Any], features: torch.Tensor) -> None:
        if tuple(features.shape[1:]) != self._shape:
            raise RuntimeError(f"stage-1 vision features {tuple(features.shape[1:])} do not match stage 2's "
                               f"{self._shape}: the two stages do not run the same vision tower")
        for image, feats in zip(images, features):
            self._features.put(image.fingerprint(), feats)
        self.images += len(images)


SHARED_PREPROCESSING = {("model", "checkpoint"), ("blip_image_eval", "blip_image_eval")}
"""(stage1.encoder.preprocess, stage2.image_preprocessing) pairs that give the vision tower the same pixels."""


def sharing_problem(stage1: Stage1Config, encoder: Any, reranker: Optional[Reranker]) -> Optional[str]:
    """Why stage 1 (config and loaded ``encoder``) cannot hand its vision features to ``reranker``; None when it
    can (see module docstring)."""
    if reranker is None:
        return "no stage 2"
    if (stage1.encoder.backend, reranker.model.backend) != SHARING_BACKENDS:
        return f"backends {stage1.encoder.backend} / {reranker.model.backend} (sharing needs blip2_itc / blip2_itm)"
    if stage1.encoder.model != reranker.config.model or stage1.encoder.revision is not None:
        return (f"different checkpoints: stage 1 {stage1.encoder.model!r} (revision {stage1.encoder.revision}), "
                f"stage 2 {reranker.config.model!r}")
    if not isinstance(reranker.model.vision, Blip2VisionProvider):
        return "stage 2's vision provider is not the checkpoint's own ViT (blip2_vit)"
    pair = (stage1.encoder.preprocess, reranker.config.image_preprocessing)
    if pair not in SHARED_PREPROCESSING:
        return (f"stage 1 preprocess {pair[0]!r} and stage2.image_preprocessing {pair[1]!r} give different pixels "
                "(sharing needs model / checkpoint or blip_image_eval / blip_image_eval)")
    stage2_device = reranker.model.device
    if encoder.device.type != stage2_device.type:
        return f"vision towers on {encoder.device.type} (stage 1) and {stage2_device.type} (stage 2)"
    stage2_dtype = resolve_dtype(reranker.config.vision_precision, stage2_device, "vision_precision")
    if encoder.vision_dtype != stage2_dtype:
        return f"vision towers in {encoder.vision_dtype} (stage 1) and {stage2_dtype} (stage 2)"
    return None


def shared_vision_sink(stage1: Stage1Config, encoder: Any, reranker: Optional[Reranker]
                       ) -> tuple[Optional[FeatureCacheSink], str]:
    """``(sink, why not)``: a :class:`FeatureCacheSink` into ``reranker``'s feature cache and ``""`` when the two
    stages can share the vision tower, else ``(None, the reason)``."""
    problem = sharing_problem(stage1, encoder, reranker)
    if problem is not None or reranker is None:
        return None, problem or "no stage 2"
    return FeatureCacheSink(reranker), ""
