"""Time eval.metrics on random rankings (default: 25,000 queries x 100 candidates per direction).

Usage: .venv/bin/python scripts/time_metrics.py [--queries 25000] [--depth 100] [--repeats 5]
Prints the best-of-repeats wall time of each call.
"""

import argparse
import sys
import time

import numpy as np

from eval.metrics import image_to_text_metrics, recall_curves, retrieval_metrics, text_to_image_metrics


def random_rankings(rng: np.random.Generator, num_queries: int, gallery: int, depth: int) -> np.ndarray:
    """[num_queries, depth] distinct gallery positions per row (a random permutation, shifted per row)."""
    base = rng.permutation(gallery)[:depth]
    shift = rng.integers(0, gallery, size=(num_queries, 1))
    return ((base[None, :] + shift) % gallery).astype(np.int64)


def best_time(fn, repeats: int) -> float:
    """Fastest of `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=25_000)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--captions-per-image", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    gallery = max(args.depth, args.queries // args.captions_per_image)
    # Text-to-image: captions rank images; image-to-text: images rank captions (5 relevant each).
    t2i_ranked = random_rankings(rng, args.queries, gallery, args.depth)
    relevant_image = rng.integers(0, gallery, size=args.queries)
    num_captions = gallery * args.captions_per_image
    i2t_ranked = random_rankings(rng, args.queries, num_captions, args.depth)
    relevant_captions = list(rng.integers(0, num_captions, size=(args.queries, args.captions_per_image)))
    # Make some relevant items appear in the lists so the numbers are not all zero.
    for q in range(0, args.queries, 3):
        relevant_image[q] = t2i_ranked[q, q % args.depth]
        relevant_captions[q][0] = i2t_ranked[q, q % args.depth]

    calls = {
        "text_to_image_metrics": lambda: text_to_image_metrics(t2i_ranked, relevant_image),
        "image_to_text_metrics": lambda: image_to_text_metrics(i2t_ranked, relevant_captions),
        "retrieval_metrics (both + rsum)": lambda: retrieval_metrics(
            t2i_ranked, relevant_image, i2t_ranked, relevant_captions
        ),
        "recall_curves (both, K=1..N)": lambda: recall_curves(
            t2i_ranked, relevant_image, i2t_ranked, relevant_captions
        ),
    }
    print(f"{args.queries} queries x {args.depth} candidates per direction, best of {args.repeats}")
    for name, fn in calls.items():
        print(f"  {name:34s} {best_time(fn, args.repeats) * 1000:8.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
