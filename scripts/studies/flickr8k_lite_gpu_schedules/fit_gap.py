"""One-off: how well the default Flickr8k-lite reranker separates positives inside stage-1 top-10 lists on its own
training images vs the 1K test (see results/flickr8k_lite_gpu_schedules/README.md); not part of the package.
Run from the repo root: ``python -m scripts.studies.flickr8k_lite_gpu_schedules.fit_gap``.

Lists: the stand-in linear stage 1 saved with the reranker (``stage1_linear.npz``), t2i, 1,000-image galleries
(train images 0-999 and 3000-3999, test), the first 1,500 captions of each; ITM alone vs stage 1 alone at the top.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from eval.reranker_recipes.flickr8k import FlickrItmOptions, build_flickr_model, load_split, stage1_similarity
from eval.reranker_recipes.linear_stage1 import load_linear_stage1
from stage2_rerank.training.feature_store import load_feature_store
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData, score_pairs_in_memory

RUN = Path(".cache/rrbench/models/stage2_flickr8k_lite")
FEATURES = Path(".cache/rrbench/stage2_train/features")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    torch.set_num_threads(2)
    options = FlickrItmOptions(init_from=RUN / "best")
    model, processor, _ = build_flickr_model(options)
    trainable = ItmTrainable(model)
    stage1 = load_linear_stage1(RUN / "stage1_linear.npz")
    splits = {}  # split -> (benchmark, feature store, full stage-1 similarity), each computed once
    for split, start in (("train", 0), ("train", 3000), ("test", 0)):
        if split not in splits:
            bench = load_split(options, split)
            store = load_feature_store(FEATURES / f"flickr8k_{split}_efficientnet_lite0")
            splits[split] = (bench, store, stage1_similarity(options, stage1, bench, store))
        bench, store, full_similarity = splits[split]
        rows = np.arange(start, start + 1000)
        caption_rows = np.flatnonzero(np.isin(bench.text_to_image(), rows))[:1500]
        similarity = full_similarity[np.ix_(caption_rows, rows)]
        truth = bench.text_to_image()[caption_rows] - start
        top = np.argsort(-similarity, 1)[:, :10]
        token_ids = processor.tokenizer([bench.captions[c].text for c in caption_rows], truncation=True,
                                        max_length=32)["input_ids"]
        data = ItmTrainingData(torch.from_numpy(np.array(store.features[start:start + 1000])), token_ids, truth,
                               processor.tokenizer.pad_token_id)
        pairs = np.stack([top.ravel(), np.repeat(np.arange(len(top)), 10)], 1)
        logits, _ = score_pairs_in_memory(trainable, data, pairs)
        gap = (logits[:, 1] - logits[:, 0]).reshape(-1, 10)
        positive = top == truth[:, None]
        listed = np.flatnonzero(positive.any(1))
        auc = np.mean([(gap[i][positive[i]][:, None] > gap[i][~positive[i]][None]).mean() for i in listed])
        print(f"{split} images {start}-{start + 999}: positive in top 10 {positive.any(1).mean():.3f}, "
              f"stage-1 R@1 {positive[:, 0].mean():.3f}, "
              f"ITM R@1 {positive[np.arange(len(top)), gap.argmax(1)].mean():.3f}, "
              f"ITM within-list AUC {auc:.3f}", flush=True)


if __name__ == "__main__":
    main()
