"""Torch CPU threads of a run: the config's ``threads``, else the environment's, else torch's own setting.

``resolve_threads(configured, environ, current)`` decides; ``run_experiment`` applies the result for the
run only and records it in results.json (``provenance.threads``: ``{"count": n, "source": ...}``).
Sources: ``config`` (``threads: N``), ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (the first of them set to
a positive integer; OpenMP's list form ``4,2`` counts its first level), ``torch`` (neither is set: torch's
current setting is kept, i.e. whatever the caller or torch's default chose, one thread per physical core).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

log = logging.getLogger(__name__)

ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class ThreadSetting:
    """Effective torch CPU thread count of a run and where it came from (``config``, an env var, ``torch``)."""

    count: int
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "source": self.source}


def _env_threads(value: str) -> Optional[int]:
    """Positive thread count of an OMP/MKL variable (``"4"`` or OpenMP's nested ``"4,2"``), None if unusable."""
    try:
        count = int(value.split(",")[0].strip())
    except ValueError:
        return None
    return count if count >= 1 else None


def resolve_threads(configured: Optional[int], environ: Mapping[str, str], current: int) -> ThreadSetting:
    """The thread setting of a run: ``configured`` when given, else the first usable of ``ENV_VARS`` in
    ``environ``, else ``current`` (torch's setting now)."""
    if configured is not None:
        return ThreadSetting(int(configured), "config")
    for name in ENV_VARS:
        value = environ.get(name)
        if value is None or not value.strip():
            continue
        count = _env_threads(value)
        if count is None:
            log.warning("ignoring %s=%r: not a positive integer", name, value)
            continue
        return ThreadSetting(count, name)
    return ThreadSetting(int(current), "torch")
