"""Config field documentation, read from the ``Attributes:`` section of each dataclass docstring.

Each field is documented once, next to its definition; ``config_reference(cls)`` walks nested
dataclasses and returns one row per dotted key (key, type, default, text), which ``rrbench config
--doc`` prints and a test uses to check that no field is undocumented.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

_FIELD_LINE = re.compile(r"^\s{4,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> description, parsed from the ``Attributes:`` section of ``cls.__doc__``."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    docs: dict[str, str] = {}
    current = None
    for raw in lines[start + 1:]:
        if raw.strip() and not raw.startswith(" "):
            break  # next section
        match = _FIELD_LINE.match(raw)
        indent = len(raw) - len(raw.lstrip())
        if match and indent <= 8 and match.group(1) in {f.name for f in dataclasses.fields(cls)}:
            current = match.group(1)
            docs[current] = match.group(2).strip()
        elif current and raw.strip():
            docs[current] += " " + raw.strip()
    return docs


@dataclass(frozen=True)
class FieldDoc:
    """One documented config key."""

    key: str
    type: str
    default: str
    text: str


def _nested_dataclass(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _default_repr(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
        return "{...}" if dataclasses.is_dataclass(value) else repr(value)
    return "(required)"


def config_reference(cls: type, prefix: str = "") -> list[FieldDoc]:
    """Every field of ``cls`` and of nested dataclasses, as dotted keys with type, default and text."""
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    rows = []
    for field in dataclasses.fields(cls):
        key = f"{prefix}{field.name}"
        tp = hints[field.name]
        type_name = str(tp).replace("typing.", "").replace("pathlib.", "")
        if isinstance(tp, type):
            type_name = tp.__name__
        rows.append(FieldDoc(key, type_name, _default_repr(field), docs.get(field.name, "")))
        nested = _nested_dataclass(tp)
        if nested is not None:
            rows.extend(config_reference(nested, prefix=f"{key}."))
    return rows


def render_reference(rows: list[FieldDoc]) -> str:
    """Markdown table of the config reference."""
    out = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for row in rows:
        text = row.text.replace("|", "\\|")
        out.append(f"| `{row.key}` | {row.type.replace('|', '/')} | {row.default.replace('|', '/')} | {text} |")
    return "\n".join(out)
