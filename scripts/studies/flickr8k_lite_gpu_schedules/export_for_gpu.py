"""One-off export for the GPU schedule diagnostic (results/flickr8k_lite_gpu_schedules/README.md); not in the package.

The lent GPU machine takes at most 64 MiB of files per call and keeps only /tmp between calls, so this writes
three folders of at most ~62 MB each; run from the repo root, after `bash scripts/train_flickr8k_lite.sh`:
``python -m scripts.studies.flickr8k_lite_gpu_schedules.export_for_gpu``. It writes
- .gpuA: int8 Lite0 pre-head activations (the 320-channel output of the last MBConv block, 7 x 7) of train
  images 0-2999 + the transformers wheel (from .whl/);
- .gpuB: the same for train images 3000-5999 and the 1K test images;
- .gpuC: the 1x1 head conv + BN of Lite0 (the device redoes head conv + BN + ReLU6 + layer norm, giving the
  provider's grid tokens: token cosine mean 0.99975 against the cached grids, printed), the initial Q-Former of
  ``build_flickr_model`` (fp16; word-embedding rows of the used token ids only; query FFNs that equal their
  MiniLM text FFN stored once), token ids, the stand-in stage 1's negatives / embeddings (int8 text side),
  the val-100 activations and candidates, and the real stage 1's top-20 test lists; plus train_exported.py.
"""

import argparse
import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from eval.data.benchmark import Benchmark
from eval.experiment_config import load_experiment, with_cache_dirs
from eval.reranker_recipes.common import subset
from eval.reranker_recipes.flickr8k import (FlickrItmOptions, build_flickr_model, fit_stage1, load_split,
                                        mined_negatives, split_features, stage1_similarity)
from eval.reranker_recipes.linear_stage1 import minilm_sentence_embeddings, pooled_features
from stage1_dual.pipeline import Stage1Result, run_stage1
from stage2_rerank.pair_scoring import tokenize_captions
from stage2_rerank.training.feature_store import load_feature_store
from stage2_rerank.training.validation import candidates_from_similarity
from stage2_rerank.vision.efficientnet import EfficientNetGridProvider, load_efficientnet_lite, native_image_size


