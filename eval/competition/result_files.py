"""The two result files of the competition: writing them and checking them against the template.

- ``result1.csv`` (task 1, text to image): columns ``text_id,similarity_ranking,result_image_id``;
- ``result2.csv`` (task 2, image to text): columns ``image_id,similarity_ranking,result_text_id``.
One row per (query, rank): the query's rows are consecutive, in query-file order, with
``similarity_ranking`` 1, 2, ..., top_k (fewer only when the gallery is smaller); ids are written
verbatim. CSV with standard quoting, ``\\n`` line ends, UTF-8 (optionally with a byte-order mark).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

RESULT1_COLUMNS = ("text_id", "similarity_ranking", "result_image_id")
RESULT2_COLUMNS = ("image_id", "similarity_ranking", "result_text_id")
RESULT_FILES = {"task1": ("result1.csv", RESULT1_COLUMNS), "task2": ("result2.csv", RESULT2_COLUMNS)}


class ResultFileError(ValueError):
    """A result file that does not follow the template; the message names the file and line."""


@dataclass(frozen=True)
class ResultFileSummary:
    """What a valid result file holds: queries answered and rows."""

    queries: int
    rows: int


def write_result_file(path: Path, columns: Sequence[str], query_ids: Sequence[str],
                      results: Sequence[Sequence[str]], encoding: str = "utf-8") -> Path:
    """Write ``results[q]`` (gallery ids, best first) of every query ``query_ids[q]`` with ranks 1..len."""
    if len(query_ids) != len(results):
        raise ValueError(f"{len(query_ids)} query ids but {len(results)} result lists")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for query, ranked in zip(query_ids, results):
        for rank, item in enumerate(ranked, start=1):
            writer.writerow([query, rank, item])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def validate_result_file(path: Path, columns: Sequence[str], query_ids: Sequence[str], gallery_ids: Sequence[str],
                         top_k: int) -> ResultFileSummary:
    """Check ``path`` against the template; ResultFileError naming the line on the first problem.

    Checks: UTF-8 (a byte-order mark is allowed), the exact header, three fields per row, every query
    id among ``query_ids`` with its rows consecutive and queries in ``query_ids`` order, ranks exactly
    1..n with n = min(top_k, gallery size), results among ``gallery_ids`` and not repeated for a query.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"{path}: not UTF-8 ({exc})") from exc
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or tuple(rows[0]) != tuple(columns):
        raise ResultFileError(f"{path}:1: header must be {','.join(columns)}, got {','.join(rows[0]) if rows else ''}")
    expected_n = min(top_k, len(gallery_ids))
    order = {q: i for i, q in enumerate(query_ids)}
    gallery = set(gallery_ids)
    groups: list[tuple[str, list[tuple[int, list[str]]]]] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 3:
            raise ResultFileError(f"{path}:{line}: expected 3 fields, got {len(row)}")
        if not groups or groups[-1][0] != row[0]:
            groups.append((row[0], []))
        groups[-1][1].append((line, row))
    last = -1
    seen: set[str] = set()
    for query, lines in groups:
        first_line = lines[0][0]
        if query not in order:
            raise ResultFileError(f"{path}:{first_line}: unknown query id {query!r}")
        if query in seen or order[query] < last:
            raise ResultFileError(f"{path}:{first_line}: rows of query {query!r} are not consecutive in query order")
        seen.add(query)
        last = order[query]
        ranks = [r[1] for _, r in lines]
        if ranks != [str(k) for k in range(1, expected_n + 1)]:
            raise ResultFileError(f"{path}:{first_line}: query {query!r} has ranks {ranks}, expected 1..{expected_n}")
        items = [r[2] for _, r in lines]
        unknown = [i for i in items if i not in gallery]
        if unknown:
            raise ResultFileError(f"{path}:{first_line}: query {query!r} returns unknown id {unknown[0]!r}")
        if len(set(items)) != len(items):
            raise ResultFileError(f"{path}:{first_line}: query {query!r} returns the same id twice")
    return ResultFileSummary(queries=len(groups), rows=len(rows) - 1)
