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

from eval.data.benchmark import Benchmark
from eval.data.loaders import load_benchmark
from eval.experiment_config import load_experiment, with_cache_dirs
from eval.malloc_tuning import tune_malloc
from stage1_dual.pipeline import Stage1Result, run_stage1
from stage2_rerank.candidate_pairs import collect_candidate_pairs, gather_candidate_scores
from stage2_rerank.rerank import load_reranker


def stage1_lists(bench: Benchmark, stage1: Stage1Result) -> dict[str, dict[str, np.ndarray | list[np.ndarray]]]:
    """Per direction: stage 1's ``ids`` ``[Q, N]``, ``scores`` ``[Q, N]``, ``query_positions`` ``[Q]`` and
    ``relevant`` (t2i: int64 ``[Q]`` image rows; i2t: Q arrays of caption rows), as ``rrbench run`` ranks them:
    images without captions are no i2t queries."""
    t2i, i2t = stage1.candidates["t2i"], stage1.candidates["i2t"]
    text_to_image, image_to_texts = bench.text_to_image(), bench.image_to_texts()
    keep = np.array([len(image_to_texts[p]) > 0 for p in i2t.query_positions], dtype=bool)
    return {
        "t2i": {"ids": t2i.ids, "scores": t2i.scores, "query_positions": t2i.query_positions,
                "relevant": text_to_image[t2i.query_positions]},
        "i2t": {"ids": i2t.ids[keep], "scores": i2t.scores[keep], "query_positions": i2t.query_positions[keep],
                "relevant": [image_to_texts[p] for p in i2t.query_positions[keep]]},
    }


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
    data = stage1_lists(bench, run_stage1(cfg.stage1, bench.images, texts))
    t2i_queries, i2t_queries = data["t2i"]["query_positions"], data["i2t"]["query_positions"]
    assert (t2i_queries == np.arange(len(texts))).all(), "t2i queries are not the captions in order"
    assert (i2t_queries == np.arange(len(bench.images))).all(), "i2t queries are not the images in order"
    pairs = collect_candidate_pairs(data["t2i"]["ids"], data["i2t"]["ids"], args.depth, t2i_queries, i2t_queries)
    scores = load_reranker(cfg.stage2).score_pairs(bench.images, texts, pairs.pairs)
    arrays = {}
    for direction in ("t2i", "i2t"):
        gathered = gather_candidate_scores(scores.itm_logits, scores.itc, getattr(pairs, f"{direction}_rows"))
        arrays[f"{direction}_ids"] = data[direction]["ids"][:, :100]
        arrays[f"{direction}_s1"] = data[direction]["scores"][:, :100]
        arrays[f"{direction}_itm"] = gathered.itm_logits
        arrays[f"{direction}_itc"] = gathered.itc
    arrays["t2i_rel"] = np.asarray(data["t2i"]["relevant"])
    arrays["i2t_rel"] = np.array([np.pad(r, (0, 5 - len(r)), constant_values=-1)[:5]
                                  for r in data["i2t"]["relevant"]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays)
    logging.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
