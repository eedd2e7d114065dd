"""Run one experiment: data -> stage 1 per stage-1 setting -> stage 2 once at the largest depth -> grid.

``run_experiment(cfg)`` writes ``<output_dir>/<experiment>/results.json`` (metrics of every cell,
curves, settings with latency and its source, timings, counts, costs, provenance incl. the thread setting),
TREC run files and qrels under ``runs/``, then the tables and plots (``eval.report``). All of them are
written to a hidden staging directory and swapped in at the end (``eval.runner.outputs``): a run that dies
leaves the previous complete outputs untouched. Every model output is cached (embeddings, vision features,
pair scores), so a rerun or a resumed run recomputes nothing that finished; run files of the previous
outputs whose bytes still match their stamps are reused.

Several processes (``accelerate launch -m eval.cli run ...``, ``torchrun``, or ``rrbench run --processes N``,
``eval.runner.launch``): every process loads the data and the models; stage-1 encoding is shared by encoder
batch (``stage1_dual.sharded_encode``), the main process searches; stage-2 pairs are shared by image
(``stage2_rerank.shared_scoring``); the main process alone derives the grid and the analysis and writes the
outputs and the caches, so results.json's metrics are the one-process ones. Timings are then the job's wall
times as the main process sees them (``timings.processes`` = the number of processes); each process's
encoding and scoring seconds are in ``counts`` (``process_seconds``, ``stage2.processes``); the per-item costs
(``costs``, latency) divide the seconds summed over processes by the items, i.e. the cost on one device.

Grid cost (``timings.stage2``): ``grid_cost_ratio`` = (rerank at the largest depth + deriving every cell's
ranking, metrics and curves) / rerank at the largest depth; ``grid_cost_ratio_with_run_files`` also counts
writing the cells' TREC run files (``run_file_seconds``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from eval.analysis import BootstrapSettings, QueryValues, analyse, write_per_query
from eval.data.benchmark import Benchmark
from eval.experiment_config import ExperimentConfig, load_experiment_benchmark, with_cache_dirs
from eval.runner.cells import (DirectionData, cell_curves, cell_metrics, cell_query_values, main_depths, rerank_both,
                               setting_entry,
                               setting_key, write_cell_runs, write_qrels_files)
from eval.runner.latency import (CostLedger, cost_context, stage1_latency, stage1_sources, stage2_latency,
                                 stage2_sources)
from eval.runner.outputs import StagedOutputs
from eval.runner.shared_vision import shared_vision_sink
from eval.runner.threads import ThreadSetting, resolve_threads
from eval.typed_config import to_dict
from rrbench_base.candidates import Candidates
from rrbench_base.process_group import SINGLE_PROCESS, ProcessGroup, join_process_group
from rrbench_base.provenance import provenance
from rrbench_base.global_rng import seeded_torch_rng
from stage1_dual.config import Stage1Config
from stage1_dual.encoders import load_encoder
from stage1_dual.pipeline import Stage1Result, run_stage1
from stage2_rerank.rerank import Reranker, load_reranker

log = logging.getLogger(__name__)


def direction_data(bench: Benchmark, s1: Stage1Result) -> dict[str, DirectionData]:
    """Both directions of a stage-1 result as :class:`DirectionData` (with relevance and ids); image queries
    without any caption are dropped from i2t."""
    t2i, i2t = s1.candidates["t2i"], s1.candidates["i2t"]
    image_ids = [i.id for i in bench.images]
    caption_ids = [c.id for c in bench.captions]
    text_to_image, image_to_texts = bench.text_to_image(), bench.image_to_texts()
    # image queries without any caption have nothing to retrieve: they are not i2t queries
    keep = np.array([len(image_to_texts[p]) > 0 for p in i2t.query_positions], dtype=bool)
    i2t = i2t.select_queries(keep)
    return {
        "t2i": DirectionData(t2i, text_to_image[t2i.query_positions], [caption_ids[p] for p in t2i.query_positions],
                             image_ids),
        "i2t": DirectionData(i2t, [image_to_texts[p] for p in i2t.query_positions],
                             [image_ids[p] for p in i2t.query_positions], caption_ids),
    }


def dataset_identity(bench: Benchmark) -> str:
    """SHA-1 of the benchmark's name, split, images (id, path, file size) and captions (id, text, image id)."""
    digest = hashlib.sha1(f"{bench.name}|{bench.split}".encode())
    for image in bench.images:
        try:
            size = os.stat(image.path).st_size
        except (OSError, TypeError):
            size = -1
        digest.update(f"\x1e{image.id}\x1f{image.path}\x1f{size}".encode())
    for caption in bench.captions:
        digest.update(f"\x1d{caption.id}\x1f{caption.text}\x1f{caption.image_id}".encode())
    return digest.hexdigest()


