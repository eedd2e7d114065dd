"""Ablation cells: final rankings of stage 1 and of every (rule, depth), their metrics, curves and run files.

A cell's ranking is derived from stage-1 candidates and cached stage-2 scores only (no model runs):
``stage2_rerank.fusion.rerank_at_depth`` reorders the first k candidates, the rest keep stage-1 order.
Metric keys: ``<setting key>/<direction>/<metric>`` and ``<setting key>/rsum``, where the setting key is
``stage1`` or ``stage2/<rule>/k=<k>`` (with ``@<variant>`` after ``stage1`` / ``stage2`` for stage-1
variants).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from eval.metrics import image_to_text_metrics, recall_curves, rsum, text_to_image_metrics
from eval.trec import file_sha256, write_qrels, write_run
from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion import rerank_at_depth
from stage2_rerank.types import CandidateScores

DIRECTIONS = ("t2i", "i2t")


@dataclass
class DirectionData:
    """One direction of one stage-1 setting.

    Attributes:
        ids: int64 ``[Q, N]`` stage-1 candidates (gallery positions, best first; -1 = none).
        scores: float32 ``[Q, N]`` stage-1 scores.
        query_positions: int64 ``[Q]`` positions of the query items (captions for t2i, images for i2t).
        relevant: t2i: int64 ``[Q]`` relevant image position; i2t: Q arrays of caption positions.
        query_ids: ids of the queries (caption ids for t2i, image ids for i2t), for run files.
        gallery_ids: ids of the gallery items (image ids for t2i, caption ids for i2t).
        stage2: stage-2 scores of the first ``kmax`` candidates (None without stage 2).
    """

    ids: np.ndarray
    scores: np.ndarray
    query_positions: np.ndarray
    relevant: np.ndarray | list[np.ndarray]
    query_ids: list[str]
    gallery_ids: list[str]
    stage2: Optional[CandidateScores] = None


def cell_metrics(ranked: dict[str, np.ndarray], data: dict[str, DirectionData]) -> dict[str, float]:
    """Metrics of both directions plus rsum for the rankings ``ranked[direction]`` (``[Q, N]``)."""
    out = text_to_image_metrics(ranked["t2i"], data["t2i"].relevant)
    out.update(image_to_text_metrics(ranked["i2t"], data["i2t"].relevant))
    out["rsum"] = rsum(out)
    return out


def cell_curves(ranked: dict[str, np.ndarray], data: dict[str, DirectionData]) -> dict[str, list[float]]:
    """``{"t2i": [R@1..R@N], "i2t": [...]}`` of the rankings."""
    return recall_curves(ranked["t2i"], data["t2i"].relevant, ranked["i2t"], data["i2t"].relevant)


def rerank_both(data: dict[str, DirectionData], fusion: FusionConfig, depth: int) -> dict[str, np.ndarray]:
    """Final ``[Q, N]`` rankings of both directions at rerank depth ``depth`` with rule ``fusion``."""
    out = {}
    for direction in DIRECTIONS:
        d = data[direction]
        if depth == 0 or d.stage2 is None:
            out[direction] = d.ids
        else:
            out[direction] = rerank_at_depth(d.ids, d.scores, d.stage2, depth, fusion)
    return out


def setting_key(stage: str, variant: str, rule: Optional[str] = None, depth: int = 0) -> str:
    """``stage1``, ``stage1@v``, ``stage2/itm/k=20`` or ``stage2@v/itm/k=20``."""
    head = stage if not variant else f"{stage}@{variant}"
    return head if rule is None else f"{head}/{rule}/k={depth}"


def run_file_name(key: str, direction: str) -> str:
    """File name of a cell's TREC run, e.g. ``stage2_itm+itc_k=20.t2i.trec.gz``."""
    return key.replace("/", "_").replace("@", "-") + f".{direction}.trec.gz"


