"""Caption tables (CSV, TSV, JSONL; one row per caption) with configurable columns.

Per row: the image path (``image_column``, relative to the image root), the caption
(``caption_column``), optionally an image id (``image_id_column``; default: the normalised image
path), a caption id (``caption_id_column``; default: the 0-based data row number) and a split
(``split_column``: only rows whose value equals the configured split are read).
Images are listed in order of first appearance. With an image id column, a row may leave the path
empty and refer to an image by id only (some other row must give its path: ``unknown image``
otherwise); a row giving a different path for an id already seen is a ``duplicate image id``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from eval.data.assemble import AssembleOptions, SourceCaption, SourceImage, assemble
from eval.data.bad_input import BadInputLog
from eval.data.benchmark import BadInputError, Benchmark
from eval.data.dataset_config import DatasetConfig
from eval.data.text_files import TableRow, read_table
from eval.typed_config import ConfigError

ALL_ROWS = "all"


@dataclass(frozen=True)
class TableColumns:
    """Column names of a caption table; ``None`` for optional columns that are absent."""

    image: str
    caption: str
    image_id: str | None = None
    caption_id: str | None = None
    split: str | None = None

    def required(self) -> list[str]:
        return [c for c in (self.image, self.caption, self.image_id, self.caption_id, self.split) if c]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def rows_of_split(path: Path | str, rows: list[TableRow], split_column: str | None,
                  split: str | None) -> list[TableRow]:
    """Rows whose ``split_column`` equals ``split`` (all rows without a split column or split).

    A split that matches no row is an error listing the values found.
    """
    if split_column is None or split is None:
        return rows
    selected = [r for r in rows if _text(r.fields[split_column]).strip() == split]
    if not selected:
        found = sorted({_text(r.fields[split_column]).strip() for r in rows})
        raise BadInputError(f"{path}: no rows with {split_column}={split!r} (values found: {', '.join(found)})")
    return selected


def rows_to_sources(rows: list[TableRow], columns: TableColumns,
                    bad: BadInputLog) -> tuple[list[SourceImage], list[SourceCaption]]:
    """Images (in order of first appearance) and captions of ``rows`` (see the module doc)."""
    images: dict[str, SourceImage] = {}
    captions: list[SourceCaption] = []
    for row in rows:
        fields = row.fields
        caption_id = _text(fields[columns.caption_id]).strip() if columns.caption_id else str(row.index)
        ref = _text(fields[columns.image]).strip()
        image_id = _text(fields[columns.image_id]).strip() if columns.image_id else posixpath.normpath(ref) if ref else ""
        caption = fields[columns.caption]
        if not isinstance(caption, str):
            bad.bad("caption", caption_id, row.where, f"caption is not text: {caption!r}")
            continue
        if not image_id:
            bad.bad("caption", caption_id, row.where, f"unknown image: empty {columns.image!r} field")
            continue
        first = images.get(image_id)
        if ref and first is not None and first.ref != ref:
            if not first.ref:  # an earlier row referred to this id without a path
                images[image_id] = SourceImage(image_id, ref, row.where)
            else:
                bad.bad("caption", caption_id, row.where,
                        f"duplicate image id: {image_id!r} is {first.ref!r} at {first.where}, here {ref!r}")
                continue
        elif first is None:
            images[image_id] = SourceImage(image_id, ref, row.where)
        captions.append(SourceCaption(caption_id, caption, image_id, row.where))
    known = [img for img in images.values() if img.ref]
    return known, captions


def check_split_request(source: Path | str, split: str | None, split_column: str | None) -> str:
    """Split label of a table load; a split other than 'all' needs a split column (ConfigError otherwise)."""
    if split_column is None and split not in (None, ALL_ROWS):
        raise ConfigError(f"{source}: key 'dataset.split': split {split!r} asked for but no split_column is set "
                          f"(leave split unset, or '{ALL_ROWS}', to read every row)")
    return split if split is not None else ALL_ROWS


def load_table_file(annotations: Path, image_root: Path, columns: TableColumns, cfg: DatasetConfig,
                    language: str, name: str) -> Benchmark:
    """Benchmark from one caption table; used by the table and competition formats."""
    label = check_split_request(annotations, cfg.split, columns.split)
    bad = BadInputLog(cfg.on_bad_input)
    rows = rows_of_split(annotations, read_table(annotations, columns.required(), bad), columns.split, cfg.split)
    images, captions = rows_to_sources(rows, columns, bad)
    opts = AssembleOptions(name, label, image_root, language, cfg.limit, cfg.verify_images, cfg.cache_dir)
    return assemble(images, captions, opts, bad)


def load_table(cfg: DatasetConfig) -> Benchmark:
    """Benchmark from a CSV/TSV/JSONL caption table (``format: table``)."""
    annotations = cfg.required_path("annotations")
    columns = TableColumns(cfg.image_column, cfg.caption_column, cfg.image_id_column,
                           cfg.caption_id_column, cfg.split_column)
    root = cfg.root if cfg.root is not None else annotations.parent
    return load_table_file(annotations, root, columns, cfg, cfg.language_or("en"), cfg.name or annotations.stem)
