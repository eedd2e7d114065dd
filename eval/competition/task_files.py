"""Reading the competition's task files into query and gallery lists (with the bad-input policy).

- task 1 (text to image): ``word_test.csv`` (``text_id,caption``) = text queries,
  ``image_data.csv`` (``image_id``) = image gallery;
- task 2 (image to text): ``image_test.csv`` (``image_id``) = image queries,
  ``word_data.csv`` (``text_id,caption``) = text gallery;
- optional ``ground_truth.csv`` (``text_id,image_id``): the matching pairs.
Ids are kept verbatim (no stripping, any script). An image id is a file name inside the image folder.
Under ``on_bad_input`` a row with an empty id or caption, a repeated id, an image path that leaves the
image folder or a missing image file raises (``error``) or is left out and recorded (``skip``).
Undecodable images are found later, when stage 1 opens them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from eval.data.bad_input import BadInputLog, resolve_under
from eval.data.benchmark import BadInputError, ImageItem, SkipRecord
from eval.data.text_files import read_table
from eval.competition.config import CompetitionFiles
from rrbench_base.config_paths import path_note


@dataclass
class TextList:
    """Texts of one task file: ``ids`` (verbatim) and ``texts``, in file order."""

    ids: list[str]
    texts: list[str]


@dataclass
class CompetitionTasks:
    """Queries and galleries of both tasks, the optional answer key, and what was skipped.

    Attributes:
        text_queries: task 1 queries (word_test.csv).
        image_gallery: task 1 gallery (image_data.csv).
        image_queries: task 2 queries (image_test.csv).
        text_gallery: task 2 gallery (word_data.csv).
        ground_truth: text id -> set of matching image ids; None when there is no answer key.
        skipped: rows and images left out under ``on_bad_input: skip``.
    """

    text_queries: TextList
    image_gallery: list[ImageItem]
    image_queries: list[ImageItem]
    text_gallery: TextList
    ground_truth: Optional[dict[str, set[str]]] = None
    skipped: list[SkipRecord] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Sizes for the report."""
        return {"text_queries": len(self.text_queries.ids), "image_gallery": len(self.image_gallery),
                "image_queries": len(self.image_queries), "text_gallery": len(self.text_gallery.ids),
                "ground_truth_pairs": sum(len(v) for v in (self.ground_truth or {}).values()),
                "skipped": len(self.skipped)}


def read_text_list(path: Path, bad: BadInputLog) -> TextList:
    """``text_id,caption`` rows; empty ids/captions and repeated ids go through ``bad``."""
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for row in read_table(path, ["text_id", "caption"], bad, fmt="csv"):
        text_id, caption = row.fields["text_id"], row.fields["caption"]
        if not text_id.strip():
            bad.bad("caption", f"row {row.index}", row.where, "empty text_id")
        elif text_id in seen:
            bad.bad("caption", text_id, row.where, "duplicate caption id")
        elif not caption.strip():
            bad.bad("caption", text_id, row.where, "empty caption")
        else:
            ids.append(text_id)
            texts.append(caption)
            seen.add(text_id)
    return TextList(ids, texts)


def read_image_list(path: Path, image_dir: Path, bad: BadInputLog) -> list[ImageItem]:
    """``image_id`` rows as ImageItems under ``image_dir``; bad ids and missing files go through ``bad``."""
    items: list[ImageItem] = []
    seen: set[str] = set()
    for row in read_table(path, ["image_id"], bad, fmt="csv"):
        image_id = row.fields["image_id"]
        resolved = resolve_under(image_dir, image_id) if image_id.strip() else None
        if not image_id.strip():
            bad.bad("image", f"row {row.index}", row.where, "empty image_id")
        elif image_id in seen:
            bad.bad("image", image_id, row.where, "duplicate image id")
        elif resolved is None:
            bad.bad("image", image_id, row.where, f"path escapes the image folder {image_dir.absolute()}")
        elif not resolved.is_file():
            bad.bad("image", image_id, row.where, f"missing image file {resolved}")
        else:
            items.append(ImageItem(id=image_id, path=resolved))
            seen.add(image_id)
    return items


def read_ground_truth(path: Path, bad: BadInputLog) -> dict[str, set[str]]:
    """``text_id,image_id`` rows -> text id -> image ids."""
    truth: dict[str, set[str]] = {}
    for row in read_table(path, ["text_id", "image_id"], bad, fmt="csv"):
        text_id, image_id = row.fields["text_id"], row.fields["image_id"]
        if not text_id.strip() or not image_id.strip():
            bad.bad("caption", f"row {row.index}", row.where, "empty text_id or image_id in the answer key")
            continue
        truth.setdefault(text_id, set()).add(image_id)
    return truth


def read_tasks(data_dir: Path, files: CompetitionFiles, on_bad_input: str) -> CompetitionTasks:
    """The four task files (and the answer key when present) of ``data_dir`` (see the module doc)."""
    data_dir = Path(data_dir)
    image_dir = files.path(data_dir, "images")
    if not image_dir.is_dir():
        raise BadInputError(f"image folder not found: {image_dir} (set files.images; the files.* names resolve "
                            f"against the --data folder {data_dir}{path_note(data_dir)})")
    bad = BadInputLog(on_bad_input)  # type: ignore[arg-type]
    text_queries = read_text_list(files.path(data_dir, "text_queries"), bad)
    image_gallery = read_image_list(files.path(data_dir, "image_gallery"), image_dir, bad)
    image_queries = read_image_list(files.path(data_dir, "image_queries"), image_dir, bad)
    text_gallery = read_text_list(files.path(data_dir, "text_gallery"), bad)
    truth_path = files.path(data_dir, "ground_truth")
    truth = read_ground_truth(truth_path, bad) if truth_path.is_file() else None
    bad.report()
    return CompetitionTasks(text_queries, image_gallery, image_queries, text_gallery, truth, list(bad.records))
