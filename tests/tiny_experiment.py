"""A tiny real experiment on disk (random open_clip + random BLIP-2 ITM, synthetic data) for tests that need
real cache files, run outputs or configs written by a real run. Build once per module with
``write_tiny_experiment(tmp_dir)``; every run of it takes a few seconds on one thread."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip

from stage2_rerank.bench.random_checkpoint import save_random_checkpoint, tiny_blip2_itm_config

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
RULES = ["itm", "itm+itc", "alpha", "rrf"]
DEPTHS = [0, 1, 5, 10]
WORDS = ("a an the of to on at in and is there with its left right above below under over next beside "
         "small large big little red green blue yellow purple orange white black gray grey pink brown cyan "
         "circle square triangle star cross diamond hexagon shape shapes picture image scene one two three "
         "side top bottom middle center centre sits placed positioned lies appears found it which while "
         "has contains shows showing ,").split()


def write_tiny_experiment(root: Path, experiment: str = "tiny", extra_yaml: str = "") -> Path:
    """Write a tiny experiment under ``root`` (models, config; results in ``root/results``, caches in
    ``root/cache``) and return the config path. ``extra_yaml`` is appended to the config (top-level keys)."""
    root = Path(root)
    (root / "rrbench-e2e-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(root / "rrbench-e2e-clip.json")
    if not (root / "blip2" / "config.json").exists():
        save_random_checkpoint(root / "blip2", tiny_blip2_itm_config(image_size=32, vocab_size=256), WORDS, seed=0)
    config = root / f"{experiment}.yaml"
    config.write_text(f"""
experiment: {experiment}
threads: 1
output_dir: {root / 'results'}
cache_dir: {root / 'cache'}
dataset:
  format: synthetic
  split: test
  synthetic: {{num_train: 4, num_val: 4, num_test: 12, image_size: 32, seed: 3}}
stage1:
  depth: 20
  encoder: {{backend: open_clip, model: rrbench-e2e-clip, batch_size: 16, num_workers: 0}}
  index: {{type: flat}}
stage2:
  model: {root / 'blip2'}
  pair_batch_size: 64
ablation:
  depths: {DEPTHS}
  rules: {RULES}
""" + extra_yaml)
    return config
