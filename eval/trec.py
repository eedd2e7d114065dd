"""TREC run and qrels files: write rankings and ground truth so trec_eval / ranx can check every number.

Formats (UTF-8, gzip-compressed when the file name ends in ``.gz``; one record per line, fields
separated by one space). Files are written to a temporary name and renamed (a crash leaves no half file);
gzip headers carry mtime 0 and no file name, so identical content gives byte-identical files:

- run:   ``qid Q0 docid rank score tag``: one line per candidate, rank 1-based, best first.
- qrels: ``qid 0 docid 1``: one line per relevant (query, item) pair.

Reading the compressed run files as written: ``zcat stage1.t2i.trec.gz | head`` shows them; ranx reads them
directly (``ranx.Run.from_file("stage1.t2i.trec.gz")``); trec_eval reads plain text only, so decompress
first: ``zcat stage1.t2i.trec.gz > stage1.t2i.trec && trec_eval -c -m all_trec qrels.t2i.txt stage1.t2i.trec``.

Ids may hold any non-whitespace characters (Chinese included); an id that is empty or contains
whitespace (anything ``str.isspace`` accepts, e.g. U+3000) is a ValueError, since the readers split on it.

trec_eval and ranx order each query's candidates by the *score* column, not by the rank column
(trec_eval breaks ties by docid, ranx by no stated rule), so a run file reproduces a ranking only when
scores strictly decrease with rank. ``write_run`` therefore checks given scores: an increase along a row is
an error; equal scores are an error too unless ``break_ties=True``, which lowers each tied score to the
next float below the one before it (``np.nextafter`` in the scores' own dtype; a later tie may move by
several such steps), so the file keeps the scores the ranking was made from, to the last bit or a few
units in the last place, and every tool re-sorts to the rank column. Scores are written as the shortest
text that reads back to the same value of their dtype. Without scores (``scores=None``) the file carries
rank-derived scores ``N + 1 - rank``. A query whose list is empty gets no run line: evaluate with
``trec_eval -c`` (or ranx's ``make_comparable=True``) so it counts as a miss.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.metrics import check_ranked
from rrbench_base.file_digest import file_sha256


@dataclass
class TrecRun:
    """A run read back from a file.

    Attributes:
        ranking: query id -> candidate ids, best first (ordered by the file's rank column).
        scores: query id -> the scores of those candidates, same order.
        tag: the run tag of the file's first line ("" for an empty file).
    """

    ranking: dict[str, list[str]]
    scores: dict[str, list[float]]
    tag: str


def check_ids(ids: Sequence[str], what: str) -> list[str]:
    """Return ids as a list after checking each is a non-empty str without whitespace and all are unique."""
    ids = list(ids)
    for position, item in enumerate(ids):
        if not isinstance(item, str):
            raise ValueError(f"{what} id at position {position} is {type(item).__name__}, not str: {item!r}")
        if not item or any(ch.isspace() for ch in item):
            raise ValueError(
                f"{what} id at position {position} is empty or contains whitespace: {item!r}; "
                "TREC files separate fields by whitespace"
            )
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what} ids are not unique: {item!r} appears more than once")
        seen.add(item)
    return ids


def _write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically (temporary name, then rename); gzip-compressed when the name ends in ``.gz``,
    with a reproducible header (mtime 0, no file name). Creates parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            if path.suffix == ".gz":
                # level 1: run files are large and written once per ablation cell; level 9 took 4x longer
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as handle:
                    handle.write(text.encode("utf-8"))
            else:
                raw.write(text.encode("utf-8"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file, gunzipped when the name ends in ``.gz``."""
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return handle.read().splitlines()
    return path.read_text(encoding="utf-8").splitlines()


def write_run(
    path: Path,
    ranked: np.ndarray,
    query_ids: Sequence[str],
    gallery_ids: Sequence[str],
    scores: np.ndarray | None = None,
    tag: str = "rrbench",
    break_ties: bool = False,
) -> Path:
    """Write a TREC run file; returns ``path``.

    Args:
        path: output file (parent directories are created).
        ranked: int ``[Q, N]`` positions into ``gallery_ids``, best first, -1 padding at row ends.
        query_ids: Q query ids (row q of ``ranked`` belongs to ``query_ids[q]``).
        gallery_ids: ids of the gallery the positions index.
        scores: float ``[Q, N]`` scores of the candidates, strictly decreasing along each row over
            the real candidates (non-increasing with ``break_ties``); None writes ``N + 1 - rank``.
        tag: run name written in the last column (no whitespace).
        break_ties: accept equal consecutive scores and write each tied one as the next float below the
            score written before it (see the module docstring), so tools that sort by score keep the rank order.
    """
    ranked = check_ranked(ranked)
    query_ids = check_ids(query_ids, "query")
    gallery_ids = check_ids(gallery_ids, "gallery")
    check_ids([tag], "run tag")
    num_queries, depth = ranked.shape
    if len(query_ids) != num_queries:
        raise ValueError(f"{len(query_ids)} query ids for {num_queries} rows of ranked")
    if ranked.size and ranked.max() >= len(gallery_ids):
        raise ValueError(f"ranked holds position {int(ranked.max())} but the gallery has {len(gallery_ids)} ids")
    valid = ranked >= 0
    if scores is None:
        score_text = np.broadcast_to(np.arange(depth, 0, -1).astype(str), ranked.shape)
    else:
        scores = np.asarray(scores)
        if scores.shape != ranked.shape or not np.issubdtype(scores.dtype, np.floating):
            raise ValueError(f"scores must be float with shape {ranked.shape}, got {scores.dtype} {scores.shape}")
        if not np.all(np.isfinite(scores[valid])):
            raise ValueError("scores of real candidates must be finite")
        increasing = (scores[:, 1:] > scores[:, :-1]) if break_ties else (scores[:, 1:] >= scores[:, :-1])
        not_decreasing = increasing & valid[:, 1:]
        if not_decreasing.any():
            row = int(np.flatnonzero(not_decreasing.any(axis=1))[0])
            raise ValueError(
                f"scores do not {'decrease' if break_ties else 'strictly decrease'} along row {row} "
                f"(query {query_ids[row]!r}); trec_eval and ranx re-sort by score, so the ranking would change. "
                "Pass scores=None for rank-derived scores."
            )
        if break_ties:
            scores = strictly_decreasing(scores)
        score_text = scores.astype(str)  # shortest text that reads back to the same value
    ranks = np.arange(1, depth + 1).astype(str)
    gallery = np.asarray(gallery_ids, dtype=object)
    tail = f" {tag}\n"
    lines = []
    for q, qid in enumerate(query_ids):
        count = int(valid[q].sum())
        head = f"{qid} Q0 "
        lines.extend(map("".join, zip([head] * count, gallery[ranked[q, :count]], [" "] * count, ranks[:count],
                                      [" "] * count, score_text[q, :count], [tail] * count)))
    return _write_text(path, "".join(lines))


def strictly_decreasing(scores: np.ndarray) -> np.ndarray:
    """A copy of the float ``[Q, N]`` ``scores`` (non-increasing along each row) in which each score that is not
    below the one before it becomes the next float below that one (``np.nextafter`` in the array's dtype):
    ties keep their column order under any sort by descending score, all other values are unchanged."""
    out = np.array(scores, copy=True)
    if out.ndim != 2 or out.shape[1] < 2:
        return out
    low = np.array(-np.inf, dtype=out.dtype)
    for j in range(1, out.shape[1]):  # a column at a time: a lowered score may meet the next one
        out[:, j] = np.minimum(out[:, j], np.nextafter(out[:, j - 1], low))
    return out


def write_qrels(
    path: Path,
    query_ids: Sequence[str],
    gallery_ids: Sequence[str],
    relevant: np.ndarray | Sequence[np.ndarray],
) -> Path:
    """Write a TREC qrels file (``qid 0 docid 1``); returns ``path``.

    ``relevant`` is either an int array ``[Q]`` (one relevant gallery position per query, as
    text-to-image) or Q int arrays of relevant positions (image-to-text); duplicates are written once.
    """
    query_ids = check_ids(query_ids, "query")
    gallery_ids = check_ids(gallery_ids, "gallery")
    if len(relevant) != len(query_ids):
        raise ValueError(f"{len(relevant)} ground-truth entries for {len(query_ids)} query ids")
    lines = []
    for qid, rel in zip(query_ids, relevant):
        positions = np.unique(np.asarray(rel, dtype=np.int64).ravel())
        if positions.size == 0:
            raise ValueError(f"query {qid!r} has no relevant item")
        if positions.min() < 0 or positions.max() >= len(gallery_ids):
            raise ValueError(f"query {qid!r} has a relevant position outside the gallery: {positions.tolist()}")
        lines.extend(f"{qid} 0 {gallery_ids[p]} 1\n" for p in positions)
    return _write_text(path, "".join(lines))


def read_run(path: Path) -> TrecRun:
    """Read a TREC run file; candidates of each query are ordered by the rank column."""
    rows: dict[str, list[tuple[int, str, float]]] = {}
    tag = ""
    for line_no, line in enumerate(_read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise ValueError(f"{path}:{line_no}: expected 'qid Q0 docid rank score tag', got {line!r}")
        qid, _, doc, rank, score, line_tag = fields
        tag = tag or line_tag
        rows.setdefault(qid, []).append((int(rank), doc, float(score)))
    ranking, scores = {}, {}
    for qid, entries in rows.items():
        entries.sort()
        ranking[qid] = [doc for _, doc, _ in entries]
        scores[qid] = [score for _, _, score in entries]
    return TrecRun(ranking=ranking, scores=scores, tag=tag)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a TREC qrels file into ``{qid: {docid: relevance}}``."""
    qrels: dict[str, dict[str, int]] = {}
    for line_no, line in enumerate(_read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise ValueError(f"{path}:{line_no}: expected 'qid 0 docid relevance', got {line!r}")
        qid, _, doc, relevance = fields
        qrels.setdefault(qid, {})[doc] = int(relevance)
    return qrels


def run_to_ranked(run: TrecRun, query_ids: Sequence[str], gallery_ids: Sequence[str], depth: int) -> np.ndarray:
    """Turn a read-back run into an int64 ``[Q, depth]`` position array (-1 padding), rows in ``query_ids`` order."""
    position = {doc: i for i, doc in enumerate(gallery_ids)}
    ranked = np.full((len(query_ids), depth), -1, dtype=np.int64)
    for q, qid in enumerate(query_ids):
        docs = run.ranking.get(qid, [])[:depth]
        unknown = [doc for doc in docs if doc not in position]
        if unknown:
            raise ValueError(f"run lists ids that are not in the gallery for query {qid!r}: {unknown[:3]}")
        ranked[q, : len(docs)] = [position[doc] for doc in docs]
    return ranked
