"""path_note: an error about a relative config path shows the absolute path tried and the rule; absolute: nothing."""

from __future__ import annotations

from pathlib import Path

from rrbench_base.config_paths import RELATIVE_PATH_RULE, path_note


def test_relative_path_note_names_the_absolute_path_the_current_directory_and_the_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    note = path_note(Path("data") / "images")
    assert note == (f" (tried {tmp_path / 'data' / 'images'}: relative paths in a config resolve against the "
                    f"current directory {tmp_path}, not the config file's folder)")
    assert path_note("../x").startswith(f" (tried {tmp_path.parent / 'x'}:")


def test_absolute_path_needs_no_note_and_the_rule_reads_alone(tmp_path):
    assert path_note(tmp_path / "data") == ""
    assert RELATIVE_PATH_RULE == ("relative paths in a config resolve against the current directory, not the "
                                  "config file's folder")