def stage1_test_lists(bench: Benchmark, stage1: Stage1Result, depth: int) -> dict[str, np.ndarray]:
    """``{t2i,i2t}_ids`` int32 and ``{t2i,i2t}_s1`` float32 ``[Q, depth]``: stage 1's lists as ``rrbench run``
    ranks them (images without captions are no i2t queries)."""
    image_to_texts = bench.image_to_texts()
    lists = {}
    for direction in ("t2i", "i2t"):
        candidates = stage1.candidates[direction]
        keep = (np.ones(len(candidates.query_positions), dtype=bool) if direction == "t2i"
                else np.array([len(image_to_texts[p]) > 0 for p in candidates.query_positions], dtype=bool))
        lists[f"{direction}_ids"] = candidates.ids[keep, :depth].astype(np.int32)
        lists[f"{direction}_s1"] = candidates.scores[keep, :depth].astype(np.float32)
    return lists


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    A, B, C = Path(".gpuA"), Path(".gpuB"), Path(".gpuC")
    for folder in (A, B, C):
        folder.mkdir(exist_ok=True)
    opts = FlickrItmOptions()
    model, processor, report = build_flickr_model(opts)
    processor.save_pretrained(str(C / "ckpt"))
    model.config.save_pretrained(str(C / "ckpt"))
    benches = {s: load_split(opts, s) for s in ("train", "val", "test")}

    # pre-head activations through the provider's own preprocessing
    provider = EfficientNetGridProvider("lite0", processor.image_processor, torch.device("cpu"), torch.float32)
    size = processor.image_processor.size
    size = size if isinstance(size, int) else int(size["height"])
    net = load_efficientnet_lite("lite0", None if size == native_image_size("lite0") else size)
    grab = {}
    net._conv_head.register_forward_pre_hook(lambda module, inputs: grab.__setitem__("x", inputs[0]))

    def prehead(images) -> torch.Tensor:
        out = []
        for start in tqdm(range(0, len(images), 64), desc="Lite0 pre-head"):
            with torch.inference_mode():
                net.extract_features(provider.pixels([im.open() for im in images[start:start + 64]]))
            out.append(grab["x"].flatten(2).transpose(1, 2).half())  # [B, 49, 320]
        return torch.cat(out)

    pre = {"train": prehead(benches["train"].images), "val": prehead(benches["val"].images[:100]),
           "test": prehead(benches["test"].images)}
    scale = (pre["train"].float().abs().amax(dim=(0, 1)) / 127.0).clamp_min(1e-8)
    quant = {k: torch.clamp(torch.round(v.float() / scale), -127, 127).to(torch.int8).numpy() for k, v in pre.items()}
    torch.save({"conv": net._conv_head.weight.detach().clone(), "bn_w": net._bn1.weight.detach().clone(),
                "bn_b": net._bn1.bias.detach().clone(), "bn_m": net._bn1.running_mean.clone(),
                "bn_v": net._bn1.running_var.clone(), "bn_eps": torch.tensor(net._bn1.eps), "scale": scale},
               C / "head.pt")
    # how closely the device's reconstruction (head conv + BN + ReLU6 + layer norm of the int8 activations) matches
    # the grids the provider cached for training (train images 3000-3199)
    x = torch.from_numpy(quant["train"][3000:3200]).float() * scale
    y = x @ net._conv_head.weight.detach().flatten(1).T
    bn = net._bn1
    y = (y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight.detach() + bn.bias.detach()
    rebuilt = torch.nn.functional.layer_norm(y.clamp(0, 6), (1280,))
    cached = load_feature_store(Path(".cache/rrbench/stage2_train/features/flickr8k_train_efficientnet_lite0"))
    reference = torch.from_numpy(np.array(cached.features[3000:3200])).float()
    cosine = torch.nn.functional.cosine_similarity(reference.reshape(-1, 1280), rebuilt.reshape(-1, 1280))
    print(f"grid tokens rebuilt from int8 vs cached: cosine mean {cosine.mean():.5f}, min {cosine.min():.4f}",
          flush=True)
    np.save(A / "train_a.npy", quant["train"][:3000])
    np.save(B / "train_b.npy", quant["train"][3000:])
    np.save(B / "test.npy", quant["test"])
    np.save(C / "val100.npy", quant["val"])
    (A / "w").mkdir(exist_ok=True)
    for wheel in Path(".whl").glob("transformers-*.whl"):
        shutil.copy(wheel, A / "w" / wheel.name)

    # initial Q-Former, fp16, compacted
    tokens = {s: tokenize_captions(processor.tokenizer, [c.text for c in b.captions], 32) for s, b in benches.items()}
    used = np.unique(np.concatenate([np.concatenate([np.asarray(t) for t in tokens[s]]) for s in tokens]
                                    + [np.arange(110)]))
    state = {k: v.half() for k, v in model.state_dict().items()}
    emb_key = "embeddings.word_embeddings.weight"
    emb = state.pop(emb_key)
    state["__used_ids"], state["__used_rows"] = torch.from_numpy(used), emb[torch.from_numpy(used)]
    dedup = [k for k in state for q, t in ((".intermediate_query.", ".intermediate."), (".output_query.", ".output."))
             if q in k and torch.equal(state[k], state[k.replace(q, t)])]
    for k in dedup:
        del state[k]
    save_file({k: v.contiguous() for k, v in state.items()}, str(C / "init.safetensors"),
              metadata={"emb_key": emb_key, "vocab": str(emb.shape[0]), "dedup": ",".join(dedup)})
    pickle.dump({"copied": sorted(report.copied)}, open(C / "report.pkl", "wb"))
    pickle.dump({s: (tokens[s], benches[s].text_to_image()) for s in tokens}, open(C / "tokens.pkl", "wb"))

    # the stand-in stage 1 of train_flickr_reranker: negatives, in-batch embeddings, val-100 candidates
    train_store = split_features(opts, processor.image_processor, benches["train"], "train")
    stage1 = fit_stage1(opts, benches["train"], train_store)
    topk = mined_negatives(stage1_similarity(opts, stage1, benches["train"], train_store),
                           benches["train"].text_to_image(), opts.stage1_depth, opts.negative_temperature)
    text = stage1.embed_texts(minilm_sentence_embeddings([c.text for c in benches["train"].captions],
                                                         opts.frozen_feature_cache))
    text = text.astype(np.float16).astype(np.float32)
    text_scale = float(np.abs(text).max() / 127)
    pickle.dump({"img": stage1.embed_images(pooled_features(train_store.features)).astype(np.float16),
                 "txt_q": np.round(text / text_scale).astype(np.int8), "txt_scale": text_scale, "topk": topk},
                open(C / "stage1.pkl", "wb"))
    val = benches["val"]
    val_sim = stage1_similarity(opts, stage1, val, split_features(opts, processor.image_processor, val, "val"))
    rows = np.arange(100)
    caption_rows = np.flatnonzero(np.isin(val.text_to_image(), rows))
    val_cands = candidates_from_similarity(val_sim[np.ix_(caption_rows, rows)], opts.val_depth)

    # the real stage 1's test lists (as `rrbench run configs/flickr8k_lite.yaml` ranks them)
    cfg = with_cache_dirs(load_experiment("configs/flickr8k_lite.yaml", []))
    test = benches["test"]
    lists = stage1_test_lists(test, run_stage1(cfg.stage1, test.images, [c.text for c in test.captions]), 20)
    pickle.dump({"val_small": subset(val, 100), "val_cands": val_cands, "test": test, "test_lists": lists},
                open(C / "eval.pkl", "wb"))
    shutil.copy(Path(__file__).with_name("train_exported.py"), C / "train_exported.py")
    print({f.name: f.stat().st_size for folder in (A, B, C) for f in folder.rglob("*") if f.is_file()})


if __name__ == "__main__":
    main()
