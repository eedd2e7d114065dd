"""A damaged cache file is renamed beside itself, never deleted or overwritten."""

from __future__ import annotations

import re

from rrbench_base.cache_files import move_aside


def test_move_aside_renames_with_a_utc_stamp_and_keeps_the_bytes(tmp_path):
    path = tmp_path / "shard_0.npz"
    path.write_bytes(b"damaged")
    target = move_aside(path)
    assert not path.exists() and target.parent == tmp_path
    assert re.fullmatch(r"shard_0\.npz\.corrupt-\d{8}T\d{6}Z", target.name)
    assert target.read_bytes() == b"damaged"


def test_move_aside_never_overwrites_an_earlier_copy(tmp_path, monkeypatch):
    import time

    monkeypatch.setattr(time, "gmtime", lambda *_: time.struct_time((2024, 5, 6, 7, 8, 9, 0, 127, 0)))
    path = tmp_path / "scores.sqlite"
    targets = []
    for content in (b"first", b"second", b"third"):
        path.write_bytes(content)
        targets.append(move_aside(str(path)))  # a str path is accepted too
    stem = "scores.sqlite.corrupt-20240506T070809Z"
    assert [t.name for t in targets] == [stem, f"{stem}-1", f"{stem}-2"]
    assert [t.read_bytes() for t in targets] == [b"first", b"second", b"third"]
