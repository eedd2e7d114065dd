"""The ``rrbench`` command line: one subcommand per job, each implemented in its own module.

Every subcommand module exposes ``add_arguments(parser)``, ``run(args) -> int`` and ``EXAMPLES`` (example
command lines its ``--help`` ends with); the table below maps names to modules. Command modules import heavy
libraries (torch, models) inside ``run`` only, so ``rrbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from eval.malloc_tuning import tune_malloc

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("eval.commands.run", "run one experiment config (stage 1, stage 2, ablation grid, report)"),
    "report": ("eval.commands.report", "rebuild tables and plots from saved results.json files"),
    "data": ("eval.commands.data", "load a dataset config, print its summary and every skipped item"),
    "compete": ("eval.commands.compete", "competition mode: result1.csv (text to image) and result2.csv (image to text)"),
    "config": ("eval.commands.config", "validate an experiment config and print it resolved, or document every field"),
}

EXAMPLES = """\
examples:
  rrbench run configs/demo.yaml                      # the demo experiment, outputs in results/demo/
  rrbench report results/demo/results.json --out /tmp/demo_report
  rrbench config --doc                               # every config key

'rrbench COMMAND --help' shows each command's options and examples.
"""

OWN_LOGGERS = ("eval", "stage1_dual", "stage2_rerank", "rrbench")
"""Top-level logger names of rrbench's packages (and of the CLI's own messages)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrbench",
        description="Two-stage image-text retrieval benchmark: dual-encoder retrieval, ITM reranking, evaluation.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging for rrbench, INFO for libraries")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text, epilog=module.EXAMPLES,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        sub_parser.set_defaults(_module=module_name)
        module.add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    tune_malloc()
    user_errors = _user_errors()
    configure_logging(args.verbose)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except user_errors as exc:
        if args.verbose:
            raise
        logging.getLogger("rrbench").error("%s: %s", type(exc).__name__, exc)
        return 2


def configure_logging(verbose: bool) -> None:
    """Log to stderr: rrbench's own loggers (``OWN_LOGGERS``) at INFO, every other (library) logger at WARNING.

    So progress stays visible while faiss, transformers, datasets, PIL, ... stay quiet. ``verbose``: own
    loggers at DEBUG and library loggers at INFO.
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's config, data or models: reported in one line (``-v`` shows the traceback)."""
    from eval.data.benchmark import BadInputError
    from eval.data.hf_datasets import HubUnavailableError
    from eval.report.results_file import ResultsFileError
    from eval.typed_config import ConfigError
    from rrbench_base.image_refs import BadImageError
    from stage1_dual.protocols import Stage1Error
    from stage2_rerank.protocols import RerankerLoadError, RerankInputError

    return (ConfigError, BadInputError, HubUnavailableError, ResultsFileError, Stage1Error, BadImageError,
            RerankerLoadError, RerankInputError, FileNotFoundError)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
