"""Run files of a cell: rewritten only when their content would change; their score column carries the scores the
ranking was made from, and ranx reading them gives the cell's metrics exactly."""

import numpy as np
import pytest

from eval.runner.cells import (CandidateScores, CellRanking, DirectionData, FusionConfig, cell_metrics, rerank_both,
                               run_file_name, write_cell_runs, write_qrels_files)
from eval.trec import read_run
from rrbench_base.candidates import Candidates


def _data():
    t2i = DirectionData(Candidates("t2i", np.array([[1, 0], [0, 1]]), np.zeros((2, 2)), np.arange(2)),
                        relevant=np.array([1, 0]), query_ids=["c0", "c1"], gallery_ids=["i0", "i1"])
    i2t = DirectionData(Candidates("i2t", np.array([[0, 1], [1, 0]]), np.zeros((2, 2)), np.arange(2)),
                        relevant=[np.array([0]), np.array([1])], query_ids=["i0", "i1"], gallery_ids=["c0", "c1"])
    return {"t2i": t2i, "i2t": i2t}


def test_unchanged_cells_are_not_rewritten(tmp_path):
    data = _data()
    ranked = {d: data[d].ids for d in data}
    assert write_cell_runs(tmp_path, "stage2/itm/k=2", ranked, data) == 2
    assert write_cell_runs(tmp_path, "stage2/itm/k=2", ranked, data) == 0
    changed = {"t2i": CellRanking(ranked["t2i"][:, ::-1].copy(), np.array([[0.5, 0.25], [0.5, 0.25]])),
               "i2t": ranked["i2t"]}
    assert write_cell_runs(tmp_path, "stage2/itm/k=2", changed, data) == 1
    run = read_run(tmp_path / run_file_name("stage2/itm/k=2", "t2i"))
    assert run.ranking["c0"] == ["i0", "i1"]  # the rewritten file holds the new ranking
    # a file removed by hand is written again
    (tmp_path / run_file_name("stage2/itm/k=2", "i2t")).unlink()
    assert write_cell_runs(tmp_path, "stage2/itm/k=2", changed, data) == 1


