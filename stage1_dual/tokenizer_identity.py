"""Content identity of a text tokenizer, for cache keys: what it is and everything that changes its output.

``tokenizer_identity(tok)`` -> ``{"class", "context_length" (open_clip) / "model_max_length" (Hugging Face),
"content": sha256 of its full serialisation}``. A Hugging Face fast tokenizer is serialised with
``backend_tokenizer.to_str()`` (vocabulary, merges, normaliser, pre-tokeniser, post-processor; not the
padding / truncation state that each call sets: the text length is named by the caller's identity);
a slow one by its sorted vocabulary and init kwargs. open_clip's ``HFTokenizer`` is identified through the
Hugging Face tokenizer it wraps; its ``SimpleTokenizer`` by its vocabulary (the BPE file bundled with the
installed open_clip). Never a path or a file time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hf_content(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # padding / truncation are per-call state (set by each __call__), not identity
        state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("padding", "truncation")}
        return _sha256(json.dumps(state, sort_keys=True))
    return _sha256(json.dumps({"vocab": sorted(tokenizer.get_vocab().items()),
                               "init": getattr(tokenizer, "init_kwargs", {})}, sort_keys=True, default=str))


def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """Identity of ``tokenizer`` (see module docstring); unknown kinds are named by class and length only."""
    identity: dict[str, Any] = {"class": type(tokenizer).__name__}
    if getattr(tokenizer, "context_length", None) is not None:
        identity["context_length"] = int(tokenizer.context_length)
    inner = getattr(tokenizer, "tokenizer", None)  # open_clip HFTokenizer wraps a Hugging Face tokenizer
    hf = inner if inner is not None and hasattr(inner, "get_vocab") else tokenizer
    if hasattr(hf, "get_vocab"):
        identity["model_max_length"] = int(min(getattr(hf, "model_max_length", 0) or 0, 2 ** 31))
        identity["content"] = _hf_content(hf)
    elif isinstance(getattr(tokenizer, "encoder", None), dict):  # open_clip SimpleTokenizer
        identity["content"] = _sha256("\n".join(f"{token}\t{index}" for token, index in tokenizer.encoder.items()))
    return identity
