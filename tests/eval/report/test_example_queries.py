"""Which queries the example page shows: outcomes from ranks, the seeded sample that covers every outcome, the
chosen cell and its stage 1."""

from pathlib import Path

import numpy as np
import pytest

from eval.report.example_queries import (OUTCOMES, chosen_setting, outcomes, rank_text, reference_key, sample_rows,
                                         sample_seed)
from eval.report.results_file import Results, Setting


def test_outcomes_from_ranks():
    before = np.array([3, 1, 5, 2, 4, 1, 101])
    after = np.array([1, 2, 2, 6, 4, 1, 101])
    assert list(outcomes(before, after)) == ["fixed", "broken", "improved", "worsened", "unchanged", "unchanged",
                                             "unchanged"]


def _kinds(counts: dict[str, int], seed: int = 0) -> np.ndarray:
    kinds = np.array([kind for kind, n in counts.items() for _ in range(n)])
    return np.random.default_rng(seed).permutation(kinds)


def test_sample_is_seeded_and_covers_every_outcome():
    kinds = _kinds({"fixed": 3, "broken": 2, "improved": 40, "worsened": 30, "unchanged": 500})
    first = sample_rows(kinds, 24, seed=7)
    assert np.array_equal(first, sample_rows(kinds, 24, seed=7))  # same seed, same sample
    assert not np.array_equal(first, sample_rows(kinds, 24, seed=8))
    assert not np.array_equal(first, sample_rows(kinds, 24, seed=7, stream=1))  # each direction its own draw
    assert len(first) == 24 and len(set(first.tolist())) == 24
    drawn = kinds[first]
    assert (drawn == "fixed").sum() == 3 and (drawn == "broken").sum() == 2  # every rare one, not drowned out
    assert {"improved", "worsened", "unchanged"} <= set(drawn)
    order = [OUTCOMES.index(k) for k in drawn]
    assert order == sorted(order)  # grouped by outcome


def test_small_sample_prefers_fixed_and_broken():
    kinds = _kinds({"fixed": 10, "broken": 10, "improved": 10, "worsened": 10, "unchanged": 10})
    assert sorted(kinds[sample_rows(kinds, 2, seed=0)]) == ["broken", "fixed"]
    assert set(kinds[sample_rows(kinds, 5, seed=0)]) == set(OUTCOMES)


def test_sample_larger_than_queries_takes_all():
    kinds = _kinds({"unchanged": 4, "fixed": 1})
    assert sorted(sample_rows(kinds, 24, seed=0).tolist()) == list(range(5))


def _results(rsums: dict[str, float]) -> Results:
    settings = [Setting(key, key, None if key.startswith("stage1") else "itm", 0 if key.startswith("stage1") else 5,
                        variant="hnsw" if "@hnsw" in key else None) for key in rsums]
    return Results(Path("results.json"), "x", {f"{k}/rsum": v for k, v in rsums.items()}, settings, {})


def test_chosen_cell_is_the_best_rerank_cell_unless_named():
    results = _results({"stage1": 500.0, "stage2/itm/k=5": 300.0, "stage2@hnsw/itm/k=5": 310.0,
                        "stage1@hnsw": 200.0})
    assert chosen_setting(results, None).key == "stage2@hnsw/itm/k=5"  # highest rsum among rerank cells
    assert reference_key(chosen_setting(results, None)) == "stage1@hnsw"  # compared with its own stage 1
    assert chosen_setting(results, "stage2/itm/k=5").key == "stage2/itm/k=5"
    assert reference_key(chosen_setting(results, "stage2/itm/k=5")) == "stage1"
    with pytest.raises(KeyError, match="stage2/rrf/k=5"):
        chosen_setting(results, "stage2/rrf/k=5")


def test_rank_text_and_seed():
    assert rank_text(3, 100) == "3" and rank_text(101, 100) == ">100"
    assert sample_seed({"seed": 5}, None) == 5 and sample_seed({"seed": 5}, 9) == 9 and sample_seed({}, None) == 0
