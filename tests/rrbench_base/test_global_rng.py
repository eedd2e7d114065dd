"""PrivateGlobalRng: torch.manual_seed's draws, without touching the caller's global state."""

from __future__ import annotations

import pytest
import torch

from rrbench_base.global_rng import PrivateGlobalRng, cuda_devices_of


def test_draws_equal_manual_seed_and_the_callers_state_is_kept():
    torch.manual_seed(3)
    expected = torch.rand(6)
    torch.manual_seed(100)
    before = torch.get_rng_state()
    rng = PrivateGlobalRng(3)
    with rng.use():
        first = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), before)
    torch.rand(50)  # the caller's draws between two blocks do not shift the private stream
    with rng.use():
        second = torch.rand(3)
    assert torch.equal(torch.cat([first, second]), expected)


def test_states_round_trip_and_use_is_not_reentrant():
    rng = PrivateGlobalRng(8)
    with rng.use():
        torch.rand(4)
        live = rng.states()
    saved = rng.states()
    assert torch.equal(live["torch"], saved["torch"])
    with rng.use():
        expected = torch.rand(5)
    other = PrivateGlobalRng(0)
    other.set_states(saved)
    with other.use():
        assert torch.equal(torch.rand(5), expected)
        with pytest.raises(RuntimeError, match="re-entrant"):
            with other.use():
                pass
    with pytest.raises(KeyError, match="cuda0"):
        PrivateGlobalRng(0, cuda_devices=[0]).set_states({"torch": saved["torch"]})
    assert cuda_devices_of("cpu") == [] and cuda_devices_of(torch.device("cuda", 1)) == [1]
