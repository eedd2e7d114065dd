"""Typed YAML configs: unknown keys, wrong types, missing fields and overrides name the key and file."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

import pytest

from eval.typed_config import ConfigError, apply_overrides, from_dict, load_config, to_dict
from rrbench_base.config_errors import ConfigFieldError


@dataclass
class Inner:
    """Attributes:
        depth: how deep.
        rule: a choice.
    """

    depth: int = 10
    rule: Literal["itm", "itm+itc"] = "itm"


@dataclass
class Outer:
    """Attributes:
        name: required name.
        inner: nested section.
        depths: list of ints.
        alpha: a float.
        path: an optional path.
    """

    name: str
    inner: Inner = field(default_factory=Inner)
    depths: list[int] = field(default_factory=lambda: [1, 5])
    alpha: float = 0.5
    path: Optional[Path] = None

    def __post_init__(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_nested_and_defaults(tmp_path):
    cfg = load_config(Outer, write(tmp_path, "name: demo\ninner:\n  depth: 20\nalpha: 1\npath: a/b\n"))
    assert cfg == Outer(name="demo", inner=Inner(depth=20), alpha=1.0, path=Path("a/b"))
    assert isinstance(cfg.alpha, float)
    assert to_dict(cfg)["path"] == "a/b"


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "name: demo\ninner:\n  dept: 3\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml.*unknown key 'inner\.dept'"):
        load_config(Outer, path)


def test_wrong_type_names_key(tmp_path):
    path = write(tmp_path, "name: demo\ninner:\n  depth: ten\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml.*'inner\.depth'.*integer"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match=r"'depths\[1\]'"):
        from_dict(Outer, {"name": "x", "depths": [1, "b"]})
    with pytest.raises(ConfigError, match=r"'inner\.depth'"):
        from_dict(Outer, {"name": "x", "inner": {"depth": True}})  # bool is not an int


def test_missing_required_and_bad_literal(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key 'name'"):
        load_config(Outer, write(tmp_path, "alpha: 0.3\n"))
    with pytest.raises(ConfigError, match=r"'inner\.rule'.*not one of"):
        from_dict(Outer, {"name": "x", "inner": {"rule": "itc"}})


def test_post_init_validation_becomes_config_error():
    with pytest.raises(ConfigError, match="alpha must be in"):
        from_dict(Outer, {"name": "x", "alpha": 2})


def test_overrides_parse_yaml_values_and_are_validated(tmp_path):
    path = write(tmp_path, "name: demo\n")
    cfg = load_config(Outer, path, ["inner.depth=50", "depths=[0, 1, 100]", "inner.rule=itm+itc"])
    assert cfg.inner == Inner(depth=50, rule="itm+itc") and cfg.depths == [0, 1, 100]
    with pytest.raises(ConfigError, match=r"overrides inner\.depht=5.*unknown key 'inner\.depht'"):
        load_config(Outer, path, ["inner.depht=5"])
    with pytest.raises(ConfigError, match="expected key.sub=value"):
        apply_overrides({}, ["inner.depth"])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(Outer, bad)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Outer, tmp_path / "list.yaml")


@dataclass
class Checked:
    """Attributes:
        size: must be >= 1 (a keyed error naming the field).
    """

    size: int = 1

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigFieldError("size", f"size must be >= 1, got {self.size}")


@dataclass
class WithOptional:
    """Attributes:
        section: an optional checked section.
        choice: a union of a literal and a bool.
    """

    section: Optional[Checked] = None
    choice: Union[Literal["auto"], bool] = "auto"


def test_optional_section_keeps_its_own_error_with_the_full_key(tmp_path):
    path = write(tmp_path, "section: {size: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_config(WithOptional, path)
    message = str(info.value)
    assert "exp.yaml: section.size must be >= 1, got 0" in message and "Optional" not in message
    with pytest.raises(ConfigError, match=r"unknown key 'section\.sise'"):
        from_dict(WithOptional, {"section": {"sise": 3}})
    with pytest.raises(ConfigError, match=r"key 'section': expected a mapping"):
        from_dict(WithOptional, {"section": 3})
    with pytest.raises(ConfigError, match=r"key 'choice': expected 'auto' or true/false, got 'yes please'"):
        from_dict(WithOptional, {"choice": "yes please"})
    assert from_dict(WithOptional, {"section": None, "choice": False}) == WithOptional(None, False)


def test_non_finite_numbers_refused():
    for value in (float("nan"), float("inf"), 10**400):
        with pytest.raises(ConfigError, match=r"'alpha'.*finite"):
            from_dict(Outer, {"name": "x", "alpha": value})


def test_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(Outer, tmp_path)
