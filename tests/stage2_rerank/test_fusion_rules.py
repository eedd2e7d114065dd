"""The fusion rules are named once (``stage2_rerank.fusion_rules``) and every other place takes them from there."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest

from stage2_rerank.bench.parity import rule_parity, stage2_rule_scores
from stage2_rerank.config import ConfigFieldError, FusionConfig, FusionParameters
from stage2_rerank.fusion import FUSION_RULES
from stage2_rerank.fusion_rules import (
    DEFAULT_RULES,
    FUSION_RULE_DESCRIPTIONS,
    FUSION_RULE_NAMES,
    STAGE2_ONLY_RULES,
    describe_rules,
)
from stage2_rerank.types import PairScores, RerankStats


def test_every_place_takes_the_names_from_fusion_rules():
    from eval.experiment_config import AblationConfig

    assert FUSION_RULE_NAMES == ("itm", "itm+itc", "itm+stage1", "alpha", "rrf", "residual")
    assert tuple(FUSION_RULES) == FUSION_RULE_NAMES
    assert tuple(FUSION_RULE_DESCRIPTIONS) == FUSION_RULE_NAMES
    assert set(DEFAULT_RULES) <= set(FUSION_RULE_NAMES) and set(STAGE2_ONLY_RULES) <= set(FUSION_RULE_NAMES)
    assert typing.get_args(typing.get_type_hints(FusionConfig)["rule"]) == FUSION_RULE_NAMES
    (rule_type,) = typing.get_args(typing.get_type_hints(AblationConfig)["rules"])
    assert typing.get_args(rule_type) == FUSION_RULE_NAMES
    assert AblationConfig().rules == list(DEFAULT_RULES)


def test_describe_rules_gives_one_line_per_rule():
    lines = describe_rules()
    assert [line.split(": ", 1)[0] for line in lines] == list(FUSION_RULE_NAMES)
    assert describe_rules(["rrf"]) == [f"rrf: {FUSION_RULE_DESCRIPTIONS['rrf']}"]


def test_fusion_parameters_are_declared_once_and_shared():
    from eval.experiment_config import AblationConfig

    names = [f.name for f in dataclasses.fields(FusionParameters)]
    assert names == ["alpha", "rrf_k", "stage1_scale"]
    for cls in (FusionConfig, AblationConfig):
        assert issubclass(cls, FusionParameters)
        assert not set(names) & set(vars(cls).get("__annotations__", {})), cls  # inherited, not redeclared
    grid = AblationConfig(rules=["alpha", "residual"], alpha=0.3, rrf_k=5, stage1_scale=2.0)
    assert grid.fusion("residual") == FusionConfig("residual", alpha=0.3, rrf_k=5, stage1_scale=2.0)
    with pytest.raises(ConfigFieldError) as error:
        FusionParameters(alpha=1.5)
    assert error.value.key == "alpha"


def test_unknown_rule_is_refused_naming_the_known_ones():
    from eval.experiment_config import AblationConfig
    from rrbench_base.config_errors import ConfigFieldError as FieldError

    with pytest.raises(ConfigFieldError, match="itm, itm\\+itc, itm\\+stage1, alpha, rrf, residual"):
        FusionConfig("mean")  # type: ignore[arg-type]
    with pytest.raises(FieldError, match="rules must be among") as error:
        AblationConfig(rules=["itm", "mean"])  # type: ignore[list-item]
    assert error.value.key == "rules"


def test_stage2_rule_scores_are_the_itm_and_itm_plus_itc_scores():
    logits = np.array([[0.0, 1.5], [0.2, -0.5], [1.0, 3.0]], np.float32)
    itc = np.array([0.1, 0.7, -0.2], np.float32)
    scores = PairScores(logits, itc, RerankStats())
    np.testing.assert_allclose(stage2_rule_scores(scores, "itm"), logits[:, 1])
    np.testing.assert_allclose(stage2_rule_scores(scores, "itm+itc"), logits[:, 1] + itc, rtol=1e-6)
    with pytest.raises(ValueError, match="reads stage-1 scores"):
        stage2_rule_scores(scores, "alpha")
    noisy = PairScores(logits + np.float32(0.01), itc, RerankStats())
    reports = rule_parity(scores, noisy, [np.array([0, 1, 2])])
    assert list(reports) == list(STAGE2_ONLY_RULES)
    assert reports["itm"]["max_abs_error"] == pytest.approx(0.01, abs=1e-6)
    assert reports["itm+itc"]["top1_agreement"] == 1.0


def test_recipe_validation_fusions_keep_their_labels():
    from eval.reranker_recipes.common import DEFAULT_FUSIONS

    assert list(DEFAULT_FUSIONS) == ["itm", "itm+itc", "alpha0.5", "rrf"]
    assert [fusion.rule for fusion in DEFAULT_FUSIONS.values()] == list(DEFAULT_RULES)
    assert DEFAULT_FUSIONS["alpha0.5"].alpha == 0.5
