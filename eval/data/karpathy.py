"""Karpathy split JSON (``dataset_flickr30k.json``, ``dataset_coco.json``, ``dataset_flickr8k.json``).

Format: ``{"images": [{"filename", "filepath" (COCO only), "split" ("train"/"val"/"test"/"restval"),
"sentences": [{"raw", "sentid", ...}], "imgid", ...}], ...}``; images live under the configured root
at ``<filepath>/<filename>`` (or ``<filename>``). Image id = that relative path; caption id = the
``sentid`` (``<image id>#<k>`` when absent). ``split`` may join names with ``+``
(``train+restval`` is the usual COCO training set).
A file that is not UTF-8: under ``error`` the message names the line; under ``skip`` the images and
sentences whose strings hold the undecodable bytes are skipped and recorded. An entry whose fields have
the wrong JSON type (``"sentences": null``, a numeric ``filename``, a list as ``split``) is a bad image
naming ``images[k]`` and the field, like a missing field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.data.assemble import AssembleOptions, SourceCaption, SourceImage, assemble
from eval.data.bad_input import BadInputLog
from eval.data.benchmark import BadInputError, Benchmark
from eval.data.dataset_config import DatasetConfig
from rrbench_base.config_paths import path_note

ENTRY_KEYS = ("filename", "split", "sentences")


def _undecodable(value: Any) -> bool:
    """True when a string read with ``surrogateescape`` holds bytes that were not UTF-8."""
    return isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value)


def read_karpathy_json(path: Path, policy: str) -> list[Any]:
    """The ``images`` list; file-level problems raise BadInputError naming the file (and line)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise BadInputError(f"annotation file not found: {path}{path_note(path)}") from exc
    except IsADirectoryError as exc:
        raise BadInputError(f"{path}: is a directory; annotations must be a dataset_*.json file{path_note(path)}") from exc
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read annotation file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        if policy == "error":
            raise BadInputError(f"{path}:{line}: non-UTF-8 bytes {raw[exc.start:exc.start + 4]!r} "
                                "(set on_bad_input: skip to skip the entries holding them)") from exc
        text = raw.decode("utf-8", errors="surrogateescape")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise BadInputError(f"{path}: expected a JSON object with an 'images' list (Karpathy split format)")
    return data["images"]


def _json_type(value: Any) -> str:
    return "null" if value is None else {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def _field_type_problem(entry: dict) -> str | None:
    """Why an entry's fields cannot be read (wrong JSON types), or None."""
    expected = [("filename", str, "a non-empty string"), ("split", str, "a string"),
                ("sentences", list, "a list of sentences")]
    for key, tp, what in expected:
        value = entry[key]
        if not isinstance(value, tp) or (key == "filename" and not value.strip()):
            return f"field {key!r} is {_json_type(value)} {value!r}, expected {what}"[:300]
    filepath = entry.get("filepath")
    if filepath is not None and not isinstance(filepath, str):
        return f"field 'filepath' is {_json_type(filepath)} {filepath!r}, expected a string"[:300]
    return None


def _entry_sources(entry: dict, k: int, path: Path,
                   bad: BadInputLog) -> tuple[SourceImage, list[SourceCaption]] | None:
    where = f"{path}:images[{k}]"
    ref = f"{entry['filepath']}/{entry['filename']}" if entry.get("filepath") else entry["filename"]
    if _undecodable(ref):
        bad.bad("image", f"images[{k}]", where, "non-UTF-8 bytes in filename")
        return None
    captions = []
    for j, sentence in enumerate(entry["sentences"]):
        sentence = sentence if isinstance(sentence, dict) else {}
        cap_id = str(sentence.get("sentid", f"{ref}#{j}"))
        cap_where = f"{where}.sentences[{j}]"
        raw = sentence.get("raw")
        if not isinstance(raw, str):
            bad.bad("caption", cap_id, cap_where, f"missing field: 'raw' text (keys found: {', '.join(sentence) or 'none'})")
        elif _undecodable(raw):
            bad.bad("caption", cap_id, cap_where, "non-UTF-8 bytes in caption")
        else:
            captions.append(SourceCaption(cap_id, raw, ref, cap_where))
    return SourceImage(ref, ref, where), captions


def load_karpathy(cfg: DatasetConfig) -> Benchmark:
    """Benchmark of one split (or ``+``-joined splits) of a Karpathy JSON (``format: karpathy``)."""
    path = cfg.required_path("annotations")
    split = cfg.split_or("test")
    wanted = set(split.split("+"))
    bad = BadInputLog(cfg.on_bad_input)
    entries = read_karpathy_json(path, cfg.on_bad_input)
    images: list[SourceImage] = []
    captions: list[SourceCaption] = []
    first_listed: dict[str, str] = {}
    found_splits: set[str] = set()
    matched = 0
    for k, entry in enumerate(entries):
        missing = [key for key in ENTRY_KEYS if not isinstance(entry, dict) or key not in entry]
        if missing:
            keys = ", ".join(entry) if isinstance(entry, dict) else type(entry).__name__
            bad.bad("image", f"images[{k}]", path, f"missing field: {missing[0]!r} (keys found: {keys})")
            continue
        problem = _field_type_problem(entry)
        if problem:
            bad.bad("image", f"images[{k}]", f"{path}:images[{k}]", problem)
            continue
        found_splits.add(entry["split"])
        if entry["split"] not in wanted:
            continue
        matched += 1
        sources = _entry_sources(entry, k, path, bad)
        if sources is None:
            continue
        image, entry_captions = sources
        if image.id in first_listed:  # its sentences belong to the dropped entry, not the first one
            bad.bad("image", image.id, image.where, f"duplicate image id: first listed at {first_listed[image.id]}")
            for cap in entry_captions:
                bad.bad("caption", cap.id, cap.where, f"image skipped: image {image.id!r} (duplicate image id)")
            continue
        first_listed[image.id] = image.where
        images.append(image)
        captions.extend(entry_captions)
    if not matched:
        raise BadInputError(f"{path}: no images with split {split!r} (splits found: {', '.join(sorted(found_splits))})")
    root = cfg.required_path("root")
    name = cfg.name or path.stem.removeprefix("dataset_")
    opts = AssembleOptions(name, split, root, cfg.language_or("en"), cfg.limit, cfg.verify_images, cfg.cache_dir)
    return assemble(images, captions, opts, bad)
