"""Ablation cells: final rankings of stage 1 and of every (rule, depth), their metrics, curves and run files.

A cell's ranking is derived from stage-1 candidates and cached stage-2 scores only (no model runs):
``stage2_rerank.fusion.rerank_at_depth`` reorders the first k candidates, the rest keep stage-1 order.
Run files carry the scores each ranking was made from (see ``run_scores``), so they can be fused again.
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

from eval.analysis.per_query import QueryValues, query_values
from eval.metrics import image_to_text_metrics, recall_curves, rsum, text_to_image_metrics
from eval.trec import file_sha256, write_qrels, write_run
from rrbench_base.candidates import Candidates
from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion import rerank_at_depth
from stage2_rerank.types import CandidateScores

DIRECTIONS = ("t2i", "i2t")


@dataclass(frozen=True)
class DirectionData:
    """One direction of one stage-1 setting: its candidate lists and what evaluation needs around them
    (immutable: ``dataclasses.replace`` adds stage-2 scores).

    Attributes:
        candidates: stage 1's lists (``rrbench_base.candidates.Candidates``: ids int64 ``[Q, N]`` gallery positions
            best first, -1 = none; scores float32 ``[Q, N]``; query_positions int64 ``[Q]`` of the query items,
            captions for t2i, images for i2t; direction); ``ids``, ``scores``, ``query_positions`` and
            ``direction`` read through to it.
        relevant: t2i: int64 ``[Q]`` relevant image position; i2t: Q arrays of caption positions.
        query_ids: ids of the queries (caption ids for t2i, image ids for i2t), for run files.
        gallery_ids: ids of the gallery items (image ids for t2i, caption ids for i2t).
        stage2: stage-2 scores of the first ``kmax`` candidates (None without stage 2).
    """

    candidates: Candidates
    relevant: np.ndarray | list[np.ndarray]
    query_ids: list[str]
    gallery_ids: list[str]
    stage2: Optional[CandidateScores] = None

    @property
    def ids(self) -> np.ndarray:
        return self.candidates.ids

    @property
    def scores(self) -> np.ndarray:
        return self.candidates.scores

    @property
    def query_positions(self) -> np.ndarray:
        return self.candidates.query_positions

    @property
    def direction(self) -> str:
        return self.candidates.direction


@dataclass(frozen=True)
class CellRanking:
    """A direction's final ranking and the scores it was made from.

    Attributes:
        ids: int64 ``[Q, N]`` gallery positions, best first (-1 padding at row ends).
        scores: float ``[Q, N]`` score of each listed candidate (see ``run_scores``), non-increasing along each
            row over the real candidates; what the run file's score column carries.
    """

    ids: np.ndarray
    scores: np.ndarray


Ranked = np.ndarray | CellRanking  # a plain array is a stage-1 ranking (its scores are the stage-1 scores)


def _ids(ranked: Ranked) -> np.ndarray:
    return ranked.ids if isinstance(ranked, CellRanking) else ranked


def cell_metrics(ranked: dict[str, Ranked], data: dict[str, DirectionData]) -> dict[str, float]:
    """Metrics of both directions plus rsum for the rankings ``ranked[direction]`` (``[Q, N]``)."""
    out = text_to_image_metrics(_ids(ranked["t2i"]), data["t2i"].relevant)
    out.update(image_to_text_metrics(_ids(ranked["i2t"]), data["i2t"].relevant))
    out["rsum"] = rsum(out)
    return out


def cell_query_values(ranked: dict[str, Ranked], data: dict[str, DirectionData]) -> dict[str, QueryValues]:
    """Per-query values of both directions (``eval.analysis.per_query``) for the rankings ``ranked[direction]``."""
    return {d: query_values(_ids(ranked[d]), data[d].relevant, d) for d in DIRECTIONS}


def cell_curves(ranked: dict[str, Ranked], data: dict[str, DirectionData]) -> dict[str, list[float]]:
    """``{"t2i": [R@1..R@N], "i2t": [...]}`` of the rankings."""
    return recall_curves(_ids(ranked["t2i"]), data["t2i"].relevant, _ids(ranked["i2t"]), data["i2t"].relevant)


def run_scores(d: DirectionData, fusion: FusionConfig, depth: int) -> CellRanking:
    """Final ranking at rerank depth ``depth`` with rule ``fusion`` and the score of every listed candidate.

    The rule: stage 1 (``depth`` 0 or no stage-2 scores): the stage-1 scores. A rerank cell: the first
    ``k = min(depth, N)`` candidates carry their fused score (``fusion.fused_scores``), in the fused order of
    ``rerank_at_depth``; the candidates below them in the final list (those of the first k whose fused score is
    NaN, e.g. skipped images, then the candidates past k, all in stage-1 order) carry their stage-1 score shifted
    by one constant per query, so that the first of them scores 1 below the lowest fused score of the query (a
    query without any finite fused score keeps its stage-1 scores unshifted). Scores are non-increasing along
    each row; ties (equal fused or stage-1 scores) keep the list's order, and ``write_run(break_ties=True)``
    makes them strictly decreasing so that tools which sort by score reproduce the ranking exactly.
    """
    if depth == 0 or d.stage2 is None or len(d.ids) == 0:
        return CellRanking(d.ids, d.scores)
    from stage2_rerank.fusion import fused_order, fused_scores

    ids = rerank_at_depth(d.ids, d.scores, d.stage2, depth, fusion)
    stage1 = np.asarray(d.scores, dtype=np.float64)
    k = min(depth, ids.shape[1])
    fused = fused_scores(d.stage2.first(k), stage1[:, :k], fusion)
    order = fused_order(fused)
    fused_final = np.concatenate([np.take_along_axis(fused, order, axis=1),
                                  np.full((len(ids), ids.shape[1] - k), np.nan)], axis=1)
    stage1_final = np.concatenate([np.take_along_axis(stage1[:, :k], order, axis=1), stage1[:, k:]], axis=1)
    valid = ids >= 0
    below = np.isnan(fused_final) & valid
    head = np.where(valid & ~below, fused_final, np.inf)
    lowest = head.min(axis=1)  # lowest finite fused score of each query (inf: none)
    first_below = np.take_along_axis(stage1_final, below.argmax(axis=1)[:, None], axis=1)[:, 0]
    shift = np.where(np.isfinite(lowest) & below.any(axis=1), lowest - 1.0 - first_below, 0.0)
    scores = np.where(below, stage1_final + shift[:, None], fused_final)
    return CellRanking(ids, np.where(valid, scores, np.nan))


def rerank_both(data: dict[str, DirectionData], fusion: FusionConfig, depth: int) -> dict[str, CellRanking]:
    """Final ``[Q, N]`` rankings of both directions at rerank depth ``depth`` with rule ``fusion``, with the
    scores they were made from (``run_scores``)."""
    return {direction: run_scores(data[direction], fusion, depth) for direction in DIRECTIONS}


def setting_key(stage: str, variant: str, rule: Optional[str] = None, depth: int = 0) -> str:
    """``stage1``, ``stage1@v``, ``stage2/itm/k=20`` or ``stage2@v/itm/k=20``."""
    head = stage if not variant else f"{stage}@{variant}"
    return head if rule is None else f"{head}/{rule}/k={depth}"


def run_file_name(key: str, direction: str) -> str:
    """File name of a cell's TREC run, e.g. ``stage2_itm+itc_k=20.t2i.trec.gz``."""
    return key.replace("/", "_").replace("@", "-") + f".{direction}.trec.gz"


