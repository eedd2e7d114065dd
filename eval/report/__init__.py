"""Paper-style tables (Markdown, LaTeX, CSV) and plots (PNG, PDF) built from saved results.json files only."""
