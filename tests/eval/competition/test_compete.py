"""``rrbench compete`` end to end on a small folder built in tmp_path: fine-tuning a tiny stage 1 from
scratch, both result files, R@K against the answer key, bad images, stage-2 rerank with a tiny BLIP-2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from eval.cli import main as cli_main
from eval.competition.config import load_compete_config
from eval.competition.result_files import RESULT1_COLUMNS, RESULT2_COLUMNS, validate_result_file
from eval.competition.runner import run_compete
from rrbench_base.image_refs import BadImageError
from stage2_rerank.bench.random_checkpoint import save_random_checkpoint, tiny_blip2_itm_config
from tests.eval.competition.helpers import make_competition_dir, tiny_finetune_overrides

CHARS = ["红", "绿", "蓝", "黄", "白", "色", "方", "块", "在", "左", "右", "边"]


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory) -> dict:
    """One CLI run with fine-tuning from scratch; later tests reuse its checkpoint."""
    root = tmp_path_factory.mktemp("compete")
    ids = make_competition_dir(root / "data")
    status = cli_main(["compete", "--data", str(root / "data"), "--out", str(root / "out"),
                       *tiny_finetune_overrides(root / "cache", epochs=30)])
    assert status == 0
    report = json.loads((root / "out" / "compete.json").read_text(encoding="utf-8"))
    return {"root": root, "ids": ids, "report": report, "model": root / "out" / "finetune" / "best"}


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))[1:]


def _top(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for query, _, item in _rows(path):
        out.setdefault(query, []).append(item)
    return out


def _config(root: Path, model: Path, *extra: str):
    return load_compete_config(None, ["stage1.encoder.device=cpu", f"stage1.encoder.model={model}", "stage1.depth=10",
                                      f"cache_dir={root / 'cache'}", *extra])


def test_result_files_follow_the_template_with_verbatim_ids(fine_tuned):
    out, ids = fine_tuned["root"] / "out", fine_tuned["ids"]
    s1 = validate_result_file(out / "result1.csv", RESULT1_COLUMNS, ids["text_ids"], ids["images"], 5)
    s2 = validate_result_file(out / "result2.csv", RESULT2_COLUMNS, ids["images"], ids["text_ids"], 5)
    assert (s1.queries, s1.rows, s2.queries, s2.rows) == (20, 100, 20, 100)
    assert [r[0] for r in _rows(out / "result1.csv")[:6]] == ["文本-0"] * 5 + ["文本-1"]
    report = fine_tuned["report"]
    assert report["finetune"]["train_images"] == 20 and report["finetune"]["init_from"] is None
    assert report["skipped_total"] == 0


def test_reported_recall_matches_the_result_files_and_beats_chance(fine_tuned):
    out, ids = fine_tuned["root"] / "out", fine_tuned["ids"]
    truth = dict(zip(ids["text_ids"], ids["images"]))
    t2i = _top(out / "result1.csv")
    i2t = _top(out / "result2.csv")
    t2i_r5 = 100.0 * sum(truth[q] in top for q, top in t2i.items()) / len(t2i)
    i2t_r5 = 100.0 * sum(any(truth[t] == q for t in top) for q, top in i2t.items()) / len(i2t)
    report = fine_tuned["report"]
    assert report["task1"]["metrics"]["t2i/R@5"] == pytest.approx(t2i_r5)
    assert report["task2"]["metrics"]["i2t/R@5"] == pytest.approx(i2t_r5)
    assert report["task1"]["metrics"]["queries_scored"] == 20
    assert t2i_r5 + i2t_r5 > 2 * 25.0 + 20.0  # chance is 5 of 20 = 25% per task


def test_undecodable_image_is_skipped_and_counted_or_named(fine_tuned, tmp_path):
    root = fine_tuned["root"]
    data = tmp_path / "data"
    make_competition_dir(data)
    (data / "ImageData" / "img3.jpg").write_bytes(b"not an image")
    with pytest.raises(BadImageError, match="img3.jpg"):
        run_compete(_config(root, fine_tuned["model"]), data, tmp_path / "out_error")
    report = run_compete(_config(root, fine_tuned["model"], "on_bad_input=skip"), data, tmp_path / "out")
    assert [s["id"] for s in report["skipped"]["task1"]] == ["img3.jpg"]
    assert [s["id"] for s in report["skipped"]["task2"]] == ["img3.jpg"] and report["skipped_total"] == 2
    assert report["task2"]["queries_answered"] == 19 and "img3.jpg" not in _top(tmp_path / "out" / "result2.csv")
    assert all("img3.jpg" not in top for top in _top(tmp_path / "out" / "result1.csv").values())
    # the text whose image could not be decoded still counts: a query that cannot be answered is a miss
    assert report["task1"]["metrics"]["queries_scored"] == 20


def test_stage2_reorders_only_within_the_rerank_depth(fine_tuned, tmp_path):
    root = fine_tuned["root"]
    checkpoint = tmp_path / "tiny_blip2"
    save_random_checkpoint(checkpoint, tiny_blip2_itm_config(), CHARS, seed=3)
    stage2 = json.dumps({"model": str(checkpoint), "device": "cpu", "pair_batch_size": 8, "vision_batch_size": 4})
    plain = run_compete(_config(root, fine_tuned["model"]), root / "data", tmp_path / "plain")
    reranked = run_compete(_config(root, fine_tuned["model"], f"stage2={stage2}", "rerank_depth=5"), root / "data",
                           tmp_path / "reranked")
    assert reranked["task1"]["pairs_scored"] + reranked["task1"]["pairs_from_cache"] == 100
    for name in ("result1.csv", "result2.csv"):
        before, after = _top(tmp_path / "plain" / name), _top(tmp_path / "reranked" / name)
        assert {q: sorted(v) for q, v in before.items()} == {q: sorted(v) for q, v in after.items()}
        assert before != after
    assert plain["task1"]["metrics"]["t2i/R@10"] == reranked["task1"]["metrics"]["t2i/R@10"]


def test_config_validation():
    with pytest.raises(ValueError, match="stage1.depth"):
        load_compete_config(None, ["stage1.depth=5"])
    with pytest.raises(ValueError, match="rerank_depth"):
        load_compete_config(None, ["rerank_depth=500", "stage2={model: x}"])
    assert load_compete_config(None, ["top_k=3"]).stage1.encoder.backend == "rrbench_dual"


def test_shipped_compete_configs_validate_and_every_field_is_documented():
    from eval.competition.config import CompeteConfig
    from eval.config_doc import config_reference

    configs = sorted((Path(__file__).resolve().parents[3] / "configs" / "compete").glob("*.yaml"))
    assert configs
    for path in configs:
        assert load_compete_config(path).top_k == 5
    undocumented = [row.key for row in config_reference(CompeteConfig) if not row.text]
    assert not undocumented, f"compete config fields without a description: {undocumented}"


def test_relevant_image_missing_from_the_gallery_counts_as_a_miss(fine_tuned, tmp_path):
    root = fine_tuned["root"]
    data = tmp_path / "data"
    make_competition_dir(data)
    (data / "ImageData" / "img5.jpg").unlink()
    report = run_compete(_config(root, fine_tuned["model"], "on_bad_input=skip"), data, tmp_path / "out")
    task1 = report["task1"]["metrics"]
    assert (task1["queries_scored"], task1["queries_without_answer"], task1["relevant_not_in_gallery"]) == (20, 0, 1)
    truth = {f"文本-{k}": f"img{k}.jpg" for k in range(20)}
    top = _top(tmp_path / "out" / "result1.csv")
    assert task1["t2i/R@5"] == pytest.approx(100.0 * sum(truth[q] in t for q, t in top.items()) / 20)
    assert report["task2"]["queries_answered"] == 19 and report["task2"]["metrics"]["queries_scored"] == 19
