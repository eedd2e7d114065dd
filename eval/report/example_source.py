"""What the example page and figures are drawn from, reloaded without running a model: ``per_query.npz`` beside
results.json, the run's analysis settings and its benchmark (images and captions), rebuilt from the config that
results.json records (``provenance.config``).

``load_example_source`` returns None, after logging one WARNING that says what is missing, when any of it is not
available (a results file written before the analysis existed, a dataset that moved or changed), so a report
never fails for lack of examples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.analysis.config import AnalysisConfig
from eval.analysis.per_query import DIRECTIONS, FILE_NAME, StoredPerQuery, read_per_query
from eval.data.benchmark import Benchmark
from eval.experiment_config import ExperimentConfig, load_experiment_benchmark, with_cache_dirs
from eval.report.results_file import Results
from eval.typed_config import from_dict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExampleSource:
    """Everything the examples need: the per-query file, the benchmark and the analysis settings."""

    stored: StoredPerQuery
    bench: Benchmark
    analysis: AnalysisConfig


def _benchmark_problem(results: Results, bench: Benchmark, stored: StoredPerQuery) -> str | None:
    """Why ``bench`` is not the benchmark the run evaluated (None when it looks like it)."""
    recorded = results.counts.get("dataset") if isinstance(results.counts, dict) else None
    if isinstance(recorded, dict):
        for name, have in (("images", len(bench.images)), ("captions", len(bench.captions))):
            if name in recorded and recorded[name] != have:
                return f"the dataset now has {have} {name}, the run had {recorded[name]}"
    sizes = {"t2i": (len(bench.captions), len(bench.images)), "i2t": (len(bench.images), len(bench.captions))}
    for d in DIRECTIONS:
        queries, gallery = sizes[d]
        positions, ids = stored.query_positions[d], stored.top_ids[d]
        if (positions.size and positions.max() >= queries) or (ids.size and ids.max() >= gallery):
            return f"the {d} positions of {FILE_NAME} exceed the dataset's items"
    return None


def load_example_source(results: Results, bench: Benchmark | None = None) -> ExampleSource | None:
    """The example source of ``results`` (see the module docstring), or None after one WARNING naming what is
    missing. ``bench``: the run's benchmark, when the caller has it; otherwise it is loaded as the run loaded it
    (``load_experiment_benchmark`` with the run's own config and cache folders, relative paths from the current
    directory as the run resolved them). Either way it is checked against the run's counts and positions."""
    per_query = results.path.parent / FILE_NAME
    where = f"{results.experiment}: no report.html or example figures"
    if not per_query.is_file():
        logger.warning("%s: %s is missing (written by `rrbench run` since the analysis was added; rerun the "
                       "experiment, which reuses every cache)", where, per_query)
        return None
    config = results.provenance.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("dataset"), dict):
        logger.warning("%s: %s records no dataset config (provenance.config.dataset)", where, results.path)
        return None
    try:
        stored = read_per_query(per_query)
        cfg = with_cache_dirs(from_dict(ExperimentConfig, config, f"{results.path}: provenance.config"))
        bench = load_experiment_benchmark(cfg) if bench is None else bench
    except Exception as error:  # noqa: BLE001 - any failure here only costs the examples, never the report
        logger.warning("%s: cannot load the per-query file or the dataset: %s", where, error)
        return None
    problem = _benchmark_problem(results, bench, stored)
    if problem is None and np.setdiff1d([s.key for s in results.settings], stored.cells).size:
        problem = f"{FILE_NAME} lacks cells of results.json (an older file?)"
    if problem is not None:
        logger.warning("%s: %s", where, problem)
        return None
    return ExampleSource(stored, bench, cfg.analysis)


def plot_file(results: Results, out_dir: Path, name: str) -> Path | None:
    """``<name>.png`` of the report in ``out_dir``, else beside results.json; None when neither exists."""
    for folder in (Path(out_dir), results.path.parent):
        if (folder / f"{name}.png").is_file():
            return folder / f"{name}.png"
    return None
