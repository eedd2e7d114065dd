"""Typed config of an experiment's analysis section (significance, recommendation, example page)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from rrbench_base.config_errors import ConfigFieldError


@dataclass
class AnalysisConfig:
    """What ``rrbench run`` adds to the metrics and what ``rrbench report`` shows.

    Attributes:
        significance: paired bootstrap tests and confidence intervals of every cell (the demo's 6,000 queries x
            21 cells took 17.5 s on one CPU thread; time grows with queries x cells x resamples); false leaves the
            ``analysis`` section without them.
        resamples: bootstrap resamples, >= 1000.
        confidence: level of the confidence intervals, in (0, 1).
        alpha: significance level of the Benjamini-Hochberg adjusted p-values, in (0, 1); the tables mark
            differences below it with a dagger.
        seed: seed of the resampling and of the example sample; null = the experiment's seed.
        recommend_within: the recommended depth of a rule is the smallest whose rsum is within this many points
            of the rule's best, >= 0.
        example_cell: the cell whose rankings the example page and figures set beside stage 1's (a setting key
            such as ``stage2/itm/k=10``); null = the cell with the highest rsum.
        examples: queries per direction on the example page (a seeded sample), >= 1.
        figure_examples: queries per direction in ``examples_t2i.png`` / ``examples_i2t.png``, >= 1.
    """

    significance: bool = True
    resamples: int = 10_000
    confidence: float = 0.95
    alpha: float = 0.05
    seed: Optional[int] = None
    recommend_within: float = 1.0
    example_cell: Optional[str] = None
    examples: int = 24
    figure_examples: int = 4

    def __post_init__(self) -> None:
        if self.resamples < 1000:
            raise ConfigFieldError("resamples", f"resamples must be >= 1000, got {self.resamples}")
        for name in ("confidence", "alpha"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ConfigFieldError(name, f"{name} must be in (0, 1), got {value}")
        if not (math.isfinite(self.recommend_within) and self.recommend_within >= 0):
            raise ConfigFieldError("recommend_within", f"recommend_within must be a finite number >= 0, "
                             f"got {self.recommend_within}")
        for name in ("examples", "figure_examples"):
            if getattr(self, name) < 1:
                raise ConfigFieldError(name, f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise ConfigFieldError("seed", f"seed must be in [0, 2**32), got {self.seed}")
