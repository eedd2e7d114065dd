"""One entry point for every dataset format: ``load_benchmark(cfg) -> Benchmark``.

The loader is chosen by ``cfg.format`` from the plain dict :data:`LOADERS`; an unknown name is an
error listing the known ones. :class:`DatasetConfig` and :class:`SyntheticConfig` (defined in
``eval.data.dataset_config``) are re-exported here.
"""

from __future__ import annotations

import logging
from typing import Callable

from eval.data.benchmark import BadInputError, Benchmark
from eval.data.competition import load_competition
from eval.data.dataset_config import DatasetConfig, SyntheticConfig
from eval.data.flickr8k import load_flickr8k
from eval.data.hf_datasets import load_hf
from eval.data.karpathy import load_karpathy
from eval.data.synthetic import load_synthetic
from eval.data.tabular import load_table
from eval.typed_config import ConfigError
from rrbench_base.config_paths import path_note

__all__ = ["DatasetConfig", "SyntheticConfig", "LOADERS", "check_root", "load_benchmark"]

log = logging.getLogger(__name__)

LOADERS: dict[str, Callable[[DatasetConfig], Benchmark]] = {
    "synthetic": load_synthetic,
    "flickr8k": load_flickr8k,
    "karpathy": load_karpathy,
    "table": load_table,
    "hf": load_hf,
    "competition": load_competition,
}


def load_benchmark(cfg: DatasetConfig) -> Benchmark:
    """The Benchmark described by ``cfg`` (images, captions, ground truth, skipped items)."""
    loader = LOADERS.get(cfg.format)
    if loader is None:
        raise ConfigError(f"key 'dataset.format': unknown dataset format {cfg.format!r} "
                          f"(known: {', '.join(sorted(LOADERS))})")
    check_root(cfg)
    bench = loader(cfg)
    log.info("loaded %s", bench.summary())
    return bench


def check_root(cfg: DatasetConfig) -> None:
    """``dataset.root``, when set, must be an existing folder; BadInputError naming it and, for a relative path, the
    absolute path tried and the rule that relative config paths resolve against the current directory."""
    if cfg.root is None or cfg.root.is_dir():
        return
    problem = "is not a folder" if cfg.root.exists() else "folder not found"
    raise BadInputError(f"dataset.root {problem}: {cfg.root}{path_note(cfg.root)}")
