"""The one candidate-list type: immutable, checked shapes, derived lists by selection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import stage1_dual
import stage2_rerank
from rrbench_base.candidates import Candidates


def make() -> Candidates:
    return Candidates("t2i", np.array([[1, 0], [0, -1]]), np.array([[0.9, 0.1], [0.8, -np.inf]]), np.array([3, 5]))


def test_dtypes_defaults_and_one_type_everywhere():
    c = make()
    assert c.ids.dtype == np.int64 and c.scores.dtype == np.float32 and c.query_positions.dtype == np.int64
    assert (c.depth, c.depth_requested, c.clamped) == (2, 2, False)
    assert stage1_dual.Candidates is Candidates and stage2_rerank.Candidates is Candidates


def test_immutable():
    c = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.ids = np.zeros((2, 2), np.int64)
    with pytest.raises(ValueError):
        c.ids[0, 0] = 7
    source = np.array([[1, 2]])
    copied = Candidates("i2t", source, np.zeros((1, 2)), np.array([0]))
    source[0, 0] = 9
    assert copied.ids[0, 0] == 1


def test_shapes_and_direction_are_checked():
    with pytest.raises(ValueError, match="must be"):
        Candidates("t2i", np.zeros((2, 3), np.int64), np.zeros((2, 2)), np.arange(2))
    with pytest.raises(ValueError, match="direction"):
        Candidates("both", np.zeros((1, 1), np.int64), np.zeros((1, 1)), np.arange(1))


def test_select_queries_returns_a_new_list():
    c = make()
    kept = c.select_queries(np.array([False, True]))
    assert kept.query_positions.tolist() == [5] and kept.ids.tolist() == [[0, -1]] and kept.missing == 1
    assert c.ids.shape == (2, 2)
