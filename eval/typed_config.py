"""Typed YAML configs: a YAML mapping -> nested dataclasses, with validation and dotted overrides.

Contract:
- ``load_config(cls, path, overrides)`` reads one YAML file into dataclass ``cls``.
- An unknown key, a value of the wrong type, a missing required field or an invalid ``Literal``
  choice raises :class:`ConfigError` whose message names the dotted key and the file.
- A dataclass's ``__post_init__`` checks values. A ``ValueError`` it raises that carries a ``key``
  attribute (the dotted field path relative to that dataclass: ``rrbench_base.config_errors.ConfigFieldError``,
  which the stages' configs raise too) is reported under the full dotted key:
  ``exp.yaml: stage2.pair_batch_size must be >= 1, got 0`` when the message starts with the key,
  ``exp.yaml: key 'stage2.backend': <message>`` otherwise; any other ``ValueError``/``TypeError`` is
  reported with the section's key. Inside an ``Optional``/``Union`` field the section's own error is
  kept, never replaced by "expected ...".
- Numbers must be finite (``.nan`` and ``.inf`` are refused).
- Overrides are ``"key.sub=value"`` strings; the value is parsed as YAML (``k=10``, ``x=[1,5]``,
  ``flag=true``, ``name=foo``) and applied to the raw mapping before validation, so an override is
  validated exactly like the file.
- Fields are documented once, in the dataclass docstrings (``Attributes:`` sections).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence, TypeVar, Union

import yaml

from rrbench_base.config_errors import ConfigFieldError

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the source."""


class _TypeMismatch(ConfigError):
    """The value at ``key`` has the wrong type (a Union tries its next member on this error only)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def join_key(prefix: str, key: str) -> str:
    """``"stage2" + "device"`` -> ``"stage2.device"`` (either may be empty)."""
    return ".".join(part for part in (prefix, key) if part)


def field_config_error(source: str, prefix: str, exc: Exception) -> ConfigError:
    """ConfigError for a failed check, naming the full dotted key (see the module docstring).

    ``exc`` without a ``key`` attribute is reported as ``<source>: <prefix>: <exc>``.
    """
    key, message = getattr(exc, "key", None), str(exc)
    if not isinstance(key, str):
        return ConfigError(f"{source}: {prefix or 'config'}: {message}")
    full = join_key(prefix, key)
    if message.startswith((key + " ", key + ":")):
        return ConfigError(f"{source}: {full}{message[len(key):]}")
    return ConfigError(f"{source}: key '{full}': {message}")


def check_field(source: str, prefix: str, check: Callable[[], Any]) -> None:
    """Run ``check()``; a ValueError it raises becomes :func:`field_config_error` (the key under ``prefix``)."""
    try:
        check()
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise field_config_error(source, prefix, exc) from exc


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names + (["null"] if type(None) in args else []))
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if tp is bool:
        return "true/false"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check/convert ``value`` against type annotation ``tp``; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        members = [arg for arg in args if arg is not type(None)]
        if len(members) == 1:  # Optional[X]: X's own error is the precise one
            return _convert(value, members[0], key, source)
        for arg in members:
            try:
                return _convert(value, arg, key, source)
            except _TypeMismatch as exc:
                if exc.key != key:
                    raise  # the value matched this member's shape; a nested item is wrong
        raise _TypeMismatch(
            f"{source}: key '{key}': expected {_type_name(tp)}, got {value!r} ({type(value).__name__})", key
        )
    if origin is Literal:
        if value not in args:
            raise _TypeMismatch(
                f"{source}: key '{key}': {value!r} is not one of {', '.join(repr(a) for a in args)}", key
            )
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _TypeMismatch(f"{source}: key '{key}': expected a mapping, got {value!r}", key)
        return _build(tp, value, key, source)
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _TypeMismatch(f"{source}: key '{key}': expected a list, got {value!r}", key)
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise _TypeMismatch(f"{source}: key '{key}': expected a mapping, got {value!r}", key)
        k_tp, v_tp = args if args else (Any, Any)
        return {
            _convert(k, k_tp, f"{key}.{k}", source): _convert(v, v_tp, f"{key}.{k}", source)
            for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _TypeMismatch(f"{source}: key '{key}': expected a number, got {value!r}", key)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{source}: key '{key}': expected a finite number, got {value!r}")
        return number
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _TypeMismatch(f"{source}: key '{key}': expected an integer, got {value!r}", key)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _TypeMismatch(f"{source}: key '{key}': expected true or false, got {value!r}", key)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _TypeMismatch(f"{source}: key '{key}': expected a string, got {value!r}", key)
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise _TypeMismatch(f"{source}: key '{key}': expected a path, got {value!r}", key)
        return Path(value)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _TypeMismatch(f"{source}: key '{key}': unsupported type {_type_name(tp)} for {value!r}", key)


def _build(cls: type[T], data: Mapping[str, Any], prefix: str, source: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(
            f"{source}: unknown key '{where}' (known keys here: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, field in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key '{key}'")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise field_config_error(source, prefix, exc) from exc


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<dict>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from a plain mapping, validating every key (see module docstring).

    ``prefix``: the dotted key of ``data`` inside its file (``"dataset"``), so messages name full keys.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    try:
        return _build(cls, data, prefix, source)
    except _TypeMismatch as exc:  # callers see one error type
        raise ConfigError(str(exc)) from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a deep copy of ``data`` with ``key.sub=value`` overrides applied (values parsed as YAML)."""
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected key.sub=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override '{item}': empty key component")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override '{item}': value is not valid YAML: {exc}") from exc
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an unreadable or non-mapping file is a ConfigError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, expected a YAML config file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 ({exc})") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def load_config(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Load one YAML experiment file into ``cls`` with ``key.sub=value`` overrides applied."""
    data = apply_overrides(read_yaml(path), overrides)
    source = str(path) + (f" (with overrides {' '.join(overrides)})" if overrides else "")
    return from_dict(cls, data, source)


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain JSON/YAML-ready structure (Paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
