"""Run files of a cell are rewritten only when their content would change."""

import numpy as np

from eval.runner.cells import DirectionData, run_file_name, write_cell_runs
from eval.trec import read_run


def _data():
    t2i = DirectionData(ids=np.array([[1, 0], [0, 1]]), scores=np.zeros((2, 2), np.float32),
                        query_positions=np.arange(2), relevant=np.array([1, 0]), query_ids=["c0", "c1"],
                        gallery_ids=["i0", "i1"])
    i2t = DirectionData(ids=np.array([[0, 1], [1, 0]]), scores=np.zeros((2, 2), np.float32),
                        query_positions=np.arange(2), relevant=[np.array([0]), np.array([1])],
                        query_ids=["i0", "i1"], gallery_ids=["c0", "c1"])
    return {"t2i": t2i, "i2t": i2t}


def test_unchanged_cells_are_not_rewritten(tmp_path):
    data = _data()
    ranked = {d: data[d].ids for d in data}
    assert write_cell_runs(tmp_path, "stage2/itm/k=2", ranked, data) == 2
    assert write_cell_runs(tmp_path, "stage2/itm/k=2", ranked, data) == 0
    changed = {"t2i": ranked["t2i"][:, ::-1].copy(), "i2t": ranked["i2t"]}
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
