"""``rrbench data CONFIG [key=value ...]``: load a dataset, print its summary and every skipped item.

CONFIG is an experiment YAML (its ``dataset:`` section is used) or a YAML holding a dataset section alone.
Errors in the config (a directory or missing file given as CONFIG, a bad key or value) are ConfigErrors
naming the file and the key; errors in the data are BadInputErrors naming the file and row.
"""

from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """\
examples:
  rrbench data configs/demo.yaml                     # summary and skipped items of the demo's dataset
  rrbench data configs/flickr8k_lite.yaml split=val limit=100
  rrbench data configs/flickr8k_lite.yaml on_bad_input=skip   # list every bad item instead of stopping
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML or dataset-only YAML")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides of the dataset section, "
                                                     "e.g. on_bad_input=skip split=val")


def run(args: argparse.Namespace) -> int:
    from eval.data.dataset_config import DatasetConfig
    from eval.data.loaders import load_benchmark
    from eval.typed_config import ConfigError, apply_overrides, from_dict, read_yaml

    raw = read_yaml(args.config)  # a directory, a missing or unreadable file: ConfigError naming it
    where = str(args.config) + (f" (with overrides {' '.join(args.overrides)})" if args.overrides else "")
    if "dataset" in raw:
        if not isinstance(raw["dataset"], dict):
            raise ConfigError(f"{where}: key 'dataset': expected a mapping (the dataset section), "
                              f"got {raw['dataset']!r}")
        section, prefix = raw["dataset"], "dataset"
    else:
        section, prefix = raw, ""
    cfg = from_dict(DatasetConfig, apply_overrides(section, args.overrides), where, prefix=prefix)
    bench = load_benchmark(cfg)
    report = {"summary": bench.summary(), "skipped": [s.as_dict() for s in bench.skipped]}
    sys.stdout.write(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 0
