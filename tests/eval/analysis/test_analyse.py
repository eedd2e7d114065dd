"""Per-query values, win/loss, ceilings and the depth recommendation on hand cases; the per-query file."""

import numpy as np
import pytest

from eval.analysis import (BootstrapSettings, analyse, ceiling, read_per_query, recommend_depth, win_loss,
                           write_per_query)
from eval.analysis.per_query import query_values
from eval.metrics import image_to_text_metrics, text_to_image_metrics

# t2i: 4 caption queries over 4 images; relevant image of caption q is q.
RELEVANT_T2I = np.array([0, 1, 2, 3])
STAGE1_T2I = np.array([[1, 0, 2], [1, 0, 2], [0, 1, 2], [0, 1, 2]])  # first relevant at 2, 1, 3, none
RERANK_T2I = np.array([[0, 1, 2], [0, 1, 2], [1, 0, 2], [0, 1, 2]])  # 1, 2, 3, none
# i2t: 2 image queries, captions {0, 1} for image 0 and {2, 3} for image 1
RELEVANT_I2T = [np.array([0, 1]), np.array([2, 3])]
STAGE1_I2T = np.array([[2, 0, 1], [0, 1, 3]])
RERANK_I2T = np.array([[0, 2, 1], [3, 0, 1]])


def cells():
    return {"stage1": {"t2i": query_values(STAGE1_T2I, RELEVANT_T2I, "t2i"),
                       "i2t": query_values(STAGE1_I2T, RELEVANT_I2T, "i2t")},
            "stage2/itm/k=2": {"t2i": query_values(RERANK_T2I, RELEVANT_T2I, "t2i"),
                               "i2t": query_values(RERANK_I2T, RELEVANT_I2T, "i2t")}}


def test_per_query_means_are_the_metrics():
    t2i, i2t = query_values(STAGE1_T2I, RELEVANT_T2I, "t2i"), query_values(STAGE1_I2T, RELEVANT_I2T, "i2t")
    for name, value in text_to_image_metrics(STAGE1_T2I, RELEVANT_T2I).items():
        short = name.split("/", 1)[1]
        if short in t2i.values:
            assert 100 * t2i.values[short].mean() == pytest.approx(value), name
    for name, value in image_to_text_metrics(STAGE1_I2T, RELEVANT_I2T).items():
        short = name.split("/", 1)[1]
        if short in i2t.values:
            assert 100 * i2t.values[short].mean() == pytest.approx(value), name
    np.testing.assert_array_equal(t2i.rank, [2, 1, 3, 4])
    np.testing.assert_array_equal(t2i.top_ids[0], [1, 0, 2, -1, -1])
    np.testing.assert_array_equal(t2i.top_relevant[0], [False, True, False, False, False])


def test_win_loss_by_hand():
    counts = win_loss(np.array([1, 2, 3, 4]), np.array([2, 1, 3, 4]))
    assert counts == {"improved": 1, "worsened": 1, "unchanged": 2, "fixed": 1, "broken": 1}


def test_ceiling_and_recommendation_by_hand():
    assert ceiling([10.0, 30.0, 50.0], 2) == 30.0
    assert ceiling([10.0, 30.0, 50.0], 7) == 50.0
    choice = recommend_depth({1: 300.0, 5: 320.5, 10: 321.0, 20: 320.0}, within=1.0)
    assert choice == {"depth": 5, "rsum": 320.5, "best_depth": 10, "best_rsum": 321.0, "within": 1.0}
    assert recommend_depth({1: 300.0, 5: 320.5, 10: 321.0}, within=0.0)["depth"] == 10


def test_analyse_sections():
    settings = [{"key": "stage1", "rule": None, "depth": 0, "variant": None, "ms_per_query": {"t2i": 1.0}},
                {"key": "stage2/itm/k=2", "rule": "itm", "depth": 2, "variant": None, "ms_per_query": {"t2i": 2.0}}]
    metrics, curves = {}, {}
    for key, (t2i, i2t) in {"stage1": (STAGE1_T2I, STAGE1_I2T), "stage2/itm/k=2": (RERANK_T2I, RERANK_I2T)}.items():
        for name, value in {**text_to_image_metrics(t2i, RELEVANT_T2I),
                            **image_to_text_metrics(i2t, RELEVANT_I2T)}.items():
            metrics[f"{key}/{name}"] = value
        metrics[f"{key}/rsum"] = sum(metrics[f"{key}/{d}/R@{k}"] for d in ("t2i", "i2t") for k in (1, 5, 10))
    curves["stage1"] = {"t2i": [25.0, 50.0, 75.0], "i2t": [0.0, 100.0, 100.0]}
    out = analyse(cells(), settings, metrics, curves, BootstrapSettings(resamples=1000), within=1.0)
    assert out["win_loss"]["stage2/itm/k=2/t2i"] == {"improved": 1, "worsened": 1, "unchanged": 2, "fixed": 1,
                                                      "broken": 1}
    assert out["win_loss"]["stage2/itm/k=2/i2t"]["fixed"] == 2
    assert out["ceiling"]["stage1/t2i"] == {"2": 50.0}
    assert out["ceiling_share"]["stage2/itm/k=2/t2i"] == pytest.approx(100 * 25.0 / 50.0)
    assert out["recommendation"]["itm"]["depth"] == 2 and out["recommendation"]["itm"]["ms_per_query"] == {"t2i": 2.0}
    assert set(out["vs_stage1"]) == {f"stage2/itm/k=2/{d}/{m}" for d in ("t2i", "i2t") for m in ("R@1", "R@5", "MRR")}
    # i2t R@1: stage 1 0 of 2, rerank 2 of 2; t2i R@1 equal (1 of 4 each)
    assert out["vs_stage1"]["stage2/itm/k=2/i2t/R@1"]["difference"] == pytest.approx(100.0)
    assert out["vs_stage1"]["stage2/itm/k=2/t2i/R@1"]["difference"] == 0.0
    assert out["vs_stage1"]["stage2/itm/k=2/t2i/R@1"]["p"] == 1.0
    assert out["vs_best"]["stage1/i2t/R@1"]["reference"] == "stage2/itm/k=2"
    low, high = out["intervals"]["stage1/t2i/R@1"]
    assert 0.0 <= low <= 25.0 <= high <= 100.0
    plain = analyse(cells(), settings, metrics, curves, BootstrapSettings(resamples=1000), 1.0, significance=False)
    assert "vs_stage1" not in plain and plain["win_loss"] == out["win_loss"]


def test_per_query_file_round_trip(tmp_path):
    path = write_per_query(tmp_path / "per_query.npz", cells(),
                           {"t2i": np.arange(4), "i2t": np.arange(2)})
    stored = read_per_query(path)
    assert stored.cells == ["stage1", "stage2/itm/k=2"]
    row = stored.row("stage2/itm/k=2")
    np.testing.assert_array_equal(stored.rank["t2i"][row], [1, 2, 3, 4])
    np.testing.assert_array_equal(stored.top_relevant["i2t"][row][1][:2], [True, False])
    with pytest.raises(KeyError, match="stage1, stage2/itm/k=2"):
        stored.row("stage2/rrf/k=5")
    with pytest.raises(FileNotFoundError, match="rerun the experiment"):
        read_per_query(tmp_path / "absent.npz")
