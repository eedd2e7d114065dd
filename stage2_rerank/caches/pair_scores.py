"""On-disk pair-score cache: (model key, Q-Former precision, image fingerprint, caption text) -> ITM logits, ITC.

One SQLite file (WAL journal) holds all models, in table :data:`TABLE` (``key, itm_no, itm_match, itc,
digest``). A row's key is the sha256 of the four key parts; the model key (``rerank.Reranker.model_key``) is
a content identity of everything else that can change a score (checkpoint bytes, vision provider and its
dtype, feature storage, text length, device type, library versions, :data:`SCORE_CODE_VERSION`). Every
``put_many`` is one committed transaction, so an interrupted rerank keeps every batch it finished and a rerun
(or a smaller depth) reads them back instead of recomputing. Values are float32 round-tripped exactly (stored
as SQLite REAL = float64).

Integrity: each row carries ``digest`` = sha256 of its key and the three stored values (as float64). A row
whose digest does not match is treated as missing (recomputed by the caller and overwritten by ``put_many``)
and a WARNING names the file once. A file SQLite cannot read (not a database, malformed pages) is renamed to
``<name>.corrupt-<UTC time>`` (with its ``-wal`` / ``-shm``), a WARNING names it, and the cache starts a
fresh file: its scores are recomputed. Rows of the previous format (table ``scores``, no digest) are never read.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import struct
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np

from rrbench_base.cache_files import move_aside

log = logging.getLogger(__name__)

TABLE = "pair_scores_v2"  # rename when the row layout or its digest changes
SCORE_CODE_VERSION = 2  # bump when the scoring code (pair_scoring, qformer_scorer, providers) changes values
_SQL_CHUNK = 500  # keys per SELECT ... IN (...), below SQLite's variable limit
_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB (primary result codes)
_T = TypeVar("_T")


def _is_damaged(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _CORRUPT_CODES
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text


def row_digest(key: bytes, itm_no: float, itm_match: float, itc: float) -> bytes:
    """16-byte checksum of a row: sha256 of its key and values packed as float64."""
    return hashlib.sha256(key + struct.pack("<3d", itm_no, itm_match, itc)).digest()[:16]


class ScoreCache:
    """Pair scores of one model key and precision, keyed by (image fingerprint, caption text)."""

    def __init__(self, path: Path, model_key: str, precision: str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._prefix = f"{SCORE_CODE_VERSION}\x00{model_key}\x00{precision}\x00".encode()
        self._warned_rows = False
        self.damaged_rows = 0
        self._db: sqlite3.Connection | None = None
        self._guarded(lambda: None)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key BLOB PRIMARY KEY, itm_no REAL NOT NULL, "
                       "itm_match REAL NOT NULL, itc REAL NOT NULL, digest BLOB NOT NULL) WITHOUT ROWID")
            db.commit()
        except BaseException:
            db.close()
            raise
        return db

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        """Move the damaged file (and its WAL / shared-memory files) aside and warn, naming it."""
        if self._db is not None:
            self._db.close()
            self._db = None
        aside = move_aside(self.path) if self.path.exists() else None
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                move_aside(side)
        log.warning("score cache %s is damaged (%s): moved to %s; its scores are recomputed", self.path, exc,
                    aside.name if aside else "nothing")

    def _guarded(self, operation: Callable[[], _T]) -> _T:
        """Run ``operation`` on an open database; on a damaged file, set it aside, reopen fresh and run it
        once more (other errors, e.g. a locked database, propagate)."""
        for attempt in (0, 1):
            try:
                if self._db is None:
                    self._db = self._connect()
                return operation()
            except sqlite3.DatabaseError as exc:
                if attempt or not _is_damaged(exc):
                    raise
                self._set_aside(exc)
        raise AssertionError("unreachable")

    def _key(self, fingerprint: str, text: str) -> bytes:
        return hashlib.sha256(self._prefix + fingerprint.encode() + b"\x00" + text.encode()).digest()

    def _select(self, blobs: list[bytes]) -> dict[bytes, tuple[float, float, float]]:
        rows: dict[bytes, tuple[float, float, float]] = {}
        bad = 0
        for start in range(0, len(blobs), _SQL_CHUNK):
            chunk = blobs[start:start + _SQL_CHUNK]
            query = (f"SELECT key, itm_no, itm_match, itc, digest FROM {TABLE} "
                     f"WHERE key IN ({','.join('?' * len(chunk))})")
            for key, no, match, itc, digest in self._db.execute(query, chunk):
                try:
                    valid = row_digest(key, no, match, itc) == digest
                except (struct.error, TypeError):
                    valid = False
                if valid:
                    rows[key] = (no, match, itc)
                else:
                    bad += 1
        if bad:
            self.damaged_rows += bad
            if not self._warned_rows:
                self._warned_rows = True
                log.warning("score cache %s: %d cached scores fail their checksum: ignoring and recomputing them",
                            self.path, bad)
        return rows

    def get_many(self, keys: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For (fingerprint, text) keys: ``found`` bool ``[n]``, ITM logits float32 ``[n, 2]``, ITC ``[n]``.
        Rows failing their checksum count as not found."""
        blobs = [self._key(fp, text) for fp, text in keys]
        rows = self._guarded(lambda: self._select(blobs))
        found = np.array([b in rows for b in blobs], dtype=bool)
        logits = np.full((len(blobs), 2), np.nan, dtype=np.float32)
        itc = np.full(len(blobs), np.nan, dtype=np.float32)
        for i, blob in enumerate(blobs):
            if blob in rows:
                no, match, sim = rows[blob]
                logits[i] = (no, match)
                itc[i] = sim
        return found, logits, itc

    def put_many(self, keys: Sequence[tuple[str, str]], itm_logits: np.ndarray, itc: np.ndarray) -> None:
        """Store scores of (fingerprint, text) keys with their checksums in one committed transaction
        (replacing rows of the same keys)."""
        rows = []
        for (fp, text), lg, sim in zip(keys, np.asarray(itm_logits, np.float32), np.asarray(itc, np.float32)):
            key, values = self._key(fp, text), (float(lg[0]), float(lg[1]), float(sim))
            rows.append((key, *values, row_digest(key, *values)))

        def insert() -> None:
            with self._db:
                self._db.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?)", rows)

        self._guarded(insert)

    def __len__(self) -> int:
        return self._guarded(lambda: self._db.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
