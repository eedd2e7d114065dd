"""Stage-2 value types shared across modules (imports nothing from the package: numpy and dataclasses only).

- :class:`OomEvent`: one out-of-memory batch-size back-off;
- :class:`RerankStats` / :class:`PairScores`: what ``Reranker.score_pairs`` did and returned;
- :class:`CandidatePairs`: the distinct pairs of both directions' candidate lists (``candidate_pairs``);
- :class:`CandidateScores`: stage-2 scores of each query's first K candidates (what ``fusion`` fuses);
- :class:`RerankedCandidates`: what ``Reranker.score_candidates`` returns (scores per direction, pairs, stats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class OomEvent:
    """One out-of-memory back-off: in ``stage``, batch size ``batch_size`` -> ``new_batch_size``.

    ``error``: the error's type and first line (CUDA or CPU allocator); not part of equality.
    """

    stage: str
    batch_size: int
    new_batch_size: int
    error: str = field(default="", compare=False)


@dataclass
class RerankStats:
    """What one ``score_pairs`` call did (kept in results for provenance).

    Attributes:
        pairs: pairs asked for.
        unique_keys: distinct (image fingerprint, caption text) among them (excluding skipped images).
        cache_hits: unique keys read from the score cache.
        scored: unique keys computed by the Q-Former in this call.
        images_encoded: images run through the vision tower.
        qformer_batches: ITM Q-Former forwards (batches of pairs).
        oom_events: CUDA out-of-memory back-offs.
        skipped: (image id, reason) of images skipped under ``on_bad_input=skip`` (their pairs are NaN).
        seconds: wall time per phase (``vision``, ``itc``, ``itm``, ``total``); in a job of several processes the
            phases are summed over the processes and ``total`` is the wall time (``shared_scoring``).
        processes: in a job of several processes, each one's ``rank``, ``images_encoded``, ``pairs_scored``,
            ``qformer_batches`` and ``seconds`` per phase (empty in one process).
    """

    pairs: int = 0
    unique_keys: int = 0
    cache_hits: int = 0
    scored: int = 0
    images_encoded: int = 0
    qformer_batches: int = 0
    oom_events: list[OomEvent] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    processes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PairScores:
    """Stage-2 scores of pairs, row-aligned with the ``pairs`` given; NaN where an image was skipped.

    Attributes:
        itm_logits: float32 ``[P, 2]`` ITM logits ``[no-match, match]`` averaged over the query tokens.
        itc: float32 ``[P]`` ITC score (max over query embeddings of the cosine with the text embedding).
        stats: what the call did.
    """

    itm_logits: np.ndarray
    itc: np.ndarray
    stats: RerankStats

    @property
    def itm(self) -> np.ndarray:
        """float32 ``[P]`` match logit (index 1)."""
        return self.itm_logits[:, 1]

    @property
    def itm_prob(self) -> np.ndarray:
        """float32 ``[P]`` match probability ``softmax(itm_logits)[:, 1]``."""
        return (1.0 / (1.0 + np.exp(self.itm_logits[:, 0] - self.itm_logits[:, 1]))).astype(np.float32)


@dataclass(frozen=True)
class CandidatePairs:
    """Distinct pairs of the first ``depth`` candidates of both directions.

    Attributes:
        pairs: int64 ``[P, 2]`` (image index, caption index), distinct, sorted.
        t2i_rows: int64 ``[Qt, depth]`` row in ``pairs`` of each text-to-image candidate (-1: none).
        i2t_rows: int64 ``[Qi, depth]`` row in ``pairs`` of each image-to-text candidate (-1: none).
    """

    pairs: np.ndarray
    t2i_rows: np.ndarray
    i2t_rows: np.ndarray


@dataclass(frozen=True)
class CandidateScores:
    """Stage-2 scores of the first K candidates of Q queries.

    Attributes:
        itm_logits: float ``[Q, K, 2]`` ITM logits ``[no-match, match]``.
        itc: float ``[Q, K]`` ITC scores.
    """

    itm_logits: np.ndarray
    itc: np.ndarray

    @property
    def itm(self) -> np.ndarray:
        """``[Q, K]`` match logit."""
        return self.itm_logits[..., 1]

    @property
    def itm_prob(self) -> np.ndarray:
        """``[Q, K]`` match probability ``softmax(itm_logits)[..., 1]``."""
        return 1.0 / (1.0 + np.exp(self.itm_logits[..., 0].astype(np.float64) - self.itm_logits[..., 1]))

    def first(self, k: int) -> "CandidateScores":
        """Scores of the first ``k`` candidates."""
        if k > self.itc.shape[1]:
            raise ValueError(f"stage-2 scores cover {self.itc.shape[1]} candidates per query, depth {k} asked")
        return CandidateScores(self.itm_logits[:, :k], self.itc[:, :k])


@dataclass(frozen=True)
class RerankedCandidates:
    """Stage-2 scores of the first ``depth`` candidates of both directions (``Reranker.score_candidates``).

    Attributes:
        t2i / i2t: per-query scores ``[Q, depth]`` of that direction (None when its list was not given); NaN
            where a candidate id was -1 or its image was skipped.
        pairs: the distinct (image, caption) pairs that were scored and each slot's row among them.
        stats: what the scoring call did (None for in-memory scorers that keep no stats).
    """

    t2i: Optional[CandidateScores]
    i2t: Optional[CandidateScores]
    pairs: CandidatePairs
    stats: Optional[RerankStats] = None

    @property
    def candidate_slots(self) -> int:
        """Candidate slots of both directions that map to a scored pair."""
        return int((self.pairs.t2i_rows >= 0).sum() + (self.pairs.i2t_rows >= 0).sum())
