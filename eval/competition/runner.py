"""``run_compete``: task files -> (fine-tuning) -> stage 1 -> (stage 2) -> result1.csv, result2.csv, compete.json.

Outputs in ``out_dir``: ``result1.csv`` and ``result2.csv`` (checked against the template after
writing), ``compete.json`` (config, counts, every skipped item, timings, metrics when an answer key
exists, provenance) and ``finetune/`` when fine-tuning ran.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from eval.competition.config import CompeteConfig
from eval.competition.finetune import finetune_stage1
from eval.competition.result_files import RESULT_FILES, validate_result_file, write_result_file
from eval.competition.retrieval import (TaskRanking, image_to_text, rerank_task, result_ids, task_metrics,
                                        text_to_image)
from eval.competition.task_files import CompetitionTasks, read_tasks
from eval.typed_config import to_dict
from rrbench_base.provenance import provenance
from stage1_dual.config import Stage1Config
from stage1_dual.encoders import load_encoder
from stage2_rerank.rerank import load_reranker

log = logging.getLogger(__name__)
REPORT_FILE = "compete.json"


def _stage1_config(cfg: CompeteConfig) -> Stage1Config:
    stage1 = dataclasses.replace(cfg.stage1, on_bad_input=cfg.on_bad_input)
    if stage1.cache_dir is None:
        stage1 = dataclasses.replace(stage1, cache_dir=cfg.cache_dir / "stage1")
    return stage1


def _write_task(ranking: TaskRanking, tasks: CompetitionTasks, cfg: CompeteConfig, out_dir: Path) -> dict[str, Any]:
    file_name, columns = RESULT_FILES[ranking.name]
    if ranking.direction == "t2i":
        all_queries, gallery_ids = tasks.text_queries.ids, [i.id for i in tasks.image_gallery]
    else:
        all_queries, gallery_ids = [i.id for i in tasks.image_queries], tasks.text_gallery.ids
    query_ids = [all_queries[p] for p in ranking.query_positions]
    path = write_result_file(out_dir / file_name, columns, query_ids, result_ids(ranking, gallery_ids, cfg.top_k),
                             cfg.encoding)
    summary = validate_result_file(path, columns, all_queries, gallery_ids, cfg.top_k)
    return {"file": file_name, "queries": len(all_queries), "queries_answered": summary.queries,
            "rows": summary.rows, "gallery": len(gallery_ids)}


def run_compete(cfg: CompeteConfig, data_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Run both tasks on the competition folder ``data_dir``; write the outputs to ``out_dir``; return the report."""
    start = time.perf_counter()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = read_tasks(data_dir, cfg.files, cfg.on_bad_input)
    log.info("competition tasks: %s", tasks.counts())
    report: dict[str, Any] = {"data_dir": str(data_dir), "counts": tasks.counts(),
                              "skipped": {"task_files": [s.as_dict() for s in tasks.skipped]}, "timings": {}}
    stage1 = _stage1_config(cfg)
    if cfg.finetune.enabled:
        encoder_cfg, report["finetune"] = finetune_stage1(cfg, data_dir, out_dir)
        stage1 = dataclasses.replace(stage1, encoder=encoder_cfg)
    encoder = load_encoder(stage1.encoder)
    rankings = [text_to_image(encoder, stage1, tasks), image_to_text(encoder, stage1, tasks)]
    if cfg.stage2 is not None:
        reranker = load_reranker(dataclasses.replace(cfg.stage2, on_bad_input=cfg.on_bad_input))
        try:
            rankings = [rerank_task(r, reranker, tasks, cfg.rerank_depth, cfg.fusion) for r in rankings]
        finally:
            reranker.close()
    report["stage1_encoder"] = encoder.fingerprint()
    for ranking in rankings:
        entry = {"direction": ranking.direction, **_write_task(ranking, tasks, cfg, out_dir), **ranking.info}
        metrics = task_metrics(ranking, tasks)
        if metrics is not None:
            entry["metrics"] = metrics
        report[ranking.name] = entry
        report["skipped"][ranking.name] = ranking.skipped
    report["skipped_total"] = sum(len(v) for v in report["skipped"].values()) + len(
        (report.get("finetune") or {}).get("skipped", []))
    report["timings"]["total_seconds"] = round(time.perf_counter() - start, 2)
    report["provenance"] = provenance(config=to_dict(cfg), seed=cfg.finetune.training.seed)
    path = out_dir / REPORT_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return report
