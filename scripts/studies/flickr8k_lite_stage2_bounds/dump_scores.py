"""One-off: stage-1 candidates and the reranker's ITM/ITC scores of one Flickr8k split, to an .npz for fusion_bound.py.

Run from the repo root:
``python -m scripts.studies.flickr8k_lite_stage2_bounds.dump_scores --split test --out DIR/test.npz``.
Uses the same config, caches and scoring code as ``rrbench run configs/flickr8k_lite.yaml`` (scores come from the
pair-score cache when that run was made). Arrays: ``{d}_ids`` int64 ``[Q, 100]`` stage-1 candidates (rows of the
split's images for t2i, of its captions for i2t), ``{d}_s1`` their stage-1 scores, ``{d}_itm`` float32
``[Q, depth, 2]`` ITM logits and ``{d}_itc`` ``[Q, depth]`` of the top ``depth``; ``t2i_rel`` ``[N_cap]`` the true
image row; ``i2t_rel`` ``[N_img, 5]`` the true caption rows (-1 padded).
"""

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from eval import direction_data, load_benchmark, load_experiment
from eval.experiment_config import with_cache_dirs
from eval.malloc_tuning import tune_malloc
from stage1_dual import run_stage1
from stage2_rerank import load_reranker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, choices=["val", "test"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--model", default=None, help="stage2.model override (default: the config's reranker)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    tune_malloc()
    torch.set_num_threads(args.threads)
    overrides = [f"dataset.split={args.split}"] + ([f"stage2.model={args.model}"] if args.model else [])
    cfg = with_cache_dirs(load_experiment("configs/flickr8k_lite.yaml", overrides))
    bench = load_benchmark(cfg.dataset)
    texts = [c.text for c in bench.captions]
    # as ``rrbench run`` ranks them: images without captions are no i2t queries
    data = direction_data(bench, run_stage1(cfg.stage1, bench.images, texts))
    assert (data["t2i"].query_positions == np.arange(len(texts))).all(), "t2i queries are not the captions in order"
    assert (data["i2t"].query_positions == np.arange(len(bench.images))).all(), \
        "i2t queries are not the images in order"
    scored = load_reranker(cfg.stage2).score_candidates(bench.images, texts, data["t2i"], data["i2t"], args.depth)
    arrays = {}
    for direction in ("t2i", "i2t"):
        gathered = getattr(scored, direction)
        arrays[f"{direction}_ids"] = data[direction].ids[:, :100]
        arrays[f"{direction}_s1"] = data[direction].scores[:, :100]
        arrays[f"{direction}_itm"] = gathered.itm_logits
        arrays[f"{direction}_itc"] = gathered.itc
    arrays["t2i_rel"] = np.asarray(data["t2i"].relevant)
    arrays["i2t_rel"] = np.array([np.pad(r, (0, 5 - len(r)), constant_values=-1)[:5]
                                  for r in data["i2t"].relevant])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays)
    logging.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
