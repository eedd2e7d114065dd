"""The competition training format (DESIGN.md, "The competition format").

``<root>/ImageWordData.csv`` with columns ``image_id,caption`` (one caption per row; an image may have
several rows) and the images in ``<root>/ImageData/``. Image id = the ``image_id`` cell (a file name);
caption id = the 0-based data row number. Captions are Chinese by default (``language: zh``). The
format has no splits: the benchmark's split is ``all``.
"""

from __future__ import annotations

from eval.data.benchmark import Benchmark
from eval.data.dataset_config import DatasetConfig
from eval.data.tabular import TableColumns, load_table_file

CAPTIONS_FILE = "ImageWordData.csv"
IMAGE_DIR = "ImageData"
COLUMNS = TableColumns(image="image_id", caption="caption")


def load_competition(cfg: DatasetConfig) -> Benchmark:
    """Benchmark of a competition-format folder (``format: competition``)."""
    root = cfg.required_path("root")
    annotations = cfg.annotations if cfg.annotations is not None else root / CAPTIONS_FILE
    return load_table_file(annotations, root / IMAGE_DIR, COLUMNS, cfg, cfg.language_or("zh"),
                           cfg.name or root.name)
