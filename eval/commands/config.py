"""``rrbench config``: validate an experiment config and print it resolved, or document every field."""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """\
examples:
  rrbench config configs/demo.yaml                   # validate, print the resolved config as YAML
  rrbench config configs/demo.yaml stage1.depth=50   # ... with an override applied
  rrbench config --doc                               # every field, the path rule, the fusion rules
  rrbench config --doc | grep -A3 '^stage1.index.type$'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="experiment YAML to validate and print resolved")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    parser.add_argument("--doc", action="store_true",
                        help="print every config field (type, default, meaning) as plain text")


def run(args: argparse.Namespace) -> int:
    import yaml

    from eval.config_doc import config_reference, render_text
    from eval.experiment_config import ExperimentConfig, load_experiment
    from eval.typed_config import to_dict
    from stage2_rerank.fusion_rules import describe_rules

    if args.doc:
        rules = ("Fusion rules (ablation.rules; parameters: ablation.alpha, rrf_k, stage1_scale)",
                 describe_rules())
        sys.stdout.write(render_text(config_reference(ExperimentConfig), sections=[rules]))
        return 0
    if not args.config:
        raise SystemExit("rrbench config: give a CONFIG file or --doc")
    cfg = load_experiment(args.config, args.overrides)
    sys.stdout.write(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))
    return 0
