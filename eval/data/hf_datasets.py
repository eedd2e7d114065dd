"""Hugging Face ``datasets``: a local ``save_to_disk`` directory or a hub name, with configurable columns.

Per row: ``image_column`` holds an image (a ``datasets.Image`` feature, read undecoded as
``{"bytes", "path"}``; a PIL image; or a path string relative to ``root``), ``caption_column`` a
string or a list of strings. Embedded images are written once into
``<cache_dir>/hf_images/<hash of the dataset name>/<content hash><suffix>`` so that every image of the
benchmark is a file (``ImageItem``). Ids: ``image_id_column`` or, by default, the image's path (a
path string, or the ``path`` of an embedded image) and else its content hash; ``caption_id_column``
(a value, or a list parallel to a caption list) or, by default, the row number (``<row>#<k>`` for
lists). ``hf_split`` picks the split of a DatasetDict; ``split_column`` + ``split`` filter rows.
A hub name needs network (or the local datasets cache); offline, :class:`HubUnavailableError` says so
and how to use a ``save_to_disk`` directory instead.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from eval.data.assemble import AssembleOptions, SourceCaption, SourceImage, assemble
from eval.data.bad_input import BadInputLog
from eval.data.benchmark import BadInputError, Benchmark
from eval.data.dataset_config import DatasetConfig
from eval.data.tabular import check_split_request
from eval.data.text_files import require_columns
from eval.typed_config import ConfigError
from rrbench_base.config_paths import path_note

BATCH_ROWS = 256


class HubUnavailableError(RuntimeError):
    """A hub dataset could not be fetched (no network); the message says how to load it locally."""


def open_hf_dataset(name_or_dir: str, hf_split: str | None) -> tuple[Any, str]:
    """``(datasets.Dataset, split name)`` from a save_to_disk directory or a hub name."""
    import datasets  # heavy import, only for this format

    if Path(name_or_dir).is_dir():
        loaded = datasets.load_from_disk(name_or_dir)
    else:
        try:
            loaded = datasets.load_dataset(name_or_dir, split=hf_split)
        except Exception as exc:  # offline, unknown repo, auth: all mean "not available here"
            raise HubUnavailableError(
                f"cannot load Hugging Face dataset {name_or_dir!r}: no such local directory{path_note(name_or_dir)}, "
                f"and not from the hub ({type(exc).__name__}: {exc}). "
                f"Without network, run datasets.load_dataset({name_or_dir!r}).save_to_disk(DIR) on a machine "
                "with access, copy DIR here and set hf_dataset to that local directory."
            ) from exc
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if hf_split is None and len(splits) == 1:
            hf_split = splits[0]
        if hf_split not in loaded:
            raise BadInputError(f"{name_or_dir}: hf_split {hf_split!r} not found (splits found: {', '.join(splits)})")
        return loaded[hf_split], hf_split
    return loaded, hf_split or "all"


class EmbeddedImageWriter:
    """Writes image bytes to ``directory/<sha1><suffix>`` once (atomically); returns the file name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, data: bytes, suffix: str) -> str:
        name = hashlib.sha1(data).hexdigest()[:20] + (suffix.lower() if len(suffix) <= 6 else ".img")
        target = self.directory / name
        if not (target.is_file() and target.stat().st_size == len(data)):
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        return name


def _image_bytes(value: Any) -> tuple[bytes | None, str]:
    """``(bytes, original path)`` of an embedded image value (PIL image or {bytes, path} dict)."""
    if isinstance(value, Image.Image):
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return buf.getvalue(), ""
    return value.get("bytes"), value.get("path") or ""


