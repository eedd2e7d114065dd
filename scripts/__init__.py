"""Command-line scripts (run from the repo root: ``python scripts/NAME.py`` or ``python -m scripts.NAME``)."""
