"""``rrbench report``: tables and plots rebuilt from saved results.json files (no models)."""

from eval.report.build import EXAMPLES, add_arguments, run

__all__ = ["EXAMPLES", "add_arguments", "run"]