class _RowReader:
    """Turns dataset rows into source images and captions (see the module doc)."""

    def __init__(self, cfg: DatasetConfig, source: str, writer: EmbeddedImageWriter | None,
                 bad: BadInputLog) -> None:
        self.cfg, self.source, self.writer, self.bad = cfg, source, writer, bad
        self.images: dict[str, SourceImage] = {}
        self.content: dict[str, str] = {}  # image id -> file written for it
        self.captions: list[SourceCaption] = []

    def _path_image(self, value: Any, row_id: str, given_id: str | None, where: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.bad.bad("caption", row_id, where, f"unknown image: no path in {self.cfg.image_column!r}")
            return None
        image_id = given_id or os.path.normpath(value.strip())
        self.images.setdefault(image_id, SourceImage(image_id, value.strip(), where))
        return image_id

    def _embedded_image(self, value: Any, row_id: str, given_id: str | None, where: str) -> str | None:
        data, path = _image_bytes(value) if isinstance(value, (dict, Image.Image)) else (None, "")
        if not data:
            self.bad.bad("caption", row_id, where,
                         f"unknown image: no image bytes in {self.cfg.image_column!r} ({type(value).__name__})")
            return None
        image_id = given_id or path or hashlib.sha1(data).hexdigest()[:16]
        if self.cfg.limit is not None and image_id not in self.images and len(self.images) >= self.cfg.limit:
            self.images[image_id] = SourceImage(image_id, "", where)  # beyond the limit: not written
            return image_id
        file_name = self.writer.write(data, Path(path).suffix)  # type: ignore[union-attr]
        first = self.content.setdefault(image_id, file_name)
        if first != file_name:
            self.bad.bad("caption", row_id, where, f"duplicate image id: {image_id!r} names two different images")
            return None
        self.images.setdefault(image_id, SourceImage(image_id, file_name, where))
        return image_id

    def _image(self, value: Any, row_id: str, given_id: str | None, where: str) -> str | None:
        """Image id of a row (registering the image), or None after reporting a bad row."""
        if self.writer is None:
            return self._path_image(value, row_id, given_id, where)
        return self._embedded_image(value, row_id, given_id, where)

    def add_row(self, row: dict[str, Any], index: int) -> None:
        cfg = self.cfg
        where = f"{self.source} row {index}"
        raw_ids = row[cfg.caption_id_column] if cfg.caption_id_column else None
        row_id = str(raw_ids) if raw_ids is not None and not isinstance(raw_ids, list) else str(index)
        given_id = str(row[cfg.image_id_column]) if cfg.image_id_column else None
        image_id = self._image(row[cfg.image_column], row_id, given_id, where)
        if image_id is None:
            return
        texts = row[cfg.caption_column]
        if isinstance(texts, list):
            ids = [str(v) for v in raw_ids] if isinstance(raw_ids, list) and len(raw_ids) == len(texts) \
                else [f"{row_id}#{k}" for k in range(len(texts))]
            pairs = list(zip(ids, texts))
        else:
            pairs = [(row_id, texts)]
        for cap_id, text in pairs:
            if isinstance(text, str):
                self.captions.append(SourceCaption(cap_id, text, image_id, where))
            else:
                self.bad.bad("caption", cap_id, where, f"caption is not text: {text!r}")


def load_hf(cfg: DatasetConfig) -> Benchmark:
    """Benchmark from a Hugging Face dataset (``format: hf``), see the module doc."""
    import datasets

    name = str(cfg.hf_dataset)
    ds, hf_split = open_hf_dataset(name, cfg.hf_split)
    source = f"{name}[{hf_split}]"
    check_split_request(source, cfg.split, cfg.split_column)
    wanted = list(dict.fromkeys(c for c in (cfg.image_column, cfg.caption_column, cfg.image_id_column,
                                             cfg.caption_id_column, cfg.split_column) if c))
    require_columns(Path(source), ds.column_names, wanted)
    feature = ds.features[cfg.image_column]
    path_mode = isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")
    if isinstance(feature, datasets.Image):
        ds = ds.cast_column(cfg.image_column, datasets.Image(decode=False))
    if path_mode and cfg.root is None:
        raise ConfigError(f"{source}: key 'dataset.root': column {cfg.image_column!r} holds image paths; "
                          "set 'root' (dataset.root) to the folder they are relative to")
    key = str(Path(name).resolve()) if Path(name).is_dir() else name
    cache = cfg.cache_dir / "hf_images" / hashlib.sha1(key.encode()).hexdigest()[:16]
    bad = BadInputLog(cfg.on_bad_input)
    reader = _RowReader(cfg, source, None if path_mode else EmbeddedImageWriter(cache), bad)
    index = 0
    selected = 0
    for batch in ds.select_columns(wanted).iter(batch_size=BATCH_ROWS):
        for values in zip(*(batch[c] for c in wanted)):
            row = dict(zip(wanted, values))
            if cfg.split_column is None or cfg.split is None or row[cfg.split_column] == cfg.split:
                reader.add_row(row, index)  # index: row number in the whole dataset
                selected += 1
            index += 1
    if not selected and cfg.split_column and cfg.split is not None:
        raise BadInputError(f"{source}: no rows with {cfg.split_column}={cfg.split!r}")
    root = cfg.required_path("root") if path_mode else cache
    label = cfg.split if (cfg.split_column and cfg.split is not None) else hf_split
    opts = AssembleOptions(cfg.name or Path(name).name, label, root, cfg.language_or("en"), cfg.limit,
                           cfg.verify_images, cfg.cache_dir)
    return assemble(list(reader.images.values()), reader.captions, opts, bad)
