"""How a job's work is split between processes, and the one-process group (no torch.distributed at all)."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench_base.process_group import (SINGLE_PROCESS, balanced_groups, contiguous_blocks, join_process_group,
                                        world_size_from_env)


@pytest.mark.parametrize("count,parts", [(0, 2), (5, 2), (12, 5), (3, 4)])
def test_contiguous_blocks_cover_every_unit_once_in_order_with_sizes_within_one(count, parts):
    blocks = contiguous_blocks(count, parts)
    assert len(blocks) == parts
    assert [u for b in blocks for u in b] == list(range(count))
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_balanced_groups_give_the_heaviest_first_to_the_lightest_part():
    owner = balanced_groups([5, 1, 4, 3, 3], 2)
    assert owner.tolist() == [0, 1, 1, 1, 0]  # 5 -> 0, 4 -> 1, 3 -> 1 (4 < 5), 3 -> 0 (5 < 7), 1 -> 1 (7 < 8)
    loads = np.bincount(owner, weights=[5, 1, 4, 3, 3], minlength=2)
    assert loads.tolist() == [8, 8]


def test_balanced_groups_with_more_parts_than_groups_leave_parts_empty():
    assert balanced_groups([2, 7], 3).tolist() == [1, 0]


def test_balanced_groups_count_the_weight_parts_already_carry():
    assert balanced_groups([3, 2], 2, initial=[0, 10]).tolist() == [0, 0]


def test_one_process_collectives_return_their_input_without_torch_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_size_from_env() == 1 and join_process_group() is SINGLE_PROCESS
    assert SINGLE_PROCESS.is_main and not SINGLE_PROCESS.distributed
    value = {"a": 1}
    assert SINGLE_PROCESS.all_gather(value) == [value] and SINGLE_PROCESS.gather(value) == [value]
    assert SINGLE_PROCESS.broadcast(value) is value
    SINGLE_PROCESS.barrier()
    assert world_size_from_env({"WORLD_SIZE": "4"}) == 4
