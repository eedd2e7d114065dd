"""Stage-2 benchmarks: reranking speed against the stock forward and the LAVIS loop, parity with the stock model,
fp16/bf16 parity, device timings (``scripts/bench_rerank.py``, ``scripts/bench_rerank_device.py``), on
random-weight BLIP-2 checkpoints built from architecture configs (``random_checkpoint``).

Names are resolved on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "DeviceBenchOptions": "stage2_rerank.bench.device",
    "run_device_benchmark": "stage2_rerank.bench.device",
    "ParityReport": "stage2_rerank.bench.parity",
    "parity_report": "stage2_rerank.bench.parity",
    "blip2_itm_vit_g_config": "stage2_rerank.bench.random_checkpoint",
    "save_random_checkpoint": "stage2_rerank.bench.random_checkpoint",
    "tiny_blip2_itm_config": "stage2_rerank.bench.random_checkpoint",
    "render_markdown": "stage2_rerank.bench.report",
    "BenchOptions": "stage2_rerank.bench.runner",
    "run_benchmark": "stage2_rerank.bench.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stage2_rerank.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
