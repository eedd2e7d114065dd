"""The ``on_bad_input`` policy: raise one clear error, or skip the item and record why.

``BadInputLog(policy)``: loaders call ``log.bad(kind, item, source, reason)`` for every bad item.
With ``"error"`` it raises :class:`BadInputError` with ``"<source>: <kind> <item>: <reason>"``;
with ``"skip"`` it appends a :class:`SkipRecord` (later stored in ``Benchmark.skipped`` and in the
run's results) and returns, and the caller drops the item.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from eval.data.benchmark import BadInputError, OnBadInput, SkipRecord

log = logging.getLogger(__name__)


@dataclass
class BadInputLog:
    """Applies one ``on_bad_input`` policy and collects the skips."""

    policy: OnBadInput = "error"
    records: list[SkipRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy not in ("error", "skip"):
            raise ValueError(f"on_bad_input must be 'error' or 'skip', got {self.policy!r}")

    def bad(self, kind: str, item: str, source: str | Path, reason: str) -> None:
        """Raise (policy error) or record a skip (policy skip) for one bad item."""
        if self.policy == "error":
            raise BadInputError(f"{source}: {kind} {item!r}: {reason} (set on_bad_input: skip to skip such items)")
        self.records.append(SkipRecord(kind=kind, item=str(item), source=str(source), reason=reason))  # type: ignore[arg-type]

    def report(self) -> None:
        """Log a one-line summary of the skips (no-op when none)."""
        if self.records:
            log.warning("skipped %d bad item(s); first: %s", len(self.records), self.records[0])


def resolve_under(root: Path, relative: str) -> Path | None:
    """Absolute path of ``relative`` inside ``root``; None if it escapes ``root`` (``..``, absolute)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    try:
        candidate.relative_to(root)
    except ValueError:
        return None
    return candidate
