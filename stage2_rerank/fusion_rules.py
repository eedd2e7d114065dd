"""The fusion rules of stage 2 by name, each with one sentence saying what it ranks by (imports nothing heavy).

This is the one place the rule names are spelled: ``FusionConfig.rule`` and ``ablation.rules`` take them,
``stage2_rerank.fusion.FUSION_RULES`` implements each (a test keeps its keys equal to :data:`FUSION_RULE_NAMES`),
and ``rrbench config --doc`` prints :data:`FUSION_RULE_DESCRIPTIONS`. Every rule scores the first k candidates
of a query, higher = better; its parameters (``alpha``, ``rrf_k``, ``stage1_scale``) are the fields of
``stage2_rerank.config.FusionParameters``.
"""

from __future__ import annotations

import typing
from typing import Literal

FusionRuleName = Literal["itm", "itm+itc", "itm+stage1", "alpha", "rrf", "residual"]
FUSION_RULE_NAMES: tuple[FusionRuleName, ...] = typing.get_args(FusionRuleName)

FUSION_RULE_DESCRIPTIONS: dict[str, str] = {
    "itm": "the ITM match logit alone (ALBEF, X-VLM).",
    "itm+itc": "match logit + stage 2's own ITC cosine of the pair (LAVIS BLIP/BLIP-2's itm_logit + itc_sim, "
               "whatever stage 1 is).",
    "itm+stage1": "match logit + the stage-1 score: LAVIS's BLIP-2 rule exactly (score_matrix = itm_logit + "
                  "topk_sim) when stage 1 is blip2_itc on the reranker's checkpoint.",
    "alpha": "alpha * ITM match probability + (1 - alpha) * stage-1 score min-max scaled per query over its "
             "first k candidates to [0, 1] (a constant row gives 0.5), so both terms share the [0, 1] range.",
    "rrf": "reciprocal-rank fusion 1 / (rrf_k + stage-1 rank) + 1 / (rrf_k + ITM rank), ranks from 1 among the k "
           "(Cormack et al.).",
    "residual": "stage1_scale * raw stage-1 score + ITM logit gap (match - no-match): the score a reranker trained "
                "with the residual listwise loss ranks by.",
}
"""Rule name -> what it ranks by (one sentence; ``stage2_rerank.fusion`` has the formulas as code)."""

DEFAULT_RULES: tuple[FusionRuleName, ...] = ("itm", "itm+itc", "alpha", "rrf")
"""The rules compared when none are named (``ablation.rules``' default, the training recipes' validation)."""

STAGE2_ONLY_RULES: tuple[FusionRuleName, ...] = ("itm", "itm+itc")
"""The rules whose score reads no stage-1 score (stage-2 benchmarks compare precisions on these)."""


def describe_rules(names: typing.Iterable[str] = FUSION_RULE_NAMES) -> list[str]:
    """``"<name>: <description>"`` of each rule in ``names`` (all rules by default)."""
    return [f"{name}: {FUSION_RULE_DESCRIPTIONS[name]}" for name in names]
