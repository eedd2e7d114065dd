"""Per-query values of every cell: what significance tests, win/loss counts and the example page read.

For one direction of one cell, :class:`QueryValues` holds each query's metric values (fractions, the columns whose
means are the metrics of ``eval.metrics``), the rank of its first relevant item and its top ``TOP`` candidates with
their relevance. ``per_query.npz`` (beside results.json) stores the ranks and top lists of every cell, so that
``rrbench report`` can draw examples without running a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from eval.metrics import hits_multi_relevant, hits_single_relevant, per_query_values

TOP = 5
DIRECTIONS = ("t2i", "i2t")
FILE_NAME = "per_query.npz"


@dataclass(frozen=True)
class QueryValues:
    """One direction of one cell, query by query (row q = the direction's q-th query).

    Attributes:
        values: metric name (``R@1``, ``R@5``, ``R@10``, ``MRR``, ``mAP``, ``nDCG@10``; ``Recall@K`` for i2t) ->
            float64 ``[Q]`` values in [0, 1].
        rank: int64 ``[Q]`` 1-based rank of the first relevant item; ``N + 1`` when none is in the list.
        top_ids: int64 ``[Q, TOP]`` the first candidates (gallery positions, -1 padding).
        top_relevant: bool ``[Q, TOP]`` whether each of them is relevant.
    """

    values: dict[str, np.ndarray]
    rank: np.ndarray
    top_ids: np.ndarray
    top_relevant: np.ndarray


def query_values(ranked: np.ndarray, relevant: np.ndarray | Sequence[np.ndarray], direction: str) -> QueryValues:
    """:class:`QueryValues` of a ranking ``[Q, N]``; ``relevant`` as in ``eval.metrics`` (t2i: int ``[Q]`` one
    image each; i2t: Q arrays of caption positions)."""
    if direction == "t2i":
        hits, num_relevant = hits_single_relevant(ranked, np.asarray(relevant))
    else:
        hits, num_relevant = hits_multi_relevant(ranked, relevant)
    values = per_query_values(hits, num_relevant, true_recall=direction == "i2t")
    rank = values.pop("rank").astype(np.int64)
    width = min(TOP, ranked.shape[1])
    top_ids = np.full((len(ranked), TOP), -1, dtype=np.int64)
    top_relevant = np.zeros((len(ranked), TOP), dtype=bool)
    top_ids[:, :width], top_relevant[:, :width] = ranked[:, :width], hits[:, :width]
    return QueryValues(values, rank, top_ids, top_relevant)


def write_per_query(path: Path, cells: Mapping[str, Mapping[str, QueryValues]],
                    query_positions: Mapping[str, np.ndarray]) -> Path:
    """``per_query.npz``: ``cells`` (names, in order), and per direction ``<d>_query_positions`` ``[Q]``,
    ``<d>_rank`` int32 ``[C, Q]``, ``<d>_top_ids`` int32 ``[C, Q, TOP]``, ``<d>_top_relevant`` bool ``[C, Q, TOP]``.
    Every cell must have both directions over the same queries as ``query_positions`` (one stage-1 setting)."""
    names = list(cells)
    arrays: dict[str, np.ndarray] = {"cells": np.array(names, dtype=str)}
    for d in DIRECTIONS:
        arrays[f"{d}_query_positions"] = np.asarray(query_positions[d], dtype=np.int64)
        arrays[f"{d}_rank"] = np.stack([cells[n][d].rank for n in names]).astype(np.int32)
        arrays[f"{d}_top_ids"] = np.stack([cells[n][d].top_ids for n in names]).astype(np.int32)
        arrays[f"{d}_top_relevant"] = np.stack([cells[n][d].top_relevant for n in names])
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class StoredPerQuery:
    """``per_query.npz`` read back: ``cells`` names and, per direction, the arrays of :func:`write_per_query`."""

    cells: list[str]
    query_positions: dict[str, np.ndarray]
    rank: dict[str, np.ndarray]
    top_ids: dict[str, np.ndarray]
    top_relevant: dict[str, np.ndarray]

    def row(self, cell: str) -> int:
        """Row of ``cell`` in the ``[C, ...]`` arrays; KeyError listing the known cells."""
        if cell not in self.cells:
            raise KeyError(f"cell {cell!r} is not in {FILE_NAME} (cells: {', '.join(self.cells)})")
        return self.cells.index(cell)


def read_per_query(path: Path) -> StoredPerQuery:
    """Read ``per_query.npz``; a clear error naming the file when it is missing or lacks an array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-query file (written by `rrbench run` since the analysis was "
                                "added; rerun the experiment, which reuses every cache)")
    with np.load(path, allow_pickle=False) as data:
        try:
            return StoredPerQuery([str(c) for c in data["cells"]],
                                  {d: data[f"{d}_query_positions"] for d in DIRECTIONS},
                                  {d: data[f"{d}_rank"] for d in DIRECTIONS},
                                  {d: data[f"{d}_top_ids"] for d in DIRECTIONS},
                                  {d: data[f"{d}_top_relevant"] for d in DIRECTIONS})
        except KeyError as err:
            raise ValueError(f"{path}: missing array {err} (not a per-query file of this version)") from None
