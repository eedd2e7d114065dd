"""TREC run/qrels files: round trip, ranx reads them and gives eval.metrics' numbers, bad ids are rejected."""

import numpy as np
import pytest

from eval.metrics import image_to_text_metrics, text_to_image_metrics
from eval.trec import read_qrels, read_run, run_to_ranked, write_qrels, write_run

KS = (1, 3, 5, 10)


def make_case(seed: int, num_queries: int = 40, gallery: int = 30, depth: int = 12):
    """Rankings with padded rows, several relevant items (some missing from the list), Chinese ids."""
    rng = np.random.default_rng(seed)
    ranked = np.full((num_queries, depth), -1, dtype=np.int64)
    relevant = []
    for q in range(num_queries):
        length = 0 if q == 3 else (depth if q % 3 else int(rng.integers(1, depth + 1)))
        ranked[q, :length] = rng.choice(gallery, size=length, replace=False)
        rel = rng.choice(gallery, size=int(rng.integers(1, 5)), replace=False)
        if q % 2 and length:
            rel[0] = ranked[q, int(rng.integers(0, length))]
        relevant.append(rel)
    scores = -np.sort(rng.random((num_queries, depth)), axis=1)  # strictly decreasing per row
    query_ids = [f"图像_{q}" if q % 2 else f"img-{q}.jpg" for q in range(num_queries)]
    gallery_ids = [f"文本{g}号" if g % 3 else f"cap/{g}#x" for g in range(gallery)]
    return ranked, scores, relevant, query_ids, gallery_ids


@pytest.mark.parametrize("with_scores", [True, False])
def test_round_trip_and_ranx_agree_with_metrics(tmp_path, with_scores):
    ranx = pytest.importorskip("ranx")
    ranked, scores, relevant, query_ids, gallery_ids = make_case(0)
    run_path = write_run(
        tmp_path / "run.trec", ranked, query_ids, gallery_ids, scores if with_scores else None, tag="stage1"
    )
    qrels_path = write_qrels(tmp_path / "qrels.trec", query_ids, gallery_ids, relevant)

    # Our own reader gives back exactly what was written.
    run = read_run(run_path)
    assert run.tag == "stage1"
    assert query_ids[3] not in run.ranking  # empty list: no lines
    np.testing.assert_array_equal(run_to_ranked(run, query_ids, gallery_ids, ranked.shape[1]), ranked)
    if with_scores:
        for q in (0, 1):
            count = int((ranked[q] >= 0).sum())
            assert run.scores[query_ids[q]] == scores[q, :count].tolist()  # exact float round trip
    qrels = read_qrels(qrels_path)
    assert qrels == {q: {gallery_ids[int(p)]: 1 for p in rel} for q, rel in zip(query_ids, relevant)}

    # ranx reads the same files and agrees with eval.metrics on the arrays.
    names = [f"hit_rate@{k}" for k in KS] + [f"recall@{k}" for k in KS] + ["mrr", "map"]
    theirs = ranx.evaluate(
        ranx.Qrels.from_file(str(qrels_path), kind="trec"),
        ranx.Run.from_file(str(run_path), kind="trec"),
        names,
        make_comparable=True,
    )
    ours = image_to_text_metrics(ranked, relevant, ks=KS)
    for k in KS:
        assert ours[f"i2t/R@{k}"] == pytest.approx(100 * theirs[f"hit_rate@{k}"])
        assert ours[f"i2t/Recall@{k}"] == pytest.approx(100 * theirs[f"recall@{k}"])
    assert ours["i2t/MRR"] == pytest.approx(100 * theirs["mrr"])
    assert ours["i2t/mAP"] == pytest.approx(100 * theirs["map"])
    assert 0 < ours["i2t/MRR"] < 100


def test_single_relevant_qrels_with_ranx(tmp_path):
    ranx = pytest.importorskip("ranx")
    ranked, _, relevant, query_ids, gallery_ids = make_case(1)
    single = np.array([r[0] for r in relevant])
    write_run(tmp_path / "run.txt", ranked, query_ids, gallery_ids)
    write_qrels(tmp_path / "qrels.txt", query_ids, gallery_ids, single)
    theirs = ranx.evaluate(
        ranx.Qrels.from_file(str(tmp_path / "qrels.txt"), kind="trec"),
        ranx.Run.from_file(str(tmp_path / "run.txt"), kind="trec"),
        ["hit_rate@1", "hit_rate@5", "mrr"],
        make_comparable=True,
    )
    ours = text_to_image_metrics(ranked, single)
    assert ours["t2i/R@1"] == pytest.approx(100 * theirs["hit_rate@1"])
    assert ours["t2i/R@5"] == pytest.approx(100 * theirs["hit_rate@5"])
    assert ours["t2i/MRR"] == pytest.approx(100 * theirs["mrr"])


def test_file_layout(tmp_path):
    ranked = np.array([[2, 0, -1]])
    write_run(tmp_path / "run", ranked, ["q一"], ["a", "b", "c"], np.array([[0.5, 0.25, 0.0]]), tag="t")
    assert (tmp_path / "run").read_text(encoding="utf-8") == "q一 Q0 c 1 0.5 t\nq一 Q0 a 2 0.25 t\n"
    write_run(tmp_path / "run2", ranked, ["q"], ["a", "b", "c"])
    assert (tmp_path / "run2").read_text(encoding="utf-8") == "q Q0 c 1 3 rrbench\nq Q0 a 2 2 rrbench\n"
    write_qrels(tmp_path / "qrels", ["q"], ["a", "b", "c"], [np.array([1, 0, 1])])
    assert (tmp_path / "qrels").read_text(encoding="utf-8") == "q 0 a 1\nq 0 b 1\n"


