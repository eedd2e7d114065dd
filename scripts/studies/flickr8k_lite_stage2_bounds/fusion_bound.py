"""One-off: how far any linear fusion of stage 1 with the reranker's scores (and optional extra signals) can go.

Run from the repo root after dump_scores.py::

    python -m scripts.studies.flickr8k_lite_stage2_bounds.fusion_bound --val DIR/val.npz --test DIR/test.npz \
        [--extra NAME=FILE.npz ...]

Two families of fused scores for the top-k candidates of a query (candidates below k keep their stage-1 order):
linear, z(stage 1) + w_itm z(ITM logit gap) + w_itc z(ITC) + sum_e w_e z(extra_e), each z-scored within the
query's top k (w in 0, 0.125, ..., 1.5); and the shipped ``alpha`` rule, a p_itm + (1 - a) minmax(stage 1)
(a in 0, 0.05, ..., 1). An extra file holds full
similarity matrices ``val_sim`` / ``test_sim`` float ``[N_cap, N_img]`` of the split. For each direction the grid
(k in {5, 10} x both families) is searched three ways: picked on test and read on test (an oracle: an
upper bound for these signals, not a result), picked on val and read on val, picked on val and read on test (a
fair protocol). Prints R@1 in %.
"""

import argparse
import itertools
from pathlib import Path

import numpy as np

from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion import fuse_alpha, fused_order
from stage2_rerank.types import CandidateScores

WEIGHTS = tuple(np.arange(13) * 0.125)
ALPHAS = tuple(np.arange(21) * 0.05)


def zscore(x: np.ndarray) -> np.ndarray:
    """Per-row standardisation of ``[Q, k]`` scores."""
    return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)


def top1_recall(ranked: np.ndarray, relevant: np.ndarray, direction: str) -> float:
    """R@1 in %: t2i ``relevant`` [Q] image rows; i2t ``relevant`` [Q, 5] caption rows, -1 padded."""
    top = ranked[:, 0]
    hit = top == relevant if direction == "t2i" else (relevant == top[:, None]).any(1)
    return 100.0 * float(hit.mean())


def signals(dump: dict, extras: dict, direction: str, k: int) -> list[np.ndarray]:
    """z-scored ``[Q, k]`` signals: stage 1, ITM gap, ITC, then each extra similarity at the candidates."""
    ids = dump[f"{direction}_ids"][:, :k]
    itm = dump[f"{direction}_itm"][:, :k].astype(np.float64)
    out = [zscore(dump[f"{direction}_s1"][:, :k].astype(np.float64)), zscore(itm[..., 1] - itm[..., 0]),
           zscore(dump[f"{direction}_itc"][:, :k].astype(np.float64))]
    for sim in extras.values():
        matrix = sim if direction == "t2i" else sim.T
        out.append(zscore(matrix[np.arange(len(ids))[:, None], ids].astype(np.float64)))
    return out


def alpha_score(dump: dict, direction: str, k: int, alpha: float) -> np.ndarray:
    """The shipped ``alpha`` rule (``stage2_rerank.fusion.fuse_alpha``) on the top k: ``[Q, k]``."""
    stage2 = CandidateScores(dump[f"{direction}_itm"][:, :k], dump[f"{direction}_itc"][:, :k])
    return fuse_alpha(stage2, dump[f"{direction}_s1"][:, :k], FusionConfig(rule="alpha", alpha=float(alpha)))


def fused_r1(dump: dict, score: np.ndarray, direction: str, k: int) -> float:
    """R@1 after reordering the top k by ``score`` ``[Q, k]`` with the pipeline's ``fused_order``."""
    order = fused_order(score)
    ranked = dump[f"{direction}_ids"].copy()
    ranked[:, :k] = np.take_along_axis(ranked[:, :k], order, 1)
    return top1_recall(ranked, dump[f"{direction}_rel"], direction)


def grid(dump: dict, extras: dict, direction: str, max_depth: int) -> dict:
    """{(k, rule, weights): R@1} over the whole grid (depths above the dump's scored depth are skipped)."""
    results = {}
    for k in (d for d in (5, 10) if d <= max_depth):
        zs = signals(dump, extras, direction, k)
        for weights in itertools.product(WEIGHTS, repeat=len(zs) - 1):
            score = zs[0] + sum(w * z for w, z in zip(weights, zs[1:]))
            results[(k, "linear", weights)] = fused_r1(dump, score, direction, k)
        for alpha in ALPHAS:
            results[(k, "alpha", (alpha,))] = fused_r1(dump, alpha_score(dump, direction, k, alpha), direction, k)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--extra", action="append", default=[], help="NAME=FILE.npz with val_sim / test_sim")
    args = parser.parse_args()
    dumps = {split: dict(np.load(path)) for split, path in (("val", args.val), ("test", args.test))}
    extra_files = dict(item.split("=", 1) for item in args.extra)
    names = ["itm", "itc", *extra_files]
    for direction in ("t2i", "i2t"):
        tables = {}
        for split, dump in dumps.items():
            extras = {name: np.load(path)[f"{split}_sim"] for name, path in extra_files.items()}
            depth = dump[f"{direction}_itm"].shape[1]
            tables[split] = grid(dump, extras, direction, depth)
            base = top1_recall(dump[f"{direction}_ids"], dump[f"{direction}_rel"], direction)
            print(f"{direction} {split}: stage 1 R@1 {base:.1f}")
        for pick, read in (("test", "test"), ("val", "val"), ("val", "test")):
            key = max(tables[pick], key=lambda c: (tables[pick][c], -sum(c[2])))
            labels = names if key[1] == "linear" else ["alpha"]
            weights = ", ".join(f"{n}={w:g}" for n, w in zip(labels, key[2]))
            print(f"  {direction} picked on {pick:4s} read on {read:4s}: R@1 {tables[read][key]:.1f}"
                  f"  (k={key[0]}, {key[1]}: {weights})")


if __name__ == "__main__":
    main()
