"""Build a trainable BLIP-2 ITM reranker (``Blip2ForImageTextRetrieval`` + ``Blip2Processor``) from a spec.

The Q-Former uses transformers' BLIP-2 classes with ``use_qformer_text_input=True`` and cross-attends to the
``[T, D]`` features of the vision provider named in the spec. Because those features come from a provider
(EfficientNet grid, trained CNN grid), the checkpoint's own ViT is a PLACEHOLDER of zero layers
(``Blip2VisionConfig(hidden_size=D, num_hidden_layers=0, image_size=1, patch_size=1)``, ~4 D weights) that only
fixes the Q-Former's ``encoder_hidden_size`` to D; it is never run. The provider's name is written into the
checkpoint's ``config.json`` as ``rrbench_vision_provider`` (``RERANKER_PROVIDER_KEY``), so loading the
directory with ``RerankerConfig(backend="blip2_itm", model=<dir>)`` picks the right provider by itself.

The text side is either initialised from a BERT-family checkpoint (``text_init``; the checkpoint's tokenizer
is used, see ``bert_init.py``) or trained from scratch over a word-level vocabulary (``words``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from transformers import (AutoTokenizer, BertTokenizer, Blip2Config, Blip2ForImageTextRetrieval, Blip2Processor,
                          Blip2QFormerConfig, Blip2VisionConfig, BlipImageProcessor)

from rrbench_base.global_rng import seeded_torch_rng
from stage2_rerank.backends.base import RERANKER_PROVIDER_KEY
from stage2_rerank.training.bert_init import BertInitReport, init_qformer_from_bert, qformer_config_from_bert
from stage2_rerank.vision.base import square_image_processor

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass
class ItmModelSpec:
    """Architecture of a trainable BLIP-2 ITM reranker.

    Attributes:
        vision_provider: name in ``stage2_rerank.vision.VISION_PROVIDERS`` whose features the
            Q-Former cross-attends to (written into the checkpoint).
        feature_dim: D of the provider's features (1280 for EfficientNet-Lite).
        image_size: side of the square image the processor resizes to (224 for EfficientNet-Lite0).
        pixel_mean: per-channel mean of the processor's normalisation (same for R, G, B).
        pixel_std: per-channel std; mean 0.5 / std 0.5 maps [0, 1] pixels to [-1, 1] (EfficientNet-Lite).
        text_init: directory of a BERT-family checkpoint (config.json, model.safetensors, tokenizer) to
            initialise the Q-Former's self-attention, feed-forward and embeddings from; ``None`` = scratch.
        num_layers: Q-Former layers (with ``text_init``: at most the checkpoint's; its first layers are used).
        hidden_size: Q-Former width (scratch only; ``text_init`` fixes it).
        num_attention_heads: attention heads (scratch only).
        intermediate_size: feed-forward width (scratch only).
        max_position_embeddings: longest caption in tokens (scratch only).
        cross_attention_frequency: a cross-attention layer every this many layers (BLIP-2: 2).
        num_query_tokens: learned queries (BLIP-2: 32).
        image_text_hidden_size: ITC embedding size (BLIP-2: 256).
        dropout: hidden and attention dropout (scratch only; ``text_init`` keeps the checkpoint's).
        initializer_range: std of the fresh weights (scratch only; ``text_init`` keeps the checkpoint's,
            0.02 for BERT). BERT's 0.02 suits 768-wide layers; narrow Q-Formers need about ``0.5 / sqrt(width)``
            or their sublayers barely change the residual stream and training stalls.
        seed: seed of the fresh initialisation (the caller's global torch RNG state is left unchanged).
    """

    vision_provider: str
    feature_dim: int
    image_size: int = 224
    pixel_mean: float = 0.5
    pixel_std: float = 0.5
    text_init: Optional[Path] = None
    num_layers: int = 6
    hidden_size: int = 128
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 64
    cross_attention_frequency: int = 2
    num_query_tokens: int = 32
    image_text_hidden_size: int = 256
    dropout: float = 0.1
    initializer_range: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("feature_dim", "image_size", "num_layers", "hidden_size", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "cross_attention_frequency",
                     "num_query_tokens", "image_text_hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pixel_std <= 0:
            raise ValueError(f"pixel_std must be > 0, got {self.pixel_std}")
        if self.initializer_range <= 0:
            raise ValueError(f"initializer_range must be > 0, got {self.initializer_range}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of {self.num_attention_heads} heads")
        if self.text_init is not None:
            self.text_init = Path(self.text_init)


def word_vocab(words: Sequence[str]) -> dict[str, int]:
    """BERT vocabulary: the special tokens, then the distinct lower-cased ``words`` in order."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word.lower(), len(vocab))
    return vocab


def placeholder_vision_config(feature_dim: int) -> Blip2VisionConfig:
    """Zero-layer ViT config that only sets the Q-Former's ``encoder_hidden_size`` (never run; see module doc)."""
    return Blip2VisionConfig(hidden_size=feature_dim, intermediate_size=1, num_hidden_layers=0,
                             num_attention_heads=1, image_size=1, patch_size=1)


def build_image_processor(spec: ItmModelSpec) -> BlipImageProcessor:
    """Square bicubic resize to ``image_size``, rescale to [0, 1], normalise by ``pixel_mean``/``pixel_std``."""
    return square_image_processor(spec.image_size, spec.pixel_mean, spec.pixel_std)


def build_processor(spec: ItmModelSpec, words: Sequence[str] | None = None) -> Blip2Processor:
    """The processor saved with the checkpoint: the ``text_init`` tokenizer, or a word-level BERT tokenizer."""
    if spec.text_init is not None:
        tokenizer = AutoTokenizer.from_pretrained(str(spec.text_init), local_files_only=True)
    elif words:
        tokenizer = BertTokenizer(vocab=word_vocab(words))
    else:
        raise ValueError("a scratch Q-Former (text_init=None) needs the caption words for its vocabulary")
    return Blip2Processor(image_processor=build_image_processor(spec), tokenizer=tokenizer)


def _qformer_config(spec: ItmModelSpec, vocab_size: int) -> Blip2QFormerConfig:
    if spec.text_init is not None:
        return qformer_config_from_bert(spec.text_init, spec.num_layers, vocab_size, spec.feature_dim,
                                        spec.cross_attention_frequency)
    return Blip2QFormerConfig(
        vocab_size=vocab_size, hidden_size=spec.hidden_size, num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_attention_heads, intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings, hidden_dropout_prob=spec.dropout,
        attention_probs_dropout_prob=spec.dropout, cross_attention_frequency=spec.cross_attention_frequency,
        encoder_hidden_size=spec.feature_dim, use_qformer_text_input=True,
        initializer_range=spec.initializer_range)


def build_itm_model(spec: ItmModelSpec, words: Sequence[str] | None = None,
                    ) -> tuple[Blip2ForImageTextRetrieval, Blip2Processor, Optional[BertInitReport]]:
    """Fresh model (query tokens ~ N(0, initializer_range)) + processor; BERT-initialised when ``text_init``.

    The Q-Former vocabulary covers the processor's tokenizer (incl. the ``<image>`` token it adds). The weights
    depend on ``spec.seed`` only; the caller's global torch RNG state is left as it was.
    """
    with seeded_torch_rng(spec.seed):
        return build_itm_model_unseeded(spec, words)


def build_itm_model_unseeded(spec: ItmModelSpec, words: Sequence[str] | None = None,
                             ) -> tuple[Blip2ForImageTextRetrieval, Blip2Processor, Optional[BertInitReport]]:
    """:func:`build_itm_model` drawing its initialisation from torch's global generator as it stands (as any module
    constructor does), for a caller that builds further modules from the same seeded stream inside its own
    ``rrbench_base.global_rng.seeded_torch_rng(spec.seed)``."""
    processor = build_processor(spec, words)
    qformer = _qformer_config(spec, len(processor.tokenizer))
    config = Blip2Config(vision_config=placeholder_vision_config(spec.feature_dim).to_dict(),
                         qformer_config=qformer.to_dict(), num_query_tokens=spec.num_query_tokens,
                         image_text_hidden_size=spec.image_text_hidden_size,
                         initializer_range=qformer.initializer_range,
                         **{RERANKER_PROVIDER_KEY: spec.vision_provider})
    model = Blip2ForImageTextRetrieval(config)
    with torch.no_grad():
        model.query_tokens.normal_(std=qformer.initializer_range)
    report = init_qformer_from_bert(model, spec.text_init) if spec.text_init is not None else None
    return model, processor, report
