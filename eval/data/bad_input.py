"""The ``on_bad_input`` policy: raise one clear error, or skip the item and record why.

``BadInputLog(policy)``: loaders call ``log.bad(kind, item, source, reason)`` for every bad item.
With ``"error"`` it raises :class:`BadInputError` with ``"<source>: <kind> <item>: <reason>"``;
with ``"skip"`` it appends a :class:`SkipRecord` (later stored in ``Benchmark.skipped`` and in the
run's results) and returns, and the caller drops the item.
"""

from __future__ import annotations

import logging
import os
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


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class DatasetRoot:
    """A dataset root as written (``lexical``: absolute, normalised, symlinks kept) and its ``real`` path."""

    lexical: str
    real: str

    @staticmethod
    def of(root: Path | str) -> "DatasetRoot":
        lexical = os.path.normpath(os.path.abspath(root))
        return DatasetRoot(lexical, os.path.realpath(lexical))

    def contained(self, relative: str) -> str | None:
        """``normpath(root / relative)`` if it lies inside the root as written, else None. No symlink is resolved.

        ``..`` leaving the root and absolute paths outside it are refused; an absolute path inside the root's
        real path is accepted too (the same place, spelled without the root's symlinks).
        """
        joined = os.path.normpath(os.path.join(self.lexical, relative))  # an absolute ref replaces the root
        if _inside(joined, self.lexical) or (os.path.isabs(relative) and _inside(joined, self.real)):
            return joined
        return None


def resolve_under(root: Path, relative: str) -> Path | None:
    """Real path of ``relative`` under ``root``; None if, as written, it escapes ``root`` (``..``, absolute).

    Containment is checked on the path as written (see :meth:`DatasetRoot.contained`); then symlinks are
    followed, so a root that is a symlink, or links inside it to files or folders elsewhere, load fine.
    """
    joined = DatasetRoot.of(root).contained(relative)
    return None if joined is None else Path(os.path.realpath(joined))
