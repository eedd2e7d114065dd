"""Build competition task files (word_test/word_data/image_test/image_data + ground_truth.csv) and a reduced
ImageWordData.csv from held-out pairs of a training file, to validate ``rrbench compete`` with an answer key.

    python scripts/make_competition_holdout.py ../shared/data/teddy2024/ImageWordData.csv OUT_DIR \
        [--held-out 0.2] [--seed 0] [--text-id-prefix Word-]

Then: ``rrbench compete --data OUT_DIR --out RESULTS files.images=<abs path of the source ImageData>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from eval.competition.holdout import make_holdout


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_file", type=Path, help="ImageWordData.csv (image_id,caption)")
    parser.add_argument("out_dir", type=Path, help="folder for the task files")
    parser.add_argument("--held-out", type=float, default=0.2, help="fraction of images held out (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the gallery shuffles")
    parser.add_argument("--text-id-prefix", default="Word-", help="text id = prefix + source row number")
    args = parser.parse_args(argv)
    summary = asdict(make_holdout(args.train_file, args.out_dir, args.held_out, args.seed, args.text_id_prefix))
    sys.stdout.write(json.dumps(summary) + "\n")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
