"""Builders for stage-1 tests: tiny random-weight models, image files, fake HF caches, call counters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from eval.data.benchmark import ImageItem

TINY_OPEN_CLIP = "rrbench-tiny-clip"
TINY_OPEN_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
ZH_CHARS = "一只红色的猫狗在草地上蓝天白云"
EN_WORDS = ["a", "red", "blue", "cat", "dog", "on", "the", "grass", "sky"]
FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write_tiny_open_clip_config(directory: Path) -> Path:
    """Write the tiny open_clip architecture JSON (file stem = model name); return its path."""
    path = directory / f"{TINY_OPEN_CLIP}.json"
    path.write_text(json.dumps(TINY_OPEN_CLIP_CONFIG))
    return path


def make_images(directory: Path, count: int, seed: int = 0, corrupt: tuple[int, ...] = ()) -> list[ImageItem]:
    """``count`` PNG images of varied sizes (positions in ``corrupt`` get undecodable bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        path = directory / f"img_{i:03d}.png"
        if i in corrupt:
            path = path.with_suffix(".jpg")
            path.write_bytes(b"this is not an image")
        else:
            height, width = int(rng.integers(20, 60)), int(rng.integers(20, 90))
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        items.append(ImageItem(id=f"img{i}", path=path))
    return items


def tiny_hf_vision_config() -> dict[str, Any]:
    return dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                image_size=32, patch_size=8)


def save_tiny_hf_clip(directory: Path, seed: int = 0) -> Path:
    """A random tiny transformers ``CLIPModel`` + WordLevel tokenizer + image processor, saved to ``directory``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "<s>": 2, "</s>": 3, **{w: i + 4 for i, w in enumerate(EN_WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        bos_token="<s>", eos_token="</s>", model_max_length=16)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, eos_token_id=3, bos_token_id=2,
                         pad_token_id=0),
        vision_config=tiny_hf_vision_config(), projection_dim=16)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def save_tiny_chinese_clip(directory: Path, seed: int = 0) -> Path:
    """A random tiny ``ChineseCLIPModel`` + BERT tokenizer over a character vocabulary, saved to ``directory``."""
    import torch
    from transformers import BertTokenizer, ChineseCLIPConfig, ChineseCLIPImageProcessor, ChineseCLIPModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab_path = directory / "vocab.txt"
    vocab_path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *ZH_CHARS]) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(vocab_path), model_max_length=16)
    config = ChineseCLIPConfig(
        text_config=dict(vocab_size=5 + len(ZH_CHARS), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16),
        vision_config=tiny_hf_vision_config(), projection_dim=16)
    torch.manual_seed(seed)
    ChineseCLIPModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    ChineseCLIPImageProcessor(size={"height": 32, "width": 32},
                              crop_size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def put_in_fake_hub_cache(cache_dir: Path, repo_id: str, files_from: Path) -> Path:
    """Lay out ``files_from``'s files as the HF cache snapshot of ``repo_id`` at ``main``; return the snapshot dir."""
    repo_dir = cache_dir / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / FAKE_COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in files_from.iterdir():
        shutil.copy(path, snapshot / path.name)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(FAKE_COMMIT)
    return snapshot


class ForwardCounter:
    """Wraps an encoder's ``encode_images`` / ``encode_texts`` on the instance and counts calls.

    ``fail_after_images``: raise RuntimeError on that image call (simulated interruption).
    """

    def __init__(self, encoder: Any, monkeypatch: Any, fail_after_images: int | None = None) -> None:
        self.images = 0
        self.texts = 0
        original_images, original_texts = encoder.encode_images, encoder.encode_texts

        def encode_images(pixels):
            self.images += 1
            if fail_after_images is not None and self.images > fail_after_images:
                raise RuntimeError("simulated interruption")
            return original_images(pixels)

        def encode_texts(texts):
            self.texts += 1
            return original_texts(texts)

        monkeypatch.setattr(encoder, "encode_images", encode_images)
        monkeypatch.setattr(encoder, "encode_texts", encode_texts)
