"""Write ``report.html`` and the example figures of one run from its results.json, ``per_query.npz`` and dataset.

When the per-query file, the dataset or the compared cells are not available, one WARNING says what is missing
and nothing is written (the rest of the report is unaffected).
"""

from __future__ import annotations

import logging
from pathlib import Path

from eval.data.benchmark import Benchmark
from eval.report.example_figures import write_example_figures
from eval.report.example_queries import example_set, sample_seed
from eval.report.example_source import load_example_source, plot_file
from eval.report.html_examples import examples_section
from eval.report.html_metrics import metrics_table, recommendations
from eval.report.html_page import PLOTS, page, plots_section
from eval.report.results_file import Results
from eval.report.thumbnails import ThumbnailCache

logger = logging.getLogger(__name__)

PAGE_NAME = "report.html"


def write_example_page(results: Results, out_dir: Path, bench: Benchmark | None = None) -> list[Path]:
    """``report.html``, ``examples_t2i.png/.pdf`` and ``examples_i2t.png/.pdf`` in ``out_dir``; returns the paths
    written ([] after a WARNING when the examples cannot be drawn). The plots are taken from ``out_dir``, else from
    beside results.json. ``bench``: the run's benchmark when the caller has it loaded (else reloaded)."""
    source = load_example_source(results, bench)
    if source is None:
        return []
    seed = sample_seed(results.provenance, source.analysis.seed)
    try:
        shown = example_set(results, source.stored, source.analysis.example_cell, source.analysis.examples, seed)
        in_figures = example_set(results, source.stored, source.analysis.example_cell,
                                 source.analysis.figure_examples, seed)
    except KeyError as error:
        logger.warning("%s: no report.html or example figures: %s", results.experiment, error.args[0])
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = ThumbnailCache(source.bench.images)
    plots = {name: path for name, _ in PLOTS if (path := plot_file(results, out_dir, name)) is not None}
    html = page(results, metrics_table(results), recommendations(results), plots_section(plots),
                examples_section(shown, source.bench, cache, seed))
    target = out_dir / PAGE_NAME
    target.write_text(html, encoding="utf-8")
    written = [target] + write_example_figures(in_figures, source.bench, cache, out_dir, in_figures.queries)
    logger.info("%s: example page %s (%s vs %s)", results.experiment, target, shown.cell.key, shown.reference.key)
    return written
