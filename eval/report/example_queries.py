"""Which queries the example page and figures show: the compared cells, each query's outcome, a seeded sample.

A query's outcome compares the rank of its first relevant item in the chosen cell with the rank in the stage 1
of the cell's own stage-1 setting (``stage1`` or ``stage1@<variant>``), as ``eval.analysis.breakdown.win_loss``:

- ``fixed``: moved into rank 1; ``broken``: moved out of rank 1;
- ``improved`` / ``worsened``: moved up / down without entering or leaving rank 1;
- ``unchanged``: same rank.

The sample takes queries from each outcome in turn (``OUTCOMES`` order, each outcome's queries in a seeded random
order), so every outcome that occurs appears once the sample holds as many queries as there are outcomes, and
fixed and broken queries come first when it is smaller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from eval.analysis.per_query import DIRECTIONS, StoredPerQuery
from eval.report.results_file import Results, Setting

OUTCOMES = ("fixed", "broken", "improved", "worsened", "unchanged")
OUTCOME_TEXT = {"fixed": "fixed (moved into rank 1)", "broken": "broken (moved out of rank 1)",
                "improved": "improved (moved up, not into rank 1)", "worsened": "worsened (moved down, not out of "
                "rank 1)", "unchanged": "unchanged (same rank)"}


def reference_key(setting: Setting) -> str:
    """The stage-1 setting a cell is compared with: ``stage1`` or ``stage1@<variant>``."""
    return f"stage1@{setting.variant}" if setting.variant else "stage1"


def chosen_setting(results: Results, example_cell: str | None) -> Setting:
    """``example_cell`` when given, else the rerank cell (depth > 0) with the highest rsum (stage 1 when the run
    has no rerank cell); KeyError naming the known cells when ``example_cell`` is not one of them."""
    by_key = {s.key: s for s in results.settings}
    if example_cell is not None:
        if example_cell not in by_key:
            raise KeyError(f"analysis.example_cell {example_cell!r} is not a cell of {results.path} "
                           f"(cells: {', '.join(by_key)})")
        return by_key[example_cell]
    rerank = [s for s in results.settings if s.depth > 0] or results.settings

    def rsum(setting: Setting) -> float:
        value = results.metric(setting, "rsum")
        return -math.inf if math.isnan(value) else value

    return max(rerank, key=rsum)  # the first of tied cells


def outcomes(rank_before: np.ndarray, rank_after: np.ndarray) -> np.ndarray:
    """The outcome name (``OUTCOMES``) of each query from its first-relevant ranks before and after."""
    before, after = np.asarray(rank_before), np.asarray(rank_after)
    return np.select([(after == 1) & (before > 1), (after > 1) & (before == 1), after < before, after > before],
                     list(OUTCOMES[:4]), default="unchanged")


def sample_rows(kinds: np.ndarray, size: int, seed: int, stream: int = 0) -> np.ndarray:
    """Rows of a seeded sample of ``size`` queries (all of them when fewer), taken from each outcome in turn (see
    the module docstring); returned grouped by outcome in ``OUTCOMES`` order, by row within an outcome."""
    rng = np.random.default_rng([seed, stream])
    pools = {kind: list(rng.permutation(np.flatnonzero(kinds == kind))) for kind in OUTCOMES}
    chosen: dict[str, list[int]] = {kind: [] for kind in OUTCOMES}
    taken = 0
    while taken < min(size, len(kinds)):
        for kind in OUTCOMES:
            if pools[kind] and taken < size:
                chosen[kind].append(int(pools[kind].pop(0)))
                taken += 1
    return np.array([row for kind in OUTCOMES for row in sorted(chosen[kind])], dtype=np.int64)


@dataclass(frozen=True)
class RankedList:
    """One ranked top list of a query: gallery positions (captions for i2t, images for t2i) and relevance."""

    positions: tuple[int, ...]
    relevant: tuple[bool, ...]


@dataclass(frozen=True)
class ExampleQuery:
    """One query as the page and figures show it.

    Attributes:
        direction: ``t2i`` (query = caption position) or ``i2t`` (query = image position).
        position: the query's position in the benchmark's captions (t2i) or images (i2t).
        outcome: one of ``OUTCOMES``.
        rank_before, rank_after: rank of the first relevant item in stage 1 and in the chosen cell; ``list_depth
            + 1`` when none is in the list.
        before, after: the top lists of stage 1 and of the chosen cell.
    """

    direction: str
    position: int
    outcome: str
    rank_before: int
    rank_after: int
    before: RankedList
    after: RankedList


@dataclass(frozen=True)
class ExampleSet:
    """The sampled queries of both directions and what they compare.

    Attributes:
        cell, reference: the chosen setting and the stage-1 setting it is compared with.
        queries: direction -> sampled queries.
        counts: direction -> outcome -> number of queries with it over all queries (not only the sample).
        list_depth: direction -> length of the ranked lists (a rank above it means "not retrieved").
    """

    cell: Setting
    reference: Setting
    queries: dict[str, list[ExampleQuery]]
    counts: dict[str, dict[str, int]]
    list_depth: dict[str, int]


def _ranked(stored: StoredPerQuery, direction: str, cell_row: int, row: int) -> RankedList:
    ids, relevant = stored.top_ids[direction][cell_row, row], stored.top_relevant[direction][cell_row, row]
    keep = ids >= 0
    return RankedList(tuple(int(i) for i in ids[keep]), tuple(bool(r) for r in relevant[keep]))


def example_set(results: Results, stored: StoredPerQuery, example_cell: str | None, size: int,
                seed: int) -> ExampleSet:
    """The seeded sample of ``size`` queries per direction comparing the chosen cell (``chosen_setting``) with its
    stage 1; KeyError when a compared cell is missing from ``stored``."""
    cell = chosen_setting(results, example_cell)
    by_key = {s.key: s for s in results.settings}
    reference = by_key[reference_key(cell)]
    cell_row, ref_row = stored.row(cell.key), stored.row(reference.key)
    queries: dict[str, list[ExampleQuery]] = {}
    counts: dict[str, dict[str, int]] = {}
    depth: dict[str, int] = {}
    for stream, d in enumerate(DIRECTIONS):
        before, after = stored.rank[d][ref_row], stored.rank[d][cell_row]
        kinds = outcomes(before, after)
        counts[d] = {kind: int(np.sum(kinds == kind)) for kind in OUTCOMES}
        # the list length is the recall curve's; without a curve every rank is shown as a number
        depth[d] = len(results.curves.get(reference.key, {}).get(d, [])) or int(max(before.max(), after.max()))
        queries[d] = [ExampleQuery(d, int(stored.query_positions[d][row]), str(kinds[row]), int(before[row]),
                                   int(after[row]), _ranked(stored, d, ref_row, row), _ranked(stored, d, cell_row, row))
                      for row in sample_rows(kinds, size, seed, stream)]
    return ExampleSet(cell, reference, queries, counts, depth)


def sample_seed(provenance: Mapping[str, Any], analysis_seed: int | None) -> int:
    """``analysis.seed`` when set, else the experiment's seed (``provenance.seed``, else 0)."""
    if analysis_seed is not None:
        return int(analysis_seed)
    seed = provenance.get("seed", provenance.get("config", {}).get("seed", 0))
    return int(seed) if isinstance(seed, int) else 0


def rank_text(rank: int, list_depth: int) -> str:
    """``"3"``, or ``">N"`` when the first relevant item is not in the N-long list."""
    return f">{list_depth}" if rank > list_depth else str(rank)
