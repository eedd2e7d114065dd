"""A realistic results.json fixture: simulated stage-1 scores, reranking at several depths, real metrics."""

import json
from pathlib import Path

import numpy as np
import pytest

from eval.analysis import BootstrapSettings, analyse, query_values
from eval.metrics import recall_curves, retrieval_metrics

DEPTHS = (1, 5, 10, 20, 50, 100)
RULES = {"itm": 1.6, "itm+itc": 2.2}  # rule -> strength of the simulated cross-encoder's signal
CAPTIONS_PER_IMAGE = 5


def _rank(scores: np.ndarray, depth: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :depth]


def _rerank(ranked: np.ndarray, new_scores: np.ndarray, depth: int) -> np.ndarray:
    """Reorder the first `depth` candidates of each row by `new_scores` (full-gallery score matrix)."""
    head = ranked[:, :depth]
    order = np.argsort(-np.take_along_axis(new_scores, head, axis=1), axis=1, kind="stable")
    return np.concatenate([np.take_along_axis(head, order, axis=1), ranked[:, depth:]], axis=1)


def make_results(experiment: str = "demo", seed: int = 0, num_images: int = 120, retrieve_depth: int = 100) -> dict:
    """A results.json dict following the runner's schema, with metrics computed by eval.metrics."""
    rng = np.random.default_rng(seed)
    num_captions = num_images * CAPTIONS_PER_IMAGE
    caption_image = np.repeat(np.arange(num_images), CAPTIONS_PER_IMAGE)
    relevant = caption_image[:, None] == np.arange(num_images)[None, :]  # [captions, images]
    stage1 = rng.normal(size=relevant.shape) + 1.7 * relevant
    t2i_stage1 = _rank(stage1, retrieve_depth)
    i2t_stage1 = _rank(stage1.T, retrieve_depth)
    image_captions = [np.flatnonzero(caption_image == i) for i in range(num_images)]

    metrics, curves = {}, {}
    settings = [{"key": "stage1", "label": "stage 1 (dual encoder)", "rule": None, "depth": 0,
                 "ms_per_query": {"t2i": 1.3, "i2t": 2.0}}]
    cells = {"stage1": (t2i_stage1, i2t_stage1)}
    for rule, strength in RULES.items():
        cross = stage1 + rng.normal(size=relevant.shape) + strength * relevant
        for depth in DEPTHS:
            key = f"stage2/{rule}/k={depth}"
            cells[key] = (_rerank(t2i_stage1, cross, depth), _rerank(i2t_stage1, cross.T, depth))
            settings.append({"key": key, "label": f"rerank {rule} k={depth}", "rule": rule, "depth": depth,
                             "ms_per_query": {"t2i": round(1.3 + 1.7 * depth, 2), "i2t": round(2.0 + 1.75 * depth, 2)}})
    for key, (t2i, i2t) in cells.items():
        for name, value in retrieval_metrics(t2i, caption_image, i2t, image_captions).items():
            metrics[f"{key}/{name}"] = value
        curves[key] = recall_curves(t2i, caption_image, i2t, image_captions)
    per_query = {key: {"t2i": query_values(t2i, caption_image, "t2i"), "i2t": query_values(i2t, image_captions, "i2t")}
                 for key, (t2i, i2t) in cells.items()}
    analysis = analyse(per_query, settings, metrics, curves, BootstrapSettings(resamples=1000, seed=seed), 1.0)
    return {
        "experiment": experiment,
        "metrics": metrics,
        "settings": settings,
        "curves": curves,
        "analysis": analysis,
        "timings": {"stage1": {"encode_s": 3.2, "index_build_s": 0.01, "search_s": 0.05},
                    "stage2": {"rerank_s": 41.7, "pairs_per_s": 290.4}},
        "counts": {"t2i_queries": num_captions, "i2t_queries": num_images, "images": num_images,
                   "captions": num_captions, "unique_pairs_scored": 12103, "skipped": 0},
        "provenance": {"git_sha": "0123456789abcdef", "seed": seed, "cpu": "AMD EPYC", "gpu": None,
                       "versions": {"torch": "2.14.1", "numpy": np.__version__},
                       "config": {"dataset": {"name": "synthetic", "split": "test"}, "retrieve_depth": retrieve_depth}},
    }


def write_results(directory: Path, data: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def results_data() -> dict:
    return make_results()


@pytest.fixture
def results_path(tmp_path, results_data) -> Path:
    return write_results(tmp_path / "results" / results_data["experiment"], results_data)


TINY_ANALYSIS = """
analysis:
  example_cell: stage2/itm+itc/k=10
  examples: 6
  figure_examples: 2
"""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """results.json of a real tiny run (random models, synthetic data; its report.html and example figures beside
    it), run once per session."""
    from eval.experiment_config import load_experiment
    from eval.runner.experiment import run_experiment
    from tests.tiny_experiment import write_tiny_experiment

    config = write_tiny_experiment(tmp_path_factory.mktemp("tiny_page"), extra_yaml=TINY_ANALYSIS)
    return run_experiment(load_experiment(config))