def run_digest(ranked: np.ndarray, query_ids: Sequence[str], gallery_ids: Sequence[str], tag: str) -> str:
    """SHA-256 of everything a run file's content depends on (rankings, ids, tag)."""
    digest = hashlib.sha256(np.ascontiguousarray(ranked, dtype=np.int64).tobytes())
    for part in ("\x1f".join(query_ids), "\x1f".join(gallery_ids), tag):
        digest.update(b"\x1e" + part.encode("utf-8"))
    return digest.hexdigest()


def _stamp_text(content_digest: str, path: Path) -> str:
    return f"{content_digest} {file_sha256(path)}\n"


def _verified(path: Path, content_digest: str) -> bool:
    """True when ``path`` and its ``.sha256`` stamp exist, the stamp names ``content_digest`` and the file's
    bytes still hash to the value the stamp recorded (a truncated or replaced file fails)."""
    stamp = path.with_name(path.name + ".sha256")
    try:
        recorded = stamp.read_text(encoding="utf-8").split()
        return len(recorded) == 2 and recorded[0] == content_digest and recorded[1] == file_sha256(path)
    except OSError:
        return False


def _reuse(previous: Path, path: Path) -> None:
    """Hard-link (else copy) a verified run file and its stamp from a previous output directory."""
    for src, dst in ((previous, path), (previous.with_name(previous.name + ".sha256"),
                                        path.with_name(path.name + ".sha256"))):
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def write_cell_runs(out_dir: Path, key: str, ranked: dict[str, np.ndarray], data: dict[str, DirectionData],
                    reuse_dir: Optional[Path] = None) -> int:
    """TREC run files of both directions (scores = ``N + 1 - rank``, so tools re-sort to our order).

    Each file has a stamp ``<file>.sha256`` = ``<content digest> <sha256 of the file bytes>``: the content digest
    (``run_digest``) names the rankings the file should hold, the file hash vouches for the bytes on disk. A file
    whose stamp matches both (in ``out_dir``, or in ``reuse_dir``: the previous outputs, linked over) is not
    rewritten, so a rerun that reproduces a cell costs no run-file writing; a truncated, replaced or edited
    file is rewritten. Returns the number of files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for direction in DIRECTIONS:
        d = data[direction]
        name = run_file_name(key, direction)
        path = out_dir / name
        stamp = path.with_name(name + ".sha256")
        digest = run_digest(ranked[direction], d.query_ids, d.gallery_ids, key)
        if _verified(path, digest):
            continue
        if reuse_dir is not None and _verified(Path(reuse_dir) / name, digest):
            _reuse(Path(reuse_dir) / name, path)
            continue
        stamp.unlink(missing_ok=True)  # never a stale stamp beside a new file
        write_run(path, ranked[direction], d.query_ids, d.gallery_ids, scores=None, tag=key)
        stamp.write_text(_stamp_text(digest, path), encoding="utf-8")
        written += 1
    return written


def write_qrels_files(out_dir: Path, data: dict[str, DirectionData]) -> list[Path]:
    """Ground truth of both directions as qrels (``qid 0 docid 1``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for direction in DIRECTIONS:
        d = data[direction]
        path = out_dir / f"qrels.{direction}.txt"
        write_qrels(path, d.query_ids, d.gallery_ids, d.relevant)
        paths.append(path)
    return paths


def setting_entry(key: str, label: str, rule: Optional[str], depth: int, ms_per_query: dict[str, float | None],
                  variant: str, latency_source: Optional[dict[str, str]] = None) -> dict:
    """One ``settings`` row of results.json; ``latency_source[direction]`` says where each latency comes from
    (``"this run"`` or ``"ledger"``: costs measured by an earlier run in the same context, see ``latency``)."""
    ms = {k: v for k, v in ms_per_query.items() if v is not None}
    sources = latency_source or {}
    return {"key": key, "label": label, "rule": rule, "depth": depth, "variant": variant or None,
            "ms_per_query": ms, "latency_source": {d: sources.get(d, "this run") for d in ms}}


def main_depths(depths: Sequence[int]) -> list[int]:
    """Rerank depths > 0 of the grid, ascending."""
    return sorted(k for k in set(depths) if k > 0)
