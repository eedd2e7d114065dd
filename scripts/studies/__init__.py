"""One-off study scripts, one folder per study; their outputs and narrative live in ``results/<study>/``."""
