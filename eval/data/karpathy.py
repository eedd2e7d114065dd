"""Karpathy split JSON (``dataset_flickr30k.json``, ``dataset_coco.json``, ``dataset_flickr8k.json``).

Format: ``{"images": [{"filename", "filepath" (COCO only), "split" ("train"/"val"/"test"/"restval"),
"sentences": [{"raw", "sentid", ...}], "imgid", ...}], ...}``; images live under the configured root
at ``<filepath>/<filename>`` (or ``<filename>``). Image id = that relative path; caption id = the
``sentid`` (``<image id>#<k>`` when absent). ``split`` may join names with ``+``
(``train+restval`` is the usual COCO training set).
A file that is not UTF-8: under ``error`` the message names the line; under ``skip`` the images and
sentences whose strings hold the undecodable bytes are skipped and recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.data.assemble import AssembleOptions, SourceCaption, SourceImage, assemble
from eval.data.bad_input import BadInputLog
from eval.data.benchmark import BadInputError, Benchmark
from eval.data.dataset_config import DatasetConfig

ENTRY_KEYS = ("filename", "split", "sentences")


def _undecodable(value: Any) -> bool:
    """True when a string read with ``surrogateescape`` holds bytes that were not UTF-8."""
    return isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value)


def read_karpathy_json(path: Path, policy: str) -> list[Any]:
    """The ``images`` list; file-level problems raise BadInputError naming the file (and line)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise BadInputError(f"annotation file not found: {path}") from exc
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


def _entry_sources(entry: dict, k: int, path: Path,
                   bad: BadInputLog) -> tuple[SourceImage, list[SourceCaption]] | None:
    where = f"{path}:images[{k}]"
    ref = f"{entry['filepath']}/{entry['filename']}" if entry.get("filepath") else str(entry["filename"])
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
        found_splits.add(str(entry["split"]))
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
