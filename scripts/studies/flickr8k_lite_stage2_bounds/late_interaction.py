"""One-off: a FILIP-style token-wise late-interaction scorer over the reranker's own inputs, for fusion_bound.py.

Run from the repo root (after the reranker's feature caches exist, i.e. after scripts/train_flickr8k_lite.sh):
``python -m scripts.studies.flickr8k_lite_stage2_bounds.late_interaction --out DIR/late.npz``.

Inputs: the cached frozen EfficientNet-Lite0 7x7 grids (``.cache/rrbench/stage2_train/features``, fp16
``[N_img, 49, 1280]``) and frozen all-MiniLM-L6-v2 token states (``[N_cap, 32, 384]``, [CLS]/[SEP]/padding masked).
Model: LayerNorm + 2-layer MLP per side into D dims, L2-normalised tokens; t2i(t, i) = mean over words of the max
cosine over grid cells, i2t(t, i) = mean over cells of the max over words (FILIP, Yao et al. 2021); symmetric
InfoNCE (t2i logits for caption queries, i2t logits for image queries), learnable temperature, one random caption
per image per step, AdamW + one-cycle. Writes ``val_sim`` / ``test_sim`` = t2i + i2t, float32 ``[N_cap, N_img]``.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm
from transformers import AutoModel, AutoTokenizer

from eval.data.loaders import load_benchmark
from eval.experiment_config import load_experiment, with_cache_dirs
from stage2_rerank.training.bert_init import minilm_dir

FEATURES = Path(".cache/rrbench/stage2_train/features")
MAX_TOKENS = 32


def split_inputs(split: str, tokenizer, text_model) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """(grid fp16 [N_img, 49, 1280], tokens fp16 [N_cap, 32, 384], word mask bool [N_cap, 32], caption->image row)."""
    bench = load_benchmark(with_cache_dirs(load_experiment("configs/flickr8k_lite.yaml",
                                                           [f"dataset.split={split}"])).dataset)
    folder = FEATURES / f"flickr8k_{split}_efficientnet_lite0"
    cached_ids = json.loads((folder / "index.json").read_text())["ids"]
    if cached_ids != [image.id for image in bench.images]:
        raise SystemExit(f"{folder}: cached grid rows are not the {split} images in benchmark order")
    texts = [c.text for c in bench.captions]
    states = torch.zeros(len(texts), MAX_TOKENS, 384, dtype=torch.float16)
    mask = torch.zeros(len(texts), MAX_TOKENS, dtype=torch.bool)
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), 256), desc=f"MiniLM tokens {split}"):
            enc = tokenizer(texts[start:start + 256], padding="max_length", truncation=True, max_length=MAX_TOKENS,
                            return_tensors="pt")
            states[start:start + 256] = text_model(**enc).last_hidden_state.half()
            mask[start:start + 256] = enc["attention_mask"].bool()
    lengths = mask.sum(1)
    mask[:, 0] = False
    mask[torch.arange(len(mask)), lengths - 1] = False
    grid = torch.from_numpy(np.load(folder / "features.npy"))
    return grid, states, mask, bench.text_to_image()


class LateInteraction(nn.Module):
    """Token projections; ``similarities`` gives FILIP t2i and i2t scores ``[N_cap, N_img]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.LayerNorm(1280), nn.Dropout(0.1), nn.Linear(1280, 1024), nn.GELU(),
                                   nn.Linear(1024, dim))
        self.text = nn.Sequential(nn.LayerNorm(384), nn.Dropout(0.1), nn.Linear(384, 1024), nn.GELU(),
                                  nn.Linear(1024, dim))
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def similarities(self, grid: torch.Tensor, states: torch.Tensor, mask: torch.Tensor):
        cells = F.normalize(self.image(grid.float()), dim=-1)
        words = F.normalize(self.text(states.float()), dim=-1)
        cos = torch.einsum("tld,igd->tilg", words, cells)
        t2i = (cos.max(-1).values * mask[:, None]).sum(-1) / mask.sum(-1)[:, None]
        i2t = cos.masked_fill(~mask[:, None, :, None], -2.0).max(2).values.mean(-1)
        return t2i, i2t


def trim(mask: torch.Tensor) -> int:
    """Token positions needed for this batch (last word + [SEP])."""
    return int(mask.any(0).nonzero().max()) + 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=15, help="passes over the training images")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    tokenizer, text_model = AutoTokenizer.from_pretrained(minilm_dir()), AutoModel.from_pretrained(minilm_dir()).eval()
    data = {split: split_inputs(split, tokenizer, text_model) for split in ("train", "val", "test")}
    grid, states, mask, caption_image = data["train"]
    captions_of = [np.flatnonzero(caption_image == i) for i in range(len(grid))]
    model = LateInteraction(args.dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps_per_epoch = len(grid) // args.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.epochs * steps_per_epoch,
                                                   pct_start=0.05)
    rng, started = np.random.default_rng(0), time.time()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(grid))
        for step in tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", leave=False):
            images = order[step * args.batch:(step + 1) * args.batch]
            captions = np.array([rng.choice(captions_of[i]) for i in images])
            width = trim(mask[captions])
            t2i, i2t = model.similarities(grid[images], states[captions, :width], mask[captions, :width])
            scale, target = model.log_scale.exp().clamp(max=100.0), torch.arange(len(images))
            loss = (F.cross_entropy(scale * t2i, target) + F.cross_entropy(scale * i2t.T, target)) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"epoch {epoch}: last loss {loss.item():.3f}, {time.time() - started:.0f} s", flush=True)
    model.eval()
    out = {}
    for split in ("val", "test"):
        grid, states, mask, caption_image = data[split]
        with torch.inference_mode():
            parts = [sum(model.similarities(grid, states[s:s + 100, :trim(mask[s:s + 100])],
                                            mask[s:s + 100, :trim(mask[s:s + 100])]))
                     for s in range(0, len(states), 100)]
        sim = torch.cat(parts).numpy().astype(np.float32)
        out[f"{split}_sim"] = sim
        t2i = 100 * np.mean(sim.argmax(1) == caption_image)
        i2t = 100 * np.mean(caption_image[sim.argmax(0)] == np.arange(sim.shape[1]))
        print(f"{split}: late interaction alone, full gallery: t2i R@1 {t2i:.1f}, i2t R@1 {i2t:.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()
