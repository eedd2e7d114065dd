"""Stage-1 benchmark pieces: synthetic vectors, recall, the search table, encoding throughput, the script."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from scripts.bench_stage1 import main as bench_main
from stage1_dual.bench.compact_bench import compact_index_configs
from stage1_dual.bench.encode_bench import EncodeBenchOptions, run_encode_bench
from stage1_dual.bench.search_bench import bench_index_configs, ivf_nlist_for
from stage1_dual.bench.vectors import VectorSpec, make_gallery_and_queries, recall_at_k


@pytest.fixture(autouse=True)
def restore_threads():
    faiss_threads = faiss.omp_get_max_threads()
    import torch
    torch_threads = torch.get_num_threads()
    yield
    faiss.omp_set_num_threads(faiss_threads)
    torch.set_num_threads(torch_threads)


def test_vectors_are_normalised_clustered_and_seeded():
    spec = VectorSpec(dim=64, num_clusters=10, seed=3)
    gallery, queries = make_gallery_and_queries(spec, 2000, 50, chunk=300)
    again, _ = make_gallery_and_queries(spec, 2000, 50, chunk=300)
    assert gallery.shape == (2000, 64) and queries.shape == (50, 64) and gallery.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(gallery, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(gallery, again)
    # clustered: a query is much closer to its nearest item than random pairs are to each other
    nearest = np.max(queries @ gallery.T, axis=1).mean()
    random_pairs = np.mean(np.sum(gallery[:1000] * gallery[1000:], axis=1))
    assert nearest > random_pairs + 0.2


def test_recall_at_k():
    exact = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    approx = np.array([[3, 2, 9, -1], [4, 5, 6, 7]])
    assert recall_at_k(approx, exact) == pytest.approx((2 / 4 + 1) / 2)
    assert ivf_nlist_for(1_000_000) == 4096 and ivf_nlist_for(25_000) == 512


def test_encode_bench_with_tiny_model(tiny_open_clip_name, tmp_path):
    result = run_encode_bench(EncodeBenchOptions(model=tiny_open_clip_name, images=5, texts=6, batch_size=2,
                                                 num_workers=0), tmp_path)
    assert result["images"] == 5 and result["texts"] == 6
    assert result["images_per_s"] > 0 and result["texts_per_s"] > 0 and result["image_size"] == [32, 32]


def test_script_writes_table_and_json(tmp_path):
    results = bench_main(["--sizes", "3000", "--queries", "200", "--skip-encoding", "--skip-compact", "--threads", "1",
                          "--out", str(tmp_path)])
    assert "compact" not in results and not (tmp_path / "compact.json").exists()
    rows = {row["index"]: row for row in results["search"]["rows"]}
    assert set(rows) == {"flat", "torch", "ivfpq", "hnsw"}
    assert rows["flat"]["recall"] == 1.0 and rows["torch"]["recall"] > 0.999
    assert rows["ivfpq"]["recall"] > 0.8 and rows["hnsw"]["recall"] > 0.8
    saved = json.loads((tmp_path / "bench_stage1.json").read_text())
    provenance = saved["provenance"]
    assert provenance["threads"] == {"count": 1, "source": "--threads"} and provenance["hardware"]["cpu"]
    assert provenance["command"].startswith("scripts/bench_stage1.py --sizes 3000") and provenance["git"]
    assert len(saved["load_average"]["start"]) == len(saved["load_average"]["end"]) == 3
    table = (tmp_path / "bench_stage1.md").read_text()
    assert "| 3,000 | ivfpq |" in table and "not measured in this run" in table


def test_cuda_row_only_when_asked_and_then_on_the_gpu():
    assert "torch_cuda" not in bench_index_configs(25_000)
    configs = bench_index_configs(25_000, cuda=True)
    assert configs["torch_cuda"].type == "torch" and configs["torch_cuda"].use_gpu is True
    assert all(cfg.use_gpu is False for name, cfg in configs.items() if name != "torch_cuda")


def test_compact_only_writes_its_own_table_and_keeps_the_others(tmp_path):
    (tmp_path / "bench_stage1.json").write_text("{}")
    results = bench_main(["--compact-only", "--sizes", "1000", "2500", "--compact-queries", "60", "--threads", "1",
                          "--out", str(tmp_path)])
    assert (tmp_path / "bench_stage1.json").read_text() == "{}" and not (tmp_path / "bench_stage1.md").exists()
    rows = {row["index"]: row for row in results["compact"]["rows"]}
    assert list(rows) == list(compact_index_configs(2500)) and results["compact"]["setup"]["gallery"] == 2500
    expected_bytes = {"flat": 4 * 512, "sq_fp16": 2 * 512, "sq_int8": 512, "pq_64x8": 64,
                      "pq_64x8_refine4": 64 + 4 * 512, "pq_256x4_fastscan": 128, "ivfpq_256x4": 128 + 8}
    assert {name: row["bytes_per_vector"] for name, row in rows.items()} == expected_bytes
    assert rows["flat"]["total_bytes"] == 2500 * 4 * 512 and rows["flat"]["recall"] == 1.0
    assert rows["sq_fp16"]["recall"] > 0.99 and rows["sq_int8"]["recall"] > 0.95
    assert rows["pq_64x8_refine4"]["recall"] > rows["pq_64x8"]["recall"] > 0.3
    assert all(row["total_bytes"] >= 2500 * row["bytes_per_vector"] for row in rows.values())
    saved = json.loads((tmp_path / "compact.json").read_text())
    assert saved["compact"]["rows"][0]["index"] == "flat" and saved["provenance"]["threads"] == {"count": 1, "source": "--threads"}
    table = (tmp_path / "compact.md").read_text()
    assert "## 2,500 synthetic clustered vectors, d=512, 60 queries, recall@100" in table
    assert "| sq_int8 | int8 | sq_type=int8 | 512 | 0.250 |" in table


def test_compact_configs_cover_each_storage():
    configs = compact_index_configs(1_000_000)
    assert [cfg.type for _, cfg in configs.values()] == ["flat", "sq", "sq", "pq", "pq", "pq", "ivfpq"]
    assert configs["sq_int8"][1].sq_type == "int8" and configs["pq_64x8_refine4"][1].refine_factor == 4
    assert configs["ivfpq_256x4"][1].ivf_nlist == 4096 and configs["ivfpq_256x4"][1].refine_factor == 0
    assert all(cfg.use_gpu is False for _, cfg in configs.values())
