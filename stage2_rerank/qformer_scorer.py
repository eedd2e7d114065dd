"""The per-pair half of BLIP-2 retrieval: Q-Former ITM and ITC scores over precomputed vision features.

:class:`QFormerItm` holds the parts of ``transformers.Blip2ForImageTextRetrieval`` that run per pair or per
caption (query tokens, Q-Former text embeddings, Q-Former, ITM head, vision/text projections) and calls
them exactly as that model's ``forward`` does, minus the vision tower:

- ITM: the Q-Former runs on ``[32 query tokens ; caption tokens]`` (self-attention over both, attention
  mask = ones for the queries + the caption's mask) with cross-attention from the queries to the image
  features. ``itm_head`` maps each query output to 2 logits ``[no-match, match]``; the pair's logits are
  the MEAN OF THE LOGITS over the query tokens (not of probabilities). The "match" logit is index 1;
  ``softmax(logits)[1]`` is the ITM probability.
- ITC: image embeddings = ``normalize(vision_projection(Q-Former(query tokens, image)))`` ``[Q, E]``;
  text embedding = ``normalize(text_projection(Q-Former(caption alone)[CLS]))`` ``[E]``; the pair's ITC score
  is the max over the Q query embeddings of the cosine with the text embedding (no temperature).

Cross-attention keys/values depend on the image only; :meth:`QFormerItm.cross_attention_kv` computes them
once per image and :meth:`QFormerItm.itm_logits` can reuse them for every pair of that image (same math,
parity-tested against the stock forward). No method disables gradients; callers wrap inference in
``torch.inference_mode()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Blip2QFormerConfig
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.blip_2.modeling_blip_2 import (
    Blip2ForImageTextRetrieval,
    Blip2QFormerAttention,
    Blip2QFormerModel,
    Blip2TextEmbeddings,
)

ACTIVATION_SAFETY = 1.5
"""Factor on the per-pair activation estimate (temporaries, allocator slack); see ``pair_activation_bytes``."""


@dataclass
class CrossAttentionKV:
    """Cross-attention keys and values of U images for every Q-Former layer that has cross-attention.

    ``keys[layer]`` and ``values[layer]``: ``[U, heads, T, head_dim]`` in the Q-Former dtype.
    """

    keys: dict[int, torch.Tensor]
    values: dict[int, torch.Tensor]

    def select(self, slots: torch.Tensor) -> "CrossAttentionKV":
        """K/V for a batch of pairs: row ``b`` is image ``slots[b]`` (int64 ``[B]``, indices into U)."""
        return CrossAttentionKV(
            keys={i: k.index_select(0, slots) for i, k in self.keys.items()},
            values={i: v.index_select(0, slots) for i, v in self.values.items()},
        )


class QFormerItm(nn.Module):
    """Q-Former ITM/ITC scorer over vision features ``[B, T, D]`` (D = ``encoder_hidden_size``)."""

    def __init__(
        self,
        query_tokens: nn.Parameter,
        embeddings: Blip2TextEmbeddings,
        qformer: Blip2QFormerModel,
        itm_head: nn.Linear,
        vision_projection: nn.Linear,
        text_projection: nn.Linear,
    ) -> None:
        super().__init__()
        if not qformer.config.use_qformer_text_input:
            raise ValueError("the Q-Former config needs use_qformer_text_input=True for ITM")
        self.query_tokens = query_tokens
        self.embeddings = embeddings
        self.qformer = qformer
        self.itm_head = itm_head
        self.vision_projection = vision_projection
        self.text_projection = text_projection

    @classmethod
    def from_retrieval_model(cls, model: Blip2ForImageTextRetrieval) -> "QFormerItm":
        """Share (not copy) the per-pair parts of a loaded ``Blip2ForImageTextRetrieval``."""
        return cls(model.query_tokens, model.embeddings, model.qformer, model.itm_head,
                   model.vision_projection, model.text_projection)

    @classmethod
    def from_config(cls, qformer_config: Blip2QFormerConfig, num_query_tokens: int,
                    image_text_hidden_size: int = 256) -> "QFormerItm":
        """Fresh parts for training (query tokens ~ N(0, initializer_range), as LAVIS initialises them)."""
        hidden = qformer_config.hidden_size
        query_tokens = nn.Parameter(torch.zeros(1, num_query_tokens, hidden))
        nn.init.normal_(query_tokens, std=qformer_config.initializer_range)
        return cls(query_tokens, Blip2TextEmbeddings(qformer_config), Blip2QFormerModel(qformer_config),
                   nn.Linear(hidden, 2), nn.Linear(hidden, image_text_hidden_size),
                   nn.Linear(hidden, image_text_hidden_size))

    @property
    def num_query_tokens(self) -> int:
        return self.query_tokens.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.qformer.layernorm.weight.dtype

    @property
    def encoder_hidden_size(self) -> int:
        return self.qformer.config.encoder_hidden_size

    def _cross_attention_layers(self) -> list[tuple[int, Blip2QFormerAttention]]:
        return [(i, layer.crossattention) for i, layer in enumerate(self.qformer.encoder.layer)
                if layer.has_cross_attention]

    def kv_bytes_per_image(self, num_positions: int) -> int:
        """Bytes of one image's cached K/V over all cross-attention layers."""
        n_layers = len(self._cross_attention_layers())
        return 2 * n_layers * num_positions * self.qformer.config.hidden_size * self.dtype.itemsize

    def pair_activation_bytes(self, text_length: int, num_positions: int, cached_kv: bool) -> int:
        """Estimated peak bytes one (image, caption) pair adds to an ITM forward (:meth:`itm_logits`).

        The pair's cross-attention input (its selected K/V of every cross-attention layer when ``cached_kv``,
        else its features ``[T, D]`` plus one layer's K/V) and one layer's live activations over ``L = queries +
        text_length`` tokens: hidden states and projections (``4 L H``), self-attention scores (``heads L^2``),
        feed-forward (``L I``), cross-attention (``heads Q T + 2 Q H``); times ``ACTIVATION_SAFETY`` for
        temporaries and allocator slack. Measured peak RSS of BLIP-2's Q-Former on CPU (fp32, 256 pairs,
        L = 67, T = 257): 11.4 MiB per pair with cached K/V (estimate before the factor 11.9), 4.6 without
        (5.5). An upper bound for an ITC image or text forward of one item too (those run fewer tokens).
        """
        cfg = self.qformer.config
        hidden, heads, inter = cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size
        queries, length, itemsize = self.num_query_tokens, self.num_query_tokens + text_length, self.dtype.itemsize
        if cached_kv:
            cross_input = self.kv_bytes_per_image(num_positions)
        else:
            cross_input = (num_positions * self.encoder_hidden_size + 2 * num_positions * hidden) * itemsize
        layer = (4 * length * hidden + heads * length * length + length * inter
                 + heads * queries * num_positions + 2 * queries * hidden) * itemsize
        return int(ACTIVATION_SAFETY * (cross_input + layer))

    def cross_attention_kv(self, features: torch.Tensor) -> CrossAttentionKV:
        """Keys/values of every cross-attention layer for images ``features`` ``[U, T, D]``."""
        features = features.to(self.dtype)
        keys, values = {}, {}
        for index, cross in self._cross_attention_layers():
            attn = cross.attention
            shape = (*features.shape[:2], attn.num_attention_heads, attn.attention_head_size)
            keys[index] = attn.key(features).view(shape).transpose(1, 2)
            values[index] = attn.value(features).view(shape).transpose(1, 2)
        return CrossAttentionKV(keys, values)

    def _query_and_text_embeddings(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        batch = input_ids.shape[0]
        query_tokens = self.query_tokens.expand(batch, -1, -1)
        embeds = self.embeddings(input_ids=input_ids, query_embeds=query_tokens)
        query_mask = torch.ones(query_tokens.shape[:-1], dtype=attention_mask.dtype, device=attention_mask.device)
        return embeds, torch.cat([query_mask, attention_mask], dim=1)

    def itm_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   features: torch.Tensor | None = None, kv: CrossAttentionKV | None = None) -> torch.Tensor:
        """ITM logits ``[B, 2]`` (mean over query tokens; index 1 = match) of pairs (features[b], caption b).

        ``input_ids``/``attention_mask``: ``[B, L]`` caption tokens (with [CLS]/[SEP], right padding).
        Give either ``features`` ``[B, T, D]`` (stock Q-Former call) or ``kv`` (per-pair cached K/V, from
        ``cross_attention_kv(...).select(slots)``).
        """
        if (features is None) == (kv is None):
            raise ValueError("give exactly one of features and kv")
        embeds, mask = self._query_and_text_embeddings(input_ids, attention_mask)
        n_query = self.num_query_tokens
        if features is not None:
            image_mask = torch.ones(features.shape[:-1], dtype=torch.long, device=features.device)
            hidden = self.qformer(query_embeds=embeds, query_length=n_query, attention_mask=mask,
                                  encoder_hidden_states=features, encoder_attention_mask=image_mask,
                                  ).last_hidden_state
        else:
            hidden = self._qformer_with_cached_kv(embeds, mask, kv)
        logits = self.itm_head(hidden[:, :n_query, :].to(self.itm_head.weight.dtype))
        return logits.mean(dim=1)

    def _qformer_with_cached_kv(self, embeds: torch.Tensor, mask: torch.Tensor,
                                kv: CrossAttentionKV) -> torch.Tensor:
        """The Q-Former encoder pass of ``Blip2QFormerModel`` with cross-attention K/V given, not recomputed."""
        qformer = self.qformer
        hidden = qformer.dropout(qformer.layernorm(embeds.to(self.dtype)))
        self_mask = create_bidirectional_mask(config=qformer.config, inputs_embeds=hidden, attention_mask=mask)
        n_query = self.num_query_tokens
        for index, layer in enumerate(qformer.encoder.layer):
            attended = layer.attention(hidden_states=hidden, attention_mask=self_mask)
            queries = attended[:, :n_query, :]
            if layer.has_cross_attention:
                queries = self._cross_attend(layer.crossattention, queries, kv.keys[index], kv.values[index])
            out = layer.feed_forward_chunk_query(queries)
            if attended.shape[1] > n_query:
                out = torch.cat([out, layer.feed_forward_chunk(attended[:, n_query:, :])], dim=1)
            hidden = out
        return hidden

    def _cross_attend(self, cross: Blip2QFormerAttention, queries: torch.Tensor,
                      keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        attn = cross.attention
        batch, length = queries.shape[:2]
        q = attn.query(queries).view(batch, length, attn.num_attention_heads, attn.attention_head_size)
        dropout = attn.attention_dropout if attn.training else 0.0
        out = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, dropout_p=dropout,
                                             scale=attn.scaling)
        out = out.transpose(1, 2).reshape(batch, length, attn.all_head_size)
        return cross.output(out, queries)

    def image_embeddings(self, features: torch.Tensor) -> torch.Tensor:
        """ITC image embeddings ``[U, Q, E]`` (L2-normalised) of images ``features`` ``[U, T, D]``."""
        query_tokens = self.query_tokens.expand(features.shape[0], -1, -1)
        image_mask = torch.ones(features.shape[:-1], dtype=torch.long, device=features.device)
        hidden = self.qformer(query_embeds=query_tokens, encoder_hidden_states=features,
                              encoder_attention_mask=image_mask).last_hidden_state
        hidden = hidden.to(self.vision_projection.weight.dtype)
        return F.normalize(self.vision_projection(hidden), dim=-1)

    def text_embeddings(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """ITC text embeddings ``[B, E]`` (L2-normalised projection of the caption's [CLS] output)."""
        embeds = self.embeddings(input_ids=input_ids)
        hidden = self.qformer(query_embeds=embeds, query_length=0, attention_mask=attention_mask).last_hidden_state
        hidden = hidden.to(self.text_projection.weight.dtype)
        return F.normalize(self.text_projection(hidden[:, 0, :]), dim=-1)


def itc_scores(image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """Per pair ``b``: max over queries of ``image_embeds[b] @ text_embeds[b]``; ``[B, Q, E] x [B, E] -> [B]``."""
    dtype = torch.promote_types(image_embeds.dtype, torch.float32)  # fp16/bf16 -> fp32; fp64 stays fp64
    return torch.einsum("bqe,be->bq", image_embeds.to(dtype), text_embeds.to(dtype)).max(dim=1).values
