"""A word-level tokenizer whose vocabulary is built from training captions (for towers trained from scratch).

Words: lower-cased runs of letters/digits; every CJK ideograph is a word of its own; punctuation marks
are words. Ids: 0 = padding, 1 = unknown word, 2 = the leading summary token ``[CLS]``, then the
vocabulary in order.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import torch

PAD_ID, UNK_ID, CLS_ID = 0, 1, 2
NUM_SPECIAL = 3
_WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+|[^\w\s]")


def split_words(text: str) -> list[str]:
    """The words of ``text`` (see module docstring)."""
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str], min_count: int = 1) -> list[str]:
    """Words occurring at least ``min_count`` times, most frequent first (ties alphabetical)."""
    counts = Counter(word for text in texts for word in split_words(text))
    return [w for w, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if n >= min_count]


class WordTokenizer:
    """Maps texts to ``input_ids`` / ``attention_mask`` (int64 ``[B, T]``, ``[CLS]`` first, right-padded)."""

    def __init__(self, vocab: Sequence[str], max_length: int) -> None:
        if len(set(vocab)) != len(vocab):
            raise ValueError("word vocabulary has duplicate entries")
        self.vocab = list(vocab)
        self.max_length = max_length
        self._ids = {word: NUM_SPECIAL + i for i, word in enumerate(self.vocab)}

    @property
    def size(self) -> int:
        """Number of ids, specials included."""
        return NUM_SPECIAL + len(self.vocab)

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        rows = [[CLS_ID] + [self._ids.get(w, UNK_ID) for w in split_words(t)][: self.max_length - 1]
                for t in texts]
        length = max((len(r) for r in rows), default=1)
        ids = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return {"input_ids": ids, "attention_mask": (ids != PAD_ID).long()}
