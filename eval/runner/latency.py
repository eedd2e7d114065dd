"""Per-item compute costs and the latency-per-query model of the tables and plots.

A rerun served from caches does not run the models, so its wall times say nothing about latency. Each
cost is therefore measured when it is computed (items > 0) and kept in a small JSON ledger next to the
caches; later runs read it back and say so (``source: ledger``; tables and plots mark such latencies).
A ledger entry is keyed by everything the cost depends on (``cost_context``): the computation and model
identity, precision, device, batch settings, the dataset's identity and the hardware (CPU model, GPU
names, torch threads). A cost measured on another dataset, machine or batch shape is never reused.

Latency model (milliseconds per query; all costs measured on this machine):
- stage 1, t2i: text encode per caption + t2i search per query; i2t: image encode per image + i2t
  search per query;
- stage 2 at depth k: stage 1 + k x (Q-Former ITM+ITC time per pair), plus, for i2t, one vision-tower
  forward for the query image (t2i gallery images are encoded offline, like the stage-1 index).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

THIS_RUN, LEDGER, UNKNOWN = "this run", "ledger", "unknown"


@dataclass
class Cost:
    """Seconds per item of one computation and where the figure comes from.

    Attributes:
        seconds_per_item: None when unknown.
        source: ``"this run"`` (measured now), ``"ledger"`` (measured by an earlier run with the same
            context) or ``"unknown"``.
        measured_at: UTC time of the measurement (ledger entries), None otherwise.
    """

    seconds_per_item: Optional[float]
    source: str
    measured_at: Optional[str] = None

    def as_dict(self) -> dict[str, Any]:
        out = {"seconds_per_item": self.seconds_per_item, "source": self.source}
        if self.measured_at is not None:
            out["measured_at"] = self.measured_at
        return out


def hardware_context() -> dict[str, Any]:
    """CPU model, visible GPU names and torch's current CPU thread count: the hardware part of a cost key."""
    from rrbench_base.provenance import hardware

    found = hardware()
    return {"cpu": found["cpu"], "gpus": found["gpus"], "torch_threads": found["torch_threads"]}


def cost_context(computation: str, model: Any, settings: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Everything a per-item cost depends on (JSON-ready): computation name, model identity (incl.
    precision and device), settings (batch sizes, lengths, ...), dataset identity and ``hardware_context()``."""
    return {"computation": computation, "model": model, "settings": settings, "dataset": dataset,
            "hardware": hardware_context()}


def context_key(context: dict[str, Any]) -> str:
    """Ledger key of a context: SHA-256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(context, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class CostLedger:
    """JSON file of measured per-item costs: ``{context_key: {"seconds_per_item", "items", "measured_at",
    "context"}}``; written atomically. Entries of older formats (not objects) are ignored and dropped."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        loaded = loaded if isinstance(loaded, dict) else {}
        self.entries: dict[str, dict[str, Any]] = {k: v for k, v in loaded.items()
                                                   if isinstance(v, dict) and "seconds_per_item" in v}

    def cost(self, context: dict[str, Any], seconds: float, items: int) -> Cost:
        """Cost per item: measured now when ``items > 0`` (and recorded under ``context``), else the one
        recorded for exactly this context, else unknown."""
        key = context_key(context)
        if items > 0:
            now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            self.entries[key] = {"seconds_per_item": seconds / items, "items": items, "measured_at": now,
                                 "context": context}
            self._save()
            return Cost(seconds / items, THIS_RUN)
        entry = self.entries.get(key)
        if entry is not None:
            return Cost(float(entry["seconds_per_item"]), LEDGER, entry.get("measured_at"))
        return Cost(None, UNKNOWN)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, self.path)


def combined_source(*costs: Cost) -> str:
    """Source of a latency built from several costs: unknown if any is, else ledger if any is, else this run."""
    sources = {c.source for c in costs}
    return UNKNOWN if UNKNOWN in sources else LEDGER if LEDGER in sources else THIS_RUN


def _ms(*seconds: Optional[float]) -> Optional[float]:
    if any(s is None for s in seconds):
        return None
    return 1000.0 * float(sum(seconds))  # type: ignore[arg-type]


def stage1_latency(text: Cost, image: Cost, search_s_per_query: dict[str, float]) -> dict[str, Optional[float]]:
    """Stage-1 ms per query of both directions."""
    return {"t2i": _ms(text.seconds_per_item, search_s_per_query["t2i"]),
            "i2t": _ms(image.seconds_per_item, search_s_per_query["i2t"])}


def stage1_sources(text: Cost, image: Cost) -> dict[str, str]:
    """Where each direction's stage-1 latency comes from (search is timed in every run)."""
    return {"t2i": combined_source(text), "i2t": combined_source(image)}


def stage2_latency(stage1_ms: dict[str, Optional[float]], pair: Cost, vision: Cost,
                   depth: int) -> dict[str, Optional[float]]:
    """Stage-2 ms per query at rerank depth ``depth`` (see the module docstring)."""
    per_pair = pair.seconds_per_item
    out: dict[str, Optional[float]] = {}
    for direction in ("t2i", "i2t"):
        base = stage1_ms[direction]
        if base is None or per_pair is None:
            out[direction] = None
            continue
        extra = depth * per_pair
        if direction == "i2t":
            if vision.seconds_per_item is None:
                out[direction] = None
                continue
            extra += vision.seconds_per_item
        out[direction] = base + 1000.0 * extra
    return out


def stage2_sources(text: Cost, image: Cost, pair: Cost, vision: Cost) -> dict[str, str]:
    """Where each direction's stage-2 latency comes from."""
    return {"t2i": combined_source(text, pair), "i2t": combined_source(image, pair, vision)}
