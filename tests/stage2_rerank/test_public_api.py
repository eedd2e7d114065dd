"""The public face of stage 2: ``stage2_rerank`` exports the inference API, loading neither training nor bench."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import stage2_rerank
for name in stage2_rerank.__all__:
    getattr(stage2_rerank, name)
print(sorted(m for m in sys.modules if m.startswith(("stage2_rerank.training", "stage2_rerank.bench"))))
"""


def test_every_exported_name_resolves_without_training_or_bench():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_documented_inference_names_are_exported():
    import stage2_rerank
    from stage2_rerank.types import PairScores

    for name in ("load_reranker", "Reranker", "RerankerConfig", "FusionConfig", "PairScores", "RerankStats",
                 "CandidateScores", "rerank_at_depth", "fused_scores", "FUSION_RULES", "BACKENDS", "VISION_PROVIDERS"):
        assert name in stage2_rerank.__all__
    assert stage2_rerank.PairScores is PairScores