def test_gzip_files_read_by_ranx(tmp_path):
    ranx = pytest.importorskip("ranx")
    ranked, scores, relevant, query_ids, gallery_ids = make_case(2)
    write_run(tmp_path / "run.trec.gz", ranked, query_ids, gallery_ids, scores)
    write_qrels(tmp_path / "qrels.trec.gz", query_ids, gallery_ids, relevant)
    assert (tmp_path / "run.trec.gz").read_bytes()[:2] == b"\x1f\x8b"  # gzip magic
    run = read_run(tmp_path / "run.trec.gz")
    np.testing.assert_array_equal(run_to_ranked(run, query_ids, gallery_ids, ranked.shape[1]), ranked)
    theirs = ranx.evaluate(
        ranx.Qrels.from_file(str(tmp_path / "qrels.trec.gz")),
        ranx.Run.from_file(str(tmp_path / "run.trec.gz")),
        ["map"],
        make_comparable=True,
    )
    assert image_to_text_metrics(ranked, relevant)["i2t/mAP"] == pytest.approx(100 * theirs)


def test_float32_scores_keep_their_order(tmp_path):
    scores = np.array([[1.0, np.nextafter(np.float32(1.0), np.float32(0.0)), 0.5]], dtype=np.float32)
    write_run(tmp_path / "run", np.array([[0, 1, 2]]), ["q"], ["a", "b", "c"], scores)
    read = read_run(tmp_path / "run").scores["q"]
    assert read[0] > read[1] > read[2]
    assert np.float32(read[1]) == scores[0, 1]


@pytest.mark.parametrize("bad_id", ["has space", "tab\there", "full\u3000width", "", "line\nbreak"])
def test_whitespace_in_ids_is_rejected(tmp_path, bad_id):
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "run", np.array([[0]]), [bad_id], ["a"])
    with pytest.raises(ValueError, match="whitespace"):
        write_qrels(tmp_path / "qrels", ["q"], ["a", bad_id], [np.array([0])])


def test_other_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="strictly decrease"):
        write_run(tmp_path / "run", np.array([[0, 1]]), ["q"], ["a", "b"], np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="not unique"):
        write_run(tmp_path / "run", np.array([[0, 1]]), ["q"], ["a", "a"])
    with pytest.raises(ValueError, match="gallery has 2"):
        write_run(tmp_path / "run", np.array([[0, 2]]), ["q"], ["a", "b"])
    with pytest.raises(ValueError, match="not str"):
        write_run(tmp_path / "run", np.array([[0]]), [7], ["a"])
    with pytest.raises(ValueError, match="no relevant"):
        write_qrels(tmp_path / "qrels", ["q"], ["a"], [np.array([], dtype=np.int64)])
    (tmp_path / "broken").write_text("q Q0 a 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="broken:1"):
        read_run(tmp_path / "broken")


def test_gzip_run_files_are_byte_identical_across_writes(tmp_path, monkeypatch):
    """Same rankings -> same bytes: gzip header without mtime and file name (issue 18 case 4)."""
    import gzip
    import time

    ranked, _, _, query_ids, gallery_ids = make_case(5)
    first = write_run(tmp_path / "a" / "run.trec.gz", ranked, query_ids, gallery_ids)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600.0)  # a later clock must not change the bytes
    second = write_run(tmp_path / "b" / "other-name.trec.gz", ranked, query_ids, gallery_ids)
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\x00\x00\x00\x00"  # MTIME field 0
    assert not data[3] & 0x08  # no FNAME field
    assert gzip.decompress(data).decode("utf-8").count("\n") == int((ranked >= 0).sum())
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["run.trec.gz"]  # no temporary file left behind


def test_break_ties_keeps_the_scores_and_the_rank_order(tmp_path):
    """Tied scores (a fused rule such as rrf ties often) are written one float step apart in rank order, every other
    score as given; an increase is still an error. ranx then reproduces the rank column exactly."""
    ranx = pytest.importorskip("ranx")
    scores = np.array([[0.5, 0.5, 0.5, 0.25, 0.25, 0.0], [2.0, 1.0, 1.0, 1.0, 1.0, -1.0]])
    ranked = np.array([[5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5]])
    gallery = [f"d{i}" for i in range(6)]
    write_run(tmp_path / "run.trec.gz", ranked, ["q0", "q1"], gallery, scores, tag="t", break_ties=True)
    back = read_run(tmp_path / "run.trec.gz")
    for q, qid in enumerate(["q0", "q1"]):
        written = np.array(back.scores[qid])
        assert np.all(np.diff(written) < 0)
        np.testing.assert_allclose(written, scores[q], rtol=1e-15, atol=1e-15)
        untied = np.r_[True, scores[q, 1:] != scores[q, :-1]]
        assert written[untied].tolist() == scores[q, untied].tolist()  # only the ties moved
    run = ranx.Run.from_file(str(tmp_path / "run.trec.gz"))
    for q, qid in enumerate(["q0", "q1"]):
        by_score = sorted(run.to_dict()[qid].items(), key=lambda item: -item[1])
        assert [doc for doc, _ in by_score] == [gallery[i] for i in ranked[q]]
    with pytest.raises(ValueError, match="do not decrease"):
        write_run(tmp_path / "bad", np.array([[0, 1]]), ["q"], ["a", "b"], np.array([[0.5, 0.75]]), break_ties=True)
