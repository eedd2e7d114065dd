"""The public face of eval: every exported name resolves, and the documented ones are there."""

from __future__ import annotations

import eval as rr_eval
from eval.metrics import retrieval_metrics


def test_every_exported_name_resolves():
    for name in rr_eval.__all__:
        assert getattr(rr_eval, name) is not None
    assert rr_eval.retrieval_metrics is retrieval_metrics


def test_the_documented_names_are_exported():
    for name in ("load_benchmark", "run_experiment", "load_experiment", "retrieval_metrics", "text_to_image_metrics",
                 "image_to_text_metrics", "rsum", "recall_curves", "DatasetConfig", "Benchmark", "direction_data"):
        assert name in rr_eval.__all__
