"""Per-item compute costs and the latency-per-query model of the tables and plots.

A rerun served from caches does not run the models, so its wall times say nothing about latency. Each
cost is therefore measured when it is computed (items > 0) and kept in a small JSON ledger next to the
caches, keyed by what was computed; later runs read it back and say so (``source: ledger``).

Latency model (milliseconds per query; all costs measured on this machine):
- stage 1, t2i: text encode per caption + t2i search per query; i2t: image encode per image + i2t
  search per query;
- stage 2 at depth k: stage 1 + k x (Q-Former ITM+ITC time per pair), plus, for i2t, one vision-tower
  forward for the query image (t2i gallery images are encoded offline, like the stage-1 index).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


@dataclass
class Cost:
    """Seconds per item of one computation and where the figure comes from."""

    seconds_per_item: Optional[float]
    source: str  # "this run", "ledger" or "unknown"

    def as_dict(self) -> dict[str, Any]:
        return {"seconds_per_item": self.seconds_per_item, "source": self.source}


class CostLedger:
    """JSON file of measured per-item costs: ``{key: seconds_per_item}``; written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.entries: dict[str, float] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}

    def cost(self, key: str, seconds: float, items: int) -> Cost:
        """Cost per item: measured now when ``items > 0`` (and recorded), else the recorded one."""
        if items > 0:
            self.entries[key] = seconds / items
            self._save()
            return Cost(seconds / items, "this run")
        if key in self.entries:
            return Cost(self.entries[key], "ledger")
        return Cost(None, "unknown")

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def _ms(*seconds: Optional[float]) -> Optional[float]:
    if any(s is None for s in seconds):
        return None
    return 1000.0 * float(sum(seconds))  # type: ignore[arg-type]


def stage1_latency(text: Cost, image: Cost, search_s_per_query: dict[str, float]) -> dict[str, Optional[float]]:
    """Stage-1 ms per query of both directions."""
    return {"t2i": _ms(text.seconds_per_item, search_s_per_query["t2i"]),
            "i2t": _ms(image.seconds_per_item, search_s_per_query["i2t"])}


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
