"""``rrbench report``: tables and plots rebuilt from saved results.json files (no models)."""

from eval.report.build import add_arguments, run

__all__ = ["add_arguments", "run"]