def test_stamp_vouches_for_the_bytes_on_disk(tmp_path):
    """A truncated file or a valid gz holding half the lines is rewritten despite its stamp (issue 18 case 4)."""
    import gzip

    data = _data()
    ranked = {d: data[d].ids for d in data}
    key = "stage2/itm/k=2"
    assert write_cell_runs(tmp_path, key, ranked, data) == 2
    t2i, i2t = tmp_path / run_file_name(key, "t2i"), tmp_path / run_file_name(key, "i2t")
    good = {t2i: t2i.read_bytes(), i2t: i2t.read_bytes()}
    t2i.write_bytes(good[t2i][: len(good[t2i]) // 2])  # truncated gz
    lines = gzip.decompress(good[i2t]).decode().splitlines(keepends=True)
    i2t.write_bytes(gzip.compress("".join(lines[: len(lines) // 2]).encode()))  # valid gz, half the queries
    assert write_cell_runs(tmp_path, key, ranked, data) == 2
    assert t2i.read_bytes() == good[t2i] and i2t.read_bytes() == good[i2t]


def test_verified_files_are_reused_from_a_previous_directory(tmp_path):
    data = _data()
    ranked = {d: data[d].ids for d in data}
    key = "stage1"
    assert write_cell_runs(tmp_path / "old", key, ranked, data) == 2
    assert write_cell_runs(tmp_path / "new", key, ranked, data, reuse_dir=tmp_path / "old") == 0
    for direction in ("t2i", "i2t"):
        name = run_file_name(key, direction)
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "old" / name).read_bytes()
    (tmp_path / "old" / run_file_name(key, "t2i")).write_bytes(b"\x1f\x8b broken")
    assert write_cell_runs(tmp_path / "newer", key, ranked, data, reuse_dir=tmp_path / "old") == 1


def _rerank_data(seed: int = 0, num_queries: int = 9, depth: int = 8, gallery: int = 12):
    """Both directions with tied stage-1 scores, tied and NaN (skipped image) stage-2 scores and a padded row."""
    rng = np.random.default_rng(seed)
    data = {}
    for direction in ("t2i", "i2t"):
        ids = np.stack([rng.permutation(gallery)[:depth] for _ in range(num_queries)]).astype(np.int64)
        scores = -np.sort(-np.round(rng.random((num_queries, depth)), 1), axis=1).astype(np.float32)  # ties
        ids[2, 5:] = -1
        scores[2, 5:] = -np.inf
        logits = np.round(rng.normal(size=(num_queries, depth, 2)), 0).astype(np.float32)  # many equal logits
        logits[1, 2] = np.nan  # a skipped image among the first k
        logits[ids < 0] = np.nan
        itc = np.where(ids < 0, np.nan, np.round(rng.random((num_queries, depth)), 1)).astype(np.float32)
        query_ids = [f"{direction}-q{q}" for q in range(num_queries)]
        gallery_ids = [f"{direction}-g{g}" for g in range(gallery)]
        if direction == "t2i":
            relevant = np.where(rng.random(num_queries) < 0.7, ids[:, rng.integers(0, 5)], rng.integers(0, gallery,
                                                                                                      num_queries))
        else:
            relevant = [np.unique(np.append(rng.choice(gallery, 2, replace=False), ids[q, q % 4]))
                        for q in range(num_queries)]
        data[direction] = DirectionData(Candidates(direction, ids, scores, np.arange(num_queries)), relevant,
                                        query_ids, gallery_ids, stage2=CandidateScores(logits, itc))
    return data


FUSIONS = [FusionConfig("itm"), FusionConfig("itm+itc"), FusionConfig("alpha", alpha=0.3), FusionConfig("rrf"),
           FusionConfig("residual", stage1_scale=2.0)]


@pytest.mark.parametrize("fusion", FUSIONS, ids=[f.rule for f in FUSIONS])
def test_run_files_carry_fused_scores_and_give_the_cell_metrics_in_ranx(tmp_path, fusion):
    """Item 9 of issue 19: the score column is the fused score of the first k and, below them, stage-1 scores
    shifted under the lowest fused score; ties are broken in rank order, so ranx (which sorts by score) gives
    exactly the metrics computed from the ranking, at every depth and for every rule (rrf ties often)."""
    ranx = pytest.importorskip("ranx")
    from stage2_rerank.fusion import fused_scores as _fused

    data = _rerank_data()
    write_qrels_files(tmp_path, data)
    qrels = {d: ranx.Qrels.from_file(str(tmp_path / f"qrels.{d}.txt"), kind="trec") for d in data}
    names = [f"hit_rate@{k}" for k in (1, 5, 10)] + [f"recall@{k}" for k in (1, 5, 10)] + ["mrr", "map"]
    for depth in (0, 1, 3, 8, 20):
        key = f"stage2/{fusion.rule}/k={depth}"
        ranked = rerank_both(data, fusion, depth)
        assert write_cell_runs(tmp_path, key, ranked, data) == 2
        ours = cell_metrics(ranked, data)
        for direction, d in data.items():
            path = tmp_path / run_file_name(key, direction)
            run = ranx.Run.from_file(str(path))  # kind left unset: ranx reads .gz only then
            theirs = ranx.evaluate(qrels[direction], run, names, make_comparable=True)
            for k in (1, 5, 10):
                assert ours[f"{direction}/R@{k}"] == pytest.approx(100 * theirs[f"hit_rate@{k}"], abs=1e-9)
                if direction == "i2t":
                    assert ours[f"i2t/Recall@{k}"] == pytest.approx(100 * theirs[f"recall@{k}"], abs=1e-9)
            assert ours[f"{direction}/MRR"] == pytest.approx(100 * theirs["mrr"], abs=1e-9)
            assert ours[f"{direction}/mAP"] == pytest.approx(100 * theirs["map"], abs=1e-9)
            cell = ranked[direction]
            back = read_run(path)
            for q, qid in enumerate(d.query_ids):
                count = int((cell.ids[q] >= 0).sum())
                written = np.array(back.scores[qid])
                assert back.ranking[qid] == [d.gallery_ids[i] for i in cell.ids[q, :count]]
                assert np.all(np.diff(written) < 0)  # strictly decreasing: any sort by score keeps the order
                eps = 16 * np.finfo(cell.scores.dtype).eps  # ties lowered by a few steps of the scores' dtype
                np.testing.assert_allclose(written, cell.scores[q, :count], rtol=eps, atol=eps)
                if depth == 0:
                    assert written.tolist() == pytest.approx(d.scores[q, :count].tolist(), abs=1e-6)
                    continue
                k = min(depth, count)
                stage2 = d.stage2.first(min(depth, d.ids.shape[1]))
                fused = _fused(stage2, d.scores[:, : stage2.itc.shape[1]], fusion)[q]
                finite = np.sort(fused[np.isfinite(fused)])[::-1]
                np.testing.assert_allclose(written[: len(finite)], finite, rtol=eps, atol=eps)
                rest = written[len(finite):]
                if len(rest) and len(finite):
                    assert rest[0] == pytest.approx(finite[-1] - 1.0)
                    position = {int(i): j for j, i in enumerate(d.ids[q])}
                    stage1_rest = [d.scores[q, position[int(i)]] for i in cell.ids[q, len(finite):count]]
                    np.testing.assert_allclose(np.diff(rest), np.diff(stage1_rest), atol=1e-6)
                assert k <= count


def test_stage1_run_files_carry_stage1_scores(tmp_path):
    data = _rerank_data(seed=1)
    ranked = {d: data[d].ids for d in data}
    write_cell_runs(tmp_path, "stage1", ranked, data)
    d = data["t2i"]
    back = read_run(tmp_path / run_file_name("stage1", "t2i"))
    for q, qid in enumerate(d.query_ids):
        count = int((d.ids[q] >= 0).sum())
        written = np.array(back.scores[qid])
        assert np.all(np.diff(written) < 0)
        np.testing.assert_allclose(written, d.scores[q, :count], atol=1e-6)  # ties lowered by float32 steps only
    with pytest.raises(ValueError, match="comes without scores"):
        write_cell_runs(tmp_path, "x", {"t2i": d.ids[:, ::-1].copy(), "i2t": data["i2t"].ids}, data)