def _stage1_context(kind: str, cfg: Stage1Config, encoder_fingerprint: str, dataset: str) -> dict[str, Any]:
    settings = {k: v for k, v in to_dict(cfg.encoder).items() if k not in ("hub_cache_dir", "hub_probe_timeout_s")}
    return cost_context(f"stage1-{kind}", encoder_fingerprint, settings, dataset)


def _stage2_context(kind: str, reranker: Reranker, dataset: str) -> dict[str, Any]:
    model = {"key": reranker.model_key, "precision": reranker.model.precision, "device": str(reranker.model.device)}
    settings = {k: v for k, v in to_dict(reranker.config).items() if k != "cache_dir"}
    return cost_context(f"stage2-{kind}", model, settings, dataset)


class ExperimentRun:
    """State of one run: results being filled, timings, counts (see ``run_experiment``).

    ``out_dir``: where this run's outputs go (the staging directory); ``previous_dir``: the previous complete
    outputs, whose verified run files are reused; ``threads``: the run's thread setting (for provenance);
    ``processes``: the job's processes (only the main one derives cells and writes anything).
    """

    def __init__(self, cfg: ExperimentConfig, out_dir: Optional[Path] = None, previous_dir: Optional[Path] = None,
                 threads: Optional[ThreadSetting] = None, processes: ProcessGroup = SINGLE_PROCESS) -> None:
        self.cfg = with_cache_dirs(cfg)
        self.processes = processes
        self.out_dir = Path(out_dir) if out_dir is not None else self.cfg.results_dir
        self.runs_dir = self.out_dir / "runs"
        self.previous_runs = Path(previous_dir) / "runs" if previous_dir is not None else None
        self.threads = threads
        self.ledger = CostLedger(Path(self.cfg.cache_dir) / "costs.json")
        self.dataset_id = ""
        self.metrics: dict[str, float] = {}
        self.curves: dict[str, dict[str, list[float]]] = {}
        self.settings: list[dict[str, Any]] = []
        self.timings: dict[str, Any] = {}
        self.counts: dict[str, Any] = {}
        self.costs: dict[str, Any] = {}
        self.per_query: dict[str, dict[str, QueryValues]] = {}
        self.query_positions: dict[str, np.ndarray] = {}
        self.run_file_seconds = 0.0

    def _add_cell(self, key: str, label: str, rule: Optional[str], depth: int, variant: str,
                  ranked: dict[str, np.ndarray], data: dict[str, DirectionData], ms: dict,
                  sources: dict[str, str]) -> None:
        for name, value in cell_metrics(ranked, data).items():
            self.metrics[f"{key}/{name}"] = value
        self.curves[key] = cell_curves(ranked, data)
        self.per_query[key] = cell_query_values(ranked, data)
        for d in ("t2i", "i2t"):
            known = self.query_positions.setdefault(d, data[d].query_positions)
            if not np.array_equal(known, data[d].query_positions):
                raise RuntimeError(f"{key}: the {d} queries differ from the first stage-1 setting's")
        self.settings.append(setting_entry(key, label, rule, depth, ms, variant, sources))
        if self.cfg.write_trec:
            t0 = time.perf_counter()
            write_cell_runs(self.runs_dir, key, ranked, data, reuse_dir=self.previous_runs)
            self.run_file_seconds += time.perf_counter() - t0

    def _stage2_scores(self, reranker: Reranker, bench: Benchmark, data: dict[str, DirectionData],
                       kmax: int, variant: str) -> tuple[float, dict[str, Any], dict[str, DirectionData]]:
        """Stage-2 scores of the first ``kmax`` candidates: (seconds, costs, ``data`` with ``stage2`` set)."""
        scored = reranker.score_candidates(bench.images, [c.text for c in bench.captions], data["t2i"].candidates,
                                           data["i2t"].candidates, kmax, progress=self.processes.is_main)
        data = {"t2i": replace(data["t2i"], stage2=scored.t2i), "i2t": replace(data["i2t"], stage2=scored.i2t)}
        stats, pairs, candidate_slots = scored.stats, scored.pairs, scored.candidate_slots
        if not self.processes.is_main:
            return 0.0, {}, data
        pair_cost = self.ledger.cost(_stage2_context("pair", reranker, self.dataset_id),
                                     stats.seconds.get("itm", 0.0) + stats.seconds.get("itc", 0.0), stats.scored)
        vision_cost = self.ledger.cost(_stage2_context("vision", reranker, self.dataset_id),
                                       stats.seconds.get("vision", 0.0), stats.images_encoded)
        self.costs[f"stage2{'@' + variant if variant else ''}"] = {"pair": pair_cost.as_dict(),
                                                                   "vision_image": vision_cost.as_dict()}
        self.counts[f"stage2{'@' + variant if variant else ''}"] = {
            "model": {"backend": reranker.model.backend, "checkpoint": reranker.model.checkpoint_identity,
                      "vision_features": reranker.model.vision.identity},
            "depth": kmax, "candidate_slots": candidate_slots, "unique_pairs": int(len(pairs.pairs)),
            "unique_keys": stats.unique_keys, "pairs_scored": stats.scored, "pairs_from_cache": stats.cache_hits,
            "images_encoded": stats.images_encoded, "qformer_batches": stats.qformer_batches,
            "oom_events": [vars(e) for e in stats.oom_events],
            "skipped_images": [{"id": i, "reason": r} for i, r in stats.skipped]}
        if stats.processes:
            self.counts[f"stage2{'@' + variant if variant else ''}"]["processes"] = stats.processes
        return stats.seconds.get("total", 0.0), {"pair": pair_cost, "vision": vision_cost}, data

    def run_stage1_setting(self, variant: str, s1cfg: Stage1Config, bench: Benchmark,
                           reranker: Optional[Reranker]) -> None:
        """Stage 1, stage 2 at the largest depth, then every cell of the grid for one stage-1 setting."""
        ab = self.cfg.ablation
        tag = f"@{variant}" if variant else ""
        t0 = time.perf_counter()
        encoder = load_encoder(s1cfg.encoder)
        sink, not_shared = shared_vision_sink(s1cfg, encoder, reranker)
        if sink is not None and self.processes.distributed:  # stage 2's image owners differ from stage 1's shards
            sink, not_shared = None, f"{self.processes.size} processes (sharing needs one)"
        s1 = run_stage1(s1cfg, bench.images, [c.text for c in bench.captions], encoder=encoder, vision_sink=sink,
                        processes=self.processes)
        can_share = hasattr(encoder, "encode_images_and_vision")  # its vision tower may serve stage 2
        del encoder  # free its weights (device memory) before stage 2 runs
        stage1_seconds = time.perf_counter() - t0
        data = direction_data(bench, s1)
        depths = main_depths(ab.depths)  # a direction whose list is shorter than k reranks all of it
        if not self.processes.is_main:  # its share of stage 2; the main process does the rest
            if reranker is not None and depths:
                self._stage2_scores(reranker, bench, data, depths[-1], variant)
            return
        text_cost = self.ledger.cost(_stage1_context("text", s1cfg, s1.encoder, self.dataset_id),
                                     sum(s1.texts.process_seconds) or s1.texts.seconds, s1.texts.encoded_items)
        image_cost = self.ledger.cost(_stage1_context("image", s1cfg, s1.encoder, self.dataset_id),
                                      sum(s1.images.process_seconds) or s1.images.seconds, s1.images.encoded_items)
        search = {d: s1.candidates[d].search_seconds / max(1, len(data[d].ids)) for d in ("t2i", "i2t")}
        ms1 = stage1_latency(text_cost, image_cost, search)
        self.costs[f"stage1{tag}"] = {"text": text_cost.as_dict(), "image": image_cost.as_dict(),
                                      "search_seconds_per_query": search}
        self.counts[f"stage1{tag}"] = s1.summary()
        if can_share:
            self.counts[f"stage1{tag}"]["vision_features_to_stage2"] = {
                "images": sink.images if sink is not None else 0, "not_shared_because": not_shared or None}
        self.timings[f"stage1{tag}"] = {
            "total_seconds": stage1_seconds, "encode_images_seconds": s1.images.seconds,
            "encode_texts_seconds": s1.texts.seconds,
            "index_build_seconds": {d: s1.candidates[d].build_seconds for d in ("t2i", "i2t")},
            "search_seconds": {d: s1.candidates[d].search_seconds for d in ("t2i", "i2t")},
            "ms_per_query": ms1}
        self._add_cell(setting_key("stage1", variant), f"stage 1{tag} (dual encoder)", None, 0, variant,
                       {d: data[d].ids for d in ("t2i", "i2t")}, data, ms1, stage1_sources(text_cost, image_cost))

        if reranker is None or not depths:
            return
        rerank_seconds, costs, data = self._stage2_scores(reranker, bench, data, depths[-1], variant)
        t0, files_before = time.perf_counter(), self.run_file_seconds
        for rule in ab.rules:
            fusion = ab.fusion(rule)
            for k in depths:
                key = setting_key("stage2", variant, rule, k)
                ranked = rerank_both(data, fusion, k)
                self._add_cell(key, f"rerank{tag} {rule} k={k}", rule, k, variant, ranked, data,
                               stage2_latency(ms1, costs["pair"], costs["vision"], k),
                               stage2_sources(text_cost, image_cost, costs["pair"], costs["vision"]))
        files_seconds = self.run_file_seconds - files_before
        grid_seconds = time.perf_counter() - t0 - files_seconds
        self.timings[f"stage2{tag}"] = {
            "rerank_seconds_at_max_depth": rerank_seconds, "grid_derivation_seconds": grid_seconds,
            "run_file_seconds": files_seconds, "cells": len(ab.rules) * len(depths), "max_depth": depths[-1],
            "grid_cost_ratio": (rerank_seconds + grid_seconds) / rerank_seconds if rerank_seconds > 0 else None,
            "grid_cost_ratio_with_run_files": ((rerank_seconds + grid_seconds + files_seconds) / rerank_seconds
                                               if rerank_seconds > 0 else None)}

    def analysis(self) -> dict[str, Any]:
        """The ``analysis`` section (``eval.analysis.analyse``) and ``per_query.npz`` beside results.json."""
        t0 = time.perf_counter()
        cfg = self.cfg.analysis
        boot = BootstrapSettings(cfg.resamples, cfg.confidence, cfg.alpha,
                                 self.cfg.seed if cfg.seed is None else cfg.seed)
        out = analyse(self.per_query, self.settings, self.metrics, self.curves, boot, cfg.recommend_within,
                      cfg.significance)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_per_query(self.out_dir / "per_query.npz", self.per_query, self.query_positions)
        self.timings["analysis_seconds"] = time.perf_counter() - t0
        return out

    def write_results(self, bench: Benchmark, total_seconds: float) -> Path:
        """results.json (atomic write) with every section of the schema."""
        self.counts["dataset"] = bench.summary()
        self.counts["skipped_items"] = [s.as_dict() for s in bench.skipped]
        analysis = self.analysis()
        self.timings["total_seconds"] = total_seconds + self.timings["analysis_seconds"]
        payload = {
            "experiment": self.cfg.experiment, "metrics": self.metrics, "settings": self.settings,
            "curves": self.curves, "analysis": analysis, "timings": self.timings, "counts": self.counts,
            "costs": self.costs,
            "provenance": provenance(config=to_dict(self.cfg), seed=self.cfg.seed,
                                     threads=self.threads.as_dict() if self.threads is not None else None),
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / "results.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        return path


def run_experiment(cfg: ExperimentConfig, processes: Optional[ProcessGroup] = None) -> Path:
    """Run every stage-1 setting and its grid; returns the path of results.json (tables/plots beside it).

    Torch threads for the run (restored afterwards): ``cfg.threads``, else ``OMP_NUM_THREADS`` /
    ``MKL_NUM_THREADS``, else torch's current setting (``eval.runner.threads``). Torch's global CPU generator
    starts from ``cfg.seed`` inside the run and is restored afterwards; numpy's global state is not touched.
    ``processes``: the job's processes (default: from the launcher's environment,
    ``rrbench_base.process_group.join_process_group``; one process when none is set); every process returns the
    path of the one results.json once it is in place.
    """
    import torch

    processes = join_process_group() if processes is None else processes
    start = time.perf_counter()
    threads_before = torch.get_num_threads()
    threads = resolve_threads(cfg.threads, os.environ, threads_before)
    torch.set_num_threads(threads.count)
    log.info("torch threads: %d (from %s)", threads.count, threads.source)
    try:
        with seeded_torch_rng(cfg.seed):  # what draws from torch's global generator in a run sees cfg.seed
            return _run(cfg, start, threads, processes)
    finally:
        torch.set_num_threads(threads_before)


def _run(cfg: ExperimentConfig, start: float, threads: ThreadSetting, processes: ProcessGroup) -> Path:
    """``run_experiment`` after the thread setting; ``start`` = its perf_counter start."""
    import torch

    if not processes.is_main:
        _run_share(cfg, threads, processes)
        processes.barrier()  # the main process has written the outputs
        return Path(cfg.results_dir) / "results.json"
    final = _run_main(cfg, start, threads, processes)
    processes.barrier()
    log.info("results written to %s", final)
    return final / "results.json"


def _run_share(cfg: ExperimentConfig, threads: ThreadSetting, processes: ProcessGroup) -> None:
    """A process other than the main one: its share of every stage-1 setting's encoding and stage-2 pairs."""
    run = ExperimentRun(cfg, threads=threads, processes=processes)
    _run_settings(run, load_experiment_benchmark(run.cfg), processes)


def _run_settings(run: ExperimentRun, bench: Benchmark, processes: ProcessGroup) -> None:
    """Every stage-1 setting of the run and its grid, with the reranker loaded once (when any depth > 0)."""
    needs_stage2 = run.cfg.stage2 is not None and any(k > 0 for k in run.cfg.ablation.depths)
    reranker = load_reranker(run.cfg.stage2, processes) if needs_stage2 else None
    try:
        for variant, s1cfg in run.cfg.stage1_settings().items():
            run.run_stage1_setting(variant, s1cfg, bench, reranker)
    finally:
        if reranker is not None:
            reranker.close()


def _run_main(cfg: ExperimentConfig, start: float, threads: ThreadSetting, processes: ProcessGroup) -> Path:
    """The main process (the only one in a one-process run): everything, outputs staged and swapped in; returns
    the final output directory."""
    from eval.report import build

    outputs = StagedOutputs(cfg.results_dir)
    staging = outputs.begin()
    try:
        run = ExperimentRun(cfg, staging, outputs.previous(), threads, processes)
        if processes.distributed:
            run.timings["processes"] = processes.size
        t0 = time.perf_counter()
        bench = load_experiment_benchmark(run.cfg)
        run.dataset_id = dataset_identity(bench)
        run.timings["load_data_seconds"] = time.perf_counter() - t0
        if run.cfg.write_trec:
            write_qrels_files(run.runs_dir, _qrels_data(bench))
        _run_settings(run, bench, processes)
        path = run.write_results(bench, time.perf_counter() - start)
        build.build_report([path], bench=bench)
        final = outputs.commit()
    except BaseException:
        outputs.abandon()
        raise
    return final


def _qrels_data(bench: Benchmark) -> dict[str, DirectionData]:
    """Ground truth of both directions over all captions and images (for the qrels files)."""
    image_ids = [i.id for i in bench.images]
    caption_ids = [c.id for c in bench.captions]
    def no_candidates(direction: str, queries: int) -> Candidates:
        return Candidates(direction, np.zeros((queries, 0), np.int64), np.zeros((queries, 0)), np.arange(queries))

    return {"t2i": DirectionData(no_candidates("t2i", len(caption_ids)), bench.text_to_image(), caption_ids, image_ids),
            "i2t": DirectionData(no_candidates("i2t", len(image_ids)), bench.image_to_texts(), image_ids, caption_ids)}
