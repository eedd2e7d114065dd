"""Analysis of a run's cells beyond their metrics: significance, ceilings, win/loss, depth recommendation,
and the per-query file the example page is drawn from."""

from eval.analysis.analyse import analyse
from eval.analysis.breakdown import ceiling, ceiling_share, recommend_depth, win_loss
from eval.analysis.config import AnalysisConfig
from eval.analysis.per_query import QueryValues, StoredPerQuery, query_values, read_per_query, write_per_query
from eval.analysis.significance import BootstrapSettings, Comparison, bootstrap_means, compare, shift_p_values

__all__ = ["AnalysisConfig", "BootstrapSettings", "Comparison", "QueryValues", "StoredPerQuery", "analyse",
           "bootstrap_means", "ceiling", "ceiling_share", "compare", "query_values", "read_per_query",
           "recommend_depth", "shift_p_values", "win_loss", "write_per_query"]
