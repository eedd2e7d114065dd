"""Competition task files from held-out training pairs, for validating ``rrbench compete`` with an answer key.

:func:`make_holdout` splits the images of a training file ``ImageWordData.csv`` (``image_id,caption``)
deterministically (a permutation seeded with ``seed``) into train and held-out images, and writes into
``out_dir``:

- ``ImageWordData.csv``: the training pairs (all rows of the train images);
- ``word_test.csv`` / ``word_data.csv`` (``text_id,caption``): the held-out captions, as task 1 queries
  (file order) and as the task 2 gallery (shuffled); text id = ``text_id_prefix`` + source row number;
- ``image_test.csv`` / ``image_data.csv`` (``image_id``): the held-out images, as task 2 queries (file
  order) and as the task 1 gallery (shuffled);
- ``ground_truth.csv`` (``text_id,image_id``): the held-out pairs.
Images are not copied: point ``files.images`` of the compete config at the source ``ImageData/``.
Rows are copied as read (missing image files are left for compete's ``on_bad_input`` to handle).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from eval.data.bad_input import BadInputLog
from eval.data.text_files import read_table


@dataclass(frozen=True)
class HoldoutSummary:
    """Sizes of what :func:`make_holdout` wrote."""

    train_images: int
    train_pairs: int
    held_out_images: int
    held_out_pairs: int


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def make_holdout(train_file: Path, out_dir: Path, held_out_fraction: float = 0.2, seed: int = 0,
                 text_id_prefix: str = "Word-") -> HoldoutSummary:
    """Write the train part and the four task files + answer key of the held-out part (see module doc)."""
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    rows = read_table(Path(train_file), ["image_id", "caption"], BadInputLog("error"), fmt="csv")
    images = list(dict.fromkeys(r.fields["image_id"] for r in rows))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    n_held = int(round(held_out_fraction * len(images)))
    if not 0 < n_held < len(images):
        raise ValueError(f"held_out_fraction {held_out_fraction} of {len(images)} images leaves an empty part")
    held = {images[i] for i in order[:n_held]}
    held_images = [i for i in images if i in held]
    held_rows = [r for r in rows if r.fields["image_id"] in held]
    train_rows = [r for r in rows if r.fields["image_id"] not in held]
    texts = [(f"{text_id_prefix}{r.index}", r.fields["caption"]) for r in held_rows]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(out_dir / "ImageWordData.csv", ["image_id", "caption"],
               [(r.fields["image_id"], r.fields["caption"]) for r in train_rows])
    _write_csv(out_dir / "word_test.csv", ["text_id", "caption"], texts)
    _write_csv(out_dir / "word_data.csv", ["text_id", "caption"], [texts[i] for i in rng.permutation(len(texts))])
    _write_csv(out_dir / "image_test.csv", ["image_id"], [(i,) for i in held_images])
    _write_csv(out_dir / "image_data.csv", ["image_id"],
               [(held_images[i],) for i in rng.permutation(len(held_images))])
    _write_csv(out_dir / "ground_truth.csv", ["text_id", "image_id"],
               [(text_id, r.fields["image_id"]) for (text_id, _), r in zip(texts, held_rows)])
    return HoldoutSummary(len(images) - n_held, len(train_rows), n_held, len(held_rows))
