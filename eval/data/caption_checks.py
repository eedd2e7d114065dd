"""Captions that an experiment's caption preprocessing would leave empty, judged by the dataset's bad-input policy.

The stages apply their own ``caption_preprocessing`` (``rrbench_base.caption_preprocessing``) and refuse a
caption it empties, knowing only its position. The runner calls :func:`drop_captions_empty_after` on the
benchmark first, so such a caption is treated like every other bad dataset item (``eval.data.assemble``):
``error`` stops with one message naming the caption id; ``skip`` drops it (reason ``empty after caption
preprocessing``) and then every image it leaves without a caption (``no captions``), each recorded in
``Benchmark.skipped``. With only ``none`` the benchmark is returned unchanged.
"""

from __future__ import annotations

from typing import Sequence

from eval.data.bad_input import BadInputLog
from eval.data.benchmark import Benchmark, OnBadInput
from rrbench_base.caption_preprocessing import CaptionPreprocessing

EMPTY_AFTER_PREPROCESSING = "empty after caption preprocessing"
"""Skip-reason category of a caption that caption preprocessing leaves empty."""


def _emptied_by(text: str, preprocessings: Sequence[CaptionPreprocessing]) -> CaptionPreprocessing | None:
    for preprocessing in preprocessings:
        if preprocessing.changes_text and not preprocessing.apply(text).strip():
            return preprocessing
    return None


def drop_captions_empty_after(bench: Benchmark, preprocessings: Sequence[CaptionPreprocessing],
                              policy: OnBadInput) -> Benchmark:
    """``bench`` without the captions any of ``preprocessings`` leaves empty (see the module doc).

    Returns ``bench`` itself when no caption is affected."""
    bad = BadInputLog(policy)
    kept = []
    for caption in bench.captions:
        culprit = _emptied_by(caption.text, preprocessings)
        if culprit is None:
            kept.append(caption)
        else:
            bad.bad("caption", caption.id, bench.name,
                    f"{EMPTY_AFTER_PREPROCESSING}: {culprit.identity()} turns {caption.text!r} into an empty caption")
    if not bad.records:
        return bench
    described, had_captions = {c.image_id for c in kept}, {c.image_id for c in bench.captions}
    images = []
    for image in bench.images:
        if image.id in described or image.id not in had_captions:  # a gallery-only image stays one
            images.append(image)
        else:
            bad.bad("image", image.id, bench.name, "no captions: every caption of this image was skipped")
    bad.report()
    kept_ids = {image.id for image in images}
    return Benchmark(bench.name, bench.split, images, kept, [*bench.skipped, *bad.records],
                     [n for n in bench.notes if n.item in kept_ids])
