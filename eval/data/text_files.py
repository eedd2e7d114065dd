"""Reading annotation tables (CSV, TSV, JSONL) line by line, with the bad-input policy applied.

Contract of :func:`read_table`:
- Returns one :class:`TableRow` per data record, in file order, with ``fields`` mapping column name
  to value (strings for CSV/TSV; any JSON value for JSONL) and ``where`` = ``"<file>:<line>"``.
- File-level problems always raise :class:`BadInputError` naming the file: file not found, a header
  that is not UTF-8, a required column absent from the header (the message lists the columns found).
- Row-level problems go through ``bad`` (raise under ``"error"``, record and drop the row under
  ``"skip"``): a line with non-UTF-8 bytes (named by line number and byte offset), a CSV/TSV row with
  the wrong number of fields, a JSONL line that is not a JSON object or lacks a required key.
- TSV is read without quote processing (Flickr8k convention: a ``"`` is an ordinary character);
  CSV uses standard quoting (a quoted field may span lines).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from eval.data.bad_input import BadInputLog
from eval.data.benchmark import BadInputError
from rrbench_base.config_paths import path_note

TableFormat = Literal["csv", "tsv", "jsonl"]
SUFFIX_FORMATS: dict[str, TableFormat] = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl"}


# csv.reader settings per delimited format: TSV has no quoting (a '"' is an ordinary character).
CSV_DIALECTS: dict[str, dict[str, Any]] = {
    "csv": {},
    "tsv": {"delimiter": "\t", "quoting": csv.QUOTE_NONE},
}


@dataclass(frozen=True)
class TableRow:
    """One data record: ``index`` (0-based among data records), ``line`` (1-based physical line)."""

    index: int
    line: int
    fields: dict[str, Any]
    where: str


def table_format(path: Path) -> TableFormat:
    """Format from the file suffix (.csv, .tsv/.txt, .jsonl); anything else is an error."""
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadInputError(
            f"{path}: unknown annotation file type {path.suffix!r} (known: {', '.join(SUFFIX_FORMATS)})"
        )
    return fmt


def decoded_lines(path: Path, bad: BadInputLog, kind: str = "caption") -> list[tuple[int, str]]:
    """``(line number, text)`` of every UTF-8 line of ``path`` (line endings kept).

    A line that is not valid UTF-8 goes to ``bad`` as a ``kind`` item (``"line N"``) naming the line
    and byte offset, and is left out. The first line may start with a UTF-8 byte-order mark (removed).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise BadInputError(f"annotation file not found: {path}{path_note(path)}") from exc
    except IsADirectoryError as exc:
        raise BadInputError(f"{path}: is a directory; expected an annotation file (.csv, .tsv, .jsonl)"
                              f"{path_note(path)}") from exc
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read annotation file: {exc.strerror or exc}") from exc
    lines: list[tuple[int, str]] = []
    for number, chunk in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            lines.append((number, chunk.decode("utf-8-sig" if number == 1 else "utf-8")))
        except UnicodeDecodeError as exc:
            reason = f"non-UTF-8 bytes: {chunk[exc.start:exc.start + 4]!r} at byte {exc.start} of the line"
            if number == 1:
                raise BadInputError(f"{path}:1: header line has {reason}") from exc
            bad.bad(kind, f"line {number}", f"{path}:{number}", reason)
    return lines


def require_columns(path: Path, found: Sequence[str], required: Sequence[str]) -> None:
    """Raise BadInputError naming the file and the first missing column, listing the columns found."""
    for column in required:
        if column not in found:
            raise BadInputError(
                f"{path}: missing column {column!r} (columns found: {', '.join(map(str, found)) or 'none'})"
            )


def _delimited_rows(path: Path, fmt: TableFormat, required: Sequence[str],
                    bad: BadInputLog) -> Iterator[TableRow]:
    lines = decoded_lines(path, bad)
    if not lines:
        raise BadInputError(f"{path}: empty file (expected a header line)")
    numbers = [n for n, _ in lines]
    reader = csv.reader((t for _, t in lines), **CSV_DIALECTS[fmt])
    header = [h.strip() for h in next(reader)]
    require_columns(path, header, required)
    index = 0
    for record in reader:
        line = numbers[reader.line_num - 1]
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line
        where = f"{path}:{line}"
        if len(record) != len(header):
            bad.bad("caption", f"row {index}", where,
                    f"wrong field count: expected {len(header)} fields, found {len(record)}")
        else:
            yield TableRow(index, line, dict(zip(header, record)), where)
        index += 1


def _jsonl_rows(path: Path, required: Sequence[str], bad: BadInputLog) -> Iterator[TableRow]:
    index = 0
    for line, text in decoded_lines(path, bad):
        if not text.strip():
            continue
        where = f"{path}:{line}"
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.bad("caption", f"row {index}", where, f"invalid JSON: {exc.msg}")
            index += 1
            continue
        if not isinstance(record, dict):
            bad.bad("caption", f"row {index}", where, f"invalid JSON: expected an object, got {type(record).__name__}")
        else:
            missing = [k for k in required if k not in record]
            if missing:
                bad.bad("caption", f"row {index}", where,
                        f"missing field: {missing[0]!r} (fields found: {', '.join(record) or 'none'})")
            else:
                yield TableRow(index, line, record, where)
        index += 1


def read_table(path: Path, required: Sequence[str], bad: BadInputLog,
               fmt: TableFormat | None = None) -> list[TableRow]:
    """All data rows of a CSV/TSV/JSONL file that has the ``required`` columns (see module doc)."""
    fmt = fmt or table_format(path)
    rows = _jsonl_rows(path, required, bad) if fmt == "jsonl" else _delimited_rows(path, fmt, required, bad)
    return list(rows)
