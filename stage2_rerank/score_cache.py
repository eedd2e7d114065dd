"""On-disk pair-score cache: (model, precision, caption text, image fingerprint) -> ITM logits and ITC.

One SQLite file (WAL journal) holds all models; a row's key is the SHA-1 of the four key parts. Every
``put_many`` is one committed transaction, so an interrupted rerank keeps every batch it finished and a
rerun (or a smaller depth) reads them back instead of recomputing. Values are float32 round-tripped
exactly (stored as SQLite REAL = float64).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Sequence

import numpy as np

_SQL_CHUNK = 500  # keys per SELECT ... IN (...), below SQLite's variable limit


class ScoreCache:
    """Pair scores of one model identity and precision, keyed by (caption text, image fingerprint)."""

    def __init__(self, path: Path, model_key: str, precision: str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._prefix = f"{model_key}\x00{precision}\x00".encode()
        self._db = sqlite3.connect(path, timeout=60.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (key BLOB PRIMARY KEY, itm_no REAL NOT NULL, "
                         "itm_match REAL NOT NULL, itc REAL NOT NULL) WITHOUT ROWID")
        self._db.commit()
        self.path = path

    def _key(self, fingerprint: str, text: str) -> bytes:
        return hashlib.sha1(self._prefix + fingerprint.encode() + b"\x00" + text.encode()).digest()

    def get_many(self, keys: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For (fingerprint, text) keys: ``found`` bool ``[n]``, ITM logits float32 ``[n, 2]``, ITC ``[n]``."""
        blobs = [self._key(fp, text) for fp, text in keys]
        rows: dict[bytes, tuple[float, float, float]] = {}
        for start in range(0, len(blobs), _SQL_CHUNK):
            chunk = blobs[start:start + _SQL_CHUNK]
            query = f"SELECT key, itm_no, itm_match, itc FROM scores WHERE key IN ({','.join('?' * len(chunk))})"
            for key, no, match, itc in self._db.execute(query, chunk):
                rows[key] = (no, match, itc)
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
        """Store scores of (fingerprint, text) keys in one committed transaction."""
        rows = [(self._key(fp, text), float(lg[0]), float(lg[1]), float(sim))
                for (fp, text), lg, sim in zip(keys, np.asarray(itm_logits), np.asarray(itc))]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def close(self) -> None:
        self._db.close()
