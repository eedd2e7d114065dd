"""Speed of one ITM training step in fp32 vs bf16 autocast (``ItmTrainerConfig.compute_dtype``), same run.

    HF_HUB_OFFLINE=1 python scripts/bench_itm_step.py --threads 2        # the Flickr8k-lite reranker's defaults
    HF_HUB_OFFLINE=1 python scripts/bench_itm_step.py --layers 2 --cross-every 1 --threads 1

The model is the Flickr8k-lite reranker (MiniLM-initialised Q-Former, 8 queries) over random ``[N, 49, 1280]``
fp16 "grid features" and captions of 8-20 random word pieces: timing only, no data needed. Steps alternate
between the two precisions (one trainer each, same model) so that machine load hits both alike; the report
gives the median seconds per step of each, their ratio, and the loss difference of one identical batch
(dropout off) as a parity check. Prints JSON (and writes it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

from eval.reranker_recipes.flickr8k import FlickrItmOptions, build_flickr_model
from rrbench_base.provenance import provenance
from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.training.losses import batch_losses
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData
from stage2_rerank.training.trainer import ItmTrainer


def random_data(tokenizer, n_images: int, seed: int) -> ItmTrainingData:
    """``n_images`` random fp16 grids ``[49, 1280]``, 5 captions each of 8-20 random word pieces + [CLS]/[SEP]."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n_images, 49, 1280, generator=generator).half()
    first, vocab = 1000, len(tokenizer)  # skip BERT's special and unused tokens
    tokens = [[tokenizer.cls_token_id,
               *torch.randint(first, vocab, (int(torch.randint(8, 21, (1,), generator=generator)),),
                              generator=generator).tolist(), tokenizer.sep_token_id] for _ in range(5 * n_images)]
    return ItmTrainingData(features, tokens, torch.arange(n_images).repeat_interleave(5), tokenizer.pad_token_id)


def main(argv: list[str]) -> dict:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = FlickrItmOptions()
    parser.add_argument("--layers", type=int, default=defaults.num_layers)
    parser.add_argument("--cross-every", type=int, default=defaults.cross_attention_frequency,
                        help="cross-attention every this many layers")
    parser.add_argument("--batch-size", type=int, default=32, help="positive pairs per step (2 to 256)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per precision (after 2 warm-up each)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 2 <= args.batch_size <= 256:
        parser.error("--batch-size must be in [2, 256] (the benchmark has 256 images)")
    if args.threads:
        torch.set_num_threads(args.threads)
    options = FlickrItmOptions(num_layers=args.layers, cross_attention_frequency=args.cross_every)
    model, processor, _ = build_flickr_model(options)
    trainable = ItmTrainable(model)
    data = random_data(processor.tokenizer, 256, seed=0)
    base = ItmTrainerConfig(batch_size=args.batch_size, negatives="itc", progress=False, resume=False)
    trainers = {dtype: ItmTrainer(trainable, processor, data, dataclasses.replace(base, compute_dtype=dtype),
                                  Path("unused")) for dtype in ("float32", "bfloat16")}

    batch = torch.arange(args.batch_size) * 5  # the first caption of as many different images
    losses = {}
    trainable.eval()
    for dtype, trainer in trainers.items():  # parity: the same batch and negatives, dropout off, no update
        with torch.no_grad(), trainer.autocast():
            losses[dtype] = batch_losses(trainable, data, batch, itc_weight=1.0, negatives="itc",
                                         generator=torch.Generator().manual_seed(1)).loss.float().item()
    seconds: dict[str, list[float]] = {dtype: [] for dtype in trainers}
    order = torch.Generator().manual_seed(2)
    for step in range(args.steps + 2):
        for dtype, trainer in trainers.items():
            captions = torch.randperm(len(data.caption_tokens), generator=order)[: args.batch_size]
            start = time.perf_counter()
            trainer.train_step(captions)
            if step >= 2:
                seconds[dtype].append(time.perf_counter() - start)
    median = {dtype: statistics.median(values) for dtype, values in seconds.items()}
    result = {"provenance": provenance(argv=["scripts/bench_itm_step.py", *argv]), "options": vars(args) | {"out": None},
              "median_step_s": median, "fp32_over_bf16": median["float32"] / median["bfloat16"],
              "parity_loss": losses, "parity_abs_diff": abs(losses["float32"] - losses["bfloat16"])}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
