"""Rebuild tables and plots from saved results.json files: ``rrbench report results/*/results.json [--out DIR]``.

One file: ``table.md``, ``table.tex``, ``table.csv``, the plots (PNG + PDF) and, when its ``per_query.npz`` and
dataset are available, ``report.html`` and ``examples_t2i`` / ``examples_i2t`` (PNG + PDF; see
``eval.report.example_page``) next to it, or in ``--out``.
Several files: the same for each, plus a comparison: one table (``table.*`` with an ``experiment`` column, the
best of each column bold within each experiment only) and the plots ``depth_sweep`` and ``quality_latency`` with
every experiment in one figure. With ``--out X`` everything is written under X (the comparison in X, each
experiment's tables and plots in ``X/<experiment>/``) and nothing beside the input files changes; without it
each experiment's outputs are rebuilt next to its file and the comparison goes to ``comparison/`` beside the
files' common parent directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from eval.data.benchmark import Benchmark
from eval.report.example_page import write_example_page
from eval.report.plots import write_comparison_plots, write_plots
from eval.report.results_file import load_results
from eval.report.tables import write_tables

logger = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  rrbench report results/demo/results.json --out /tmp/demo_report   # one experiment's tables and plots
  rrbench report results/demo/results.json results/flickr8k_lite/results.json --out /tmp/compare
  rrbench report results/demo/results.json --ci --out /tmp/demo_ci   # R@1 95% intervals as table columns
  rrbench report results/*/results.json                # outputs next to each file, comparison in results/comparison
"""


def default_comparison_dir(results_paths: list[Path]) -> Path:
    """``<common parent of the files' directories>/comparison`` (``results/comparison`` for ``results/*/results.json``)."""
    return Path(os.path.commonpath([str(Path(p).resolve().parent) for p in results_paths])) / "comparison"


def _folder_name(experiment: str) -> str:
    """A single safe path component for an experiment name (no separators, not ``.`` or ``..``)."""
    name = experiment.replace("/", "_").replace("\\", "_")
    return name if name.strip(".") else name.replace(".", "_") or "_"


def build_report(results_paths: list[Path], out_dir: Path | None = None, ci: bool = False,
                 bench: Benchmark | None = None) -> list[Path]:
    """Write tables, plots and the example page for each results file, and a merged table and plots when there are
    several.

    Args:
        results_paths: results.json files.
        out_dir: None: each file's outputs go next to it, the comparison table and plots (several files) to
            ``default_comparison_dir``. Given: every output goes under it and nothing else is written (one
            file: its outputs in ``out_dir``; several: the comparison in ``out_dir``, each experiment's
            outputs in ``out_dir/<experiment>``).
        ci: R@1 confidence intervals as columns of the Markdown and LaTeX tables.
        bench: the benchmark of the one results file, already loaded (the runner passes its own); None =
            reload it from the recorded config for the example page.

    Returns:
        Every file written.
    """
    if not results_paths:
        raise ValueError("no results.json files given")
    loaded = [load_results(Path(p)) for p in results_paths]
    names = [r.experiment for r in loaded]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        files = [str(r.path) for r in loaded if r.experiment in duplicates]
        raise ValueError(f"experiment names {duplicates} appear in several files: {files}")
    written: list[Path] = []
    for results in loaded:
        if out_dir is None:
            target = results.path.parent
        else:
            target = Path(out_dir) if len(loaded) == 1 else Path(out_dir) / _folder_name(results.experiment)
        written += write_tables([results], target, ci=ci)
        written += write_plots(results, target)
        written += write_example_page(results, target, bench if len(loaded) == 1 else None)
        logger.info("report for %s written to %s", results.experiment, target)
    if len(loaded) > 1:
        target = Path(out_dir) if out_dir is not None else default_comparison_dir([r.path for r in loaded])
        written += write_tables(loaded, target, ci=ci)
        written += write_comparison_plots(loaded, target)
        logger.info("comparison table and plots of %d experiments written to %s", len(loaded), target)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ``report`` subcommand."""
    parser.add_argument("results", nargs="+", type=Path, help="results.json files (e.g. results/*/results.json)")
    parser.add_argument(
        "--out", type=Path, default=None,
        help="write every output under DIR and nothing next to the input files: one file: its tables and "
        "plots; several: the comparison table and plots in DIR, each experiment's tables and plots in DIR/<experiment> "
        "(default: outputs next to each file, comparison in <results root>/comparison)",
    )
    parser.add_argument("--ci", action="store_true",
                        help="add the bootstrap confidence intervals of R@1 (both directions) as table columns "
                        "(table.md / table.tex; table.csv always has every interval)")


def run(args: argparse.Namespace) -> int:
    """Run the ``report`` subcommand; returns the exit status."""
    written = build_report(list(args.results), args.out, ci=args.ci)
    for path in written:
        logger.info("wrote %s", path)
    return 0


def main(argv: list[str]) -> int:
    """Stand-alone entry point: ``python -m eval.report.build results/*/results.json [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="rrbench report", description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
