"""Config field documentation, read from the ``Attributes:`` section of each dataclass docstring.

Each field is documented once, next to its definition; ``config_reference(cls)`` walks nested
dataclasses and returns one row per dotted key (key, type, default, text), which ``rrbench config
--doc`` prints (``render_text``: plain text, the docstrings' reST markup removed, wrapped to a width)
and a test uses to check that no field is undocumented.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Sequence

from rrbench_base.config_paths import RELATIVE_PATH_RULE

_FIELD_LINE = re.compile(r"^\s{4,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> description, parsed from the ``Attributes:`` sections of ``cls`` and of the dataclasses it
    inherits fields from (a field is documented in the class that declares it)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass) and "__doc__" in vars(klass):
            docs.update(_own_attribute_docs(klass))
    return docs


def _own_attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> description, from the ``Attributes:`` section of ``cls``'s own docstring."""
    doc = inspect.cleandoc(cls.__doc__ or "")
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
    """Markdown table of the config reference (reST markup of the docstrings turned into Markdown code spans)."""
    out = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for row in rows:
        text = plain_text(row.text, code="`{}`").replace("|", "\\|")
        out.append(f"| `{row.key}` | {row.type.replace('|', '/')} | {row.default.replace('|', '/')} | {text} |")
    return "\n".join(out)


_ROLE = re.compile(r":[\w:.+-]+:`([^`]+)`")  # :class:`~a.b.C`, :func:`f`, :py:meth:`title <a.b>`
_LITERAL = re.compile(r"``(.+?)``(?!`)")  # ``x``
_DEFAULT_ROLE = re.compile(r"(?<![\w`])`([^`\s](?:[^`]*[^`\s])?)`_{0,2}(?![\w`])")  # `x`, `link`_
_STRONG = re.compile(r"(?<![\w*])\*\*(\S(?:[^*]*\S)?)\*\*(?![\w*])")  # **x**
_EMPHASIS = re.compile(r"(?<![\w*])\*(\S(?:[^*]*\S)?)\*(?![\w*])")  # *x*, not the "a * b" of a formula


def _role_target(match: re.Match) -> str:
    """What Sphinx shows for a role: the title of ``title <target>``, the last part of ``~a.b.C``."""
    content = match.group(1).strip()
    titled = re.fullmatch(r"(.+?)\s*<[^<>]+>", content)
    if titled:
        return titled.group(1)
    content = content.lstrip("!")
    return content.rsplit(".", 1)[-1] if content.startswith("~") else content


def plain_text(text: str, code: str = "{}") -> str:
    """``text`` with its reST inline markup removed: ````x```` -> ``x``, ``:class:`~a.b.C``` -> ``C``,
    ``:func:`a.f``` -> ``a.f``, ``*x*`` -> ``x``. ``code`` formats what was code (``"`{}`"`` for Markdown)."""
    text = _ROLE.sub(lambda m: code.format(_role_target(m).lstrip("~")), text)
    text = _LITERAL.sub(lambda m: code.format(m.group(1)), text)
    if code == "{}":
        text = _DEFAULT_ROLE.sub(lambda m: m.group(1), text)
    text = _STRONG.sub(lambda m: m.group(1), text)
    return _EMPHASIS.sub(lambda m: m.group(1), text)


def _plain_default(default: str) -> str:
    """A default as a reader writes it in YAML: ``PosixPath('a/b')`` -> ``'a/b'``; a section's ``{...}`` -> a
    pointer to its keys."""
    if default == "{...}":
        return "its keys below"
    return re.sub(r"^(?:Posix|Windows)?Path\((.*)\)$", r"\1", default)


def _plain_type(type_name: str) -> str:
    """``Literal['a', 'b']`` -> ``'a' | 'b'``; other type names unchanged."""
    return re.sub(r"Literal\[([^\[\]]*)\]", lambda m: " | ".join(p.strip() for p in m.group(1).split(",")), type_name)


def render_text(rows: list[FieldDoc], width: int = 88, sections: Sequence[tuple[str, Sequence[str]]] = ()) -> str:
    """The config reference as plain text (what ``rrbench config --doc`` prints): the path rule, per key a heading
    line, its type and default, and its meaning without reST markup, wrapped to ``width`` columns; then each of
    ``sections`` (a title and its items, e.g. the fusion rules)."""
    body = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="    ",
                                break_long_words=False, break_on_hyphens=False)
    meta = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="        ",
                                break_long_words=False, break_on_hyphens=False)
    out = textwrap.wrap(f"Experiment config keys: dotted path, type, default, meaning. Set them in the YAML file "
                        f"(nested sections) or on the command line as key.sub=value. Paths: {RELATIVE_PATH_RULE}.",
                        width=width, break_long_words=False, break_on_hyphens=False) + [""]
    for row in rows:
        default = "required" if row.default == "(required)" else f"default: {_plain_default(row.default)}"
        out.append(row.key)
        out += meta.wrap(f"type: {_plain_type(row.type)}; {default}")
        out += body.wrap(plain_text(row.text)) if row.text else ["    (undocumented)"]
        out.append("")
    for title, items in sections:
        out.append(title)
        for item in items:
            out += meta.wrap(item)
        out.append("")
    return "\n".join(out).rstrip() + "\n"