def run_digest(ranked: np.ndarray, query_ids: Sequence[str], gallery_ids: Sequence[str], tag: str,
               scores: Optional[np.ndarray] = None) -> str:
    """SHA-256 of everything a run file's content depends on (rankings, scores of the listed candidates with
    their dtype, ids, tag)."""
    ranked = np.ascontiguousarray(ranked, dtype=np.int64)
    digest = hashlib.sha256(ranked.tobytes())
    if scores is not None:
        scores = np.asarray(scores)
        digest.update(b"\x1e" + str(scores.dtype).encode() + b"\x1e")
        digest.update(np.ascontiguousarray(np.where(ranked >= 0, scores, 0)).astype(scores.dtype).tobytes())
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


def _cell_ranking(ranked: Ranked, d: DirectionData, direction: str) -> CellRanking:
    if isinstance(ranked, CellRanking):
        return ranked
    if ranked is d.ids or (np.shape(ranked) == np.shape(d.ids) and np.array_equal(ranked, d.ids)):
        return CellRanking(d.ids, d.scores)
    raise ValueError(f"the {direction} ranking is not stage 1's and comes without scores: pass a CellRanking "
                     "(rerank_both gives one) so the run file carries the scores the ranking was made from")


def write_cell_runs(out_dir: Path, key: str, ranked: dict[str, Ranked], data: dict[str, DirectionData],
                    reuse_dir: Optional[Path] = None) -> int:
    """TREC run files of both directions; the score column carries the scores each ranking was made from
    (``ranked[direction]`` a ``CellRanking``, or a plain array equal to stage 1's ids for its stage-1 scores; see
    ``run_scores`` for the rule), ties made strictly decreasing by ``write_run(break_ties=True)`` so that tools
    which re-sort by score (trec_eval, ranx) reproduce our order and our metrics exactly.

    Each file has a stamp ``<file>.sha256`` = ``<content digest> <sha256 of the file bytes>``: the content digest
    (``run_digest``) names the rankings and scores the file should hold, the file hash vouches for the bytes on
    disk. A file whose stamp matches both (in ``out_dir``, or in ``reuse_dir``: the previous outputs, linked over)
    is not rewritten, so a rerun that reproduces a cell costs no run-file writing; a truncated, replaced or edited
    file is rewritten. Returns the number of files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for direction in DIRECTIONS:
        d = data[direction]
        cell = _cell_ranking(ranked[direction], d, direction)
        name = run_file_name(key, direction)
        path = out_dir / name
        stamp = path.with_name(name + ".sha256")
        digest = run_digest(cell.ids, d.query_ids, d.gallery_ids, key, cell.scores)
        if _verified(path, digest):
            continue
        if reuse_dir is not None and _verified(Path(reuse_dir) / name, digest):
            _reuse(Path(reuse_dir) / name, path)
            continue
        stamp.unlink(missing_ok=True)  # never a stale stamp beside a new file
        write_run(path, cell.ids, d.query_ids, d.gallery_ids, scores=cell.scores, tag=key, break_ties=True)
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
