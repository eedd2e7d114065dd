"""seeded_torch_rng: the block sees the seeded global generator; the caller's state is back afterwards."""

from __future__ import annotations

import torch

from rrbench_base.global_rng import seeded_torch_rng


def test_block_draws_the_seeded_stream_and_the_caller_state_is_restored():
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    with seeded_torch_rng(7):
        inside = torch.rand(5)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(7)
    assert torch.equal(inside, torch.rand(5))  # the same stream torch.manual_seed(7) starts


def test_same_seed_same_draws_and_state_restored_after_an_error():
    with seeded_torch_rng(3):
        first = torch.randn(4)
    before = torch.get_rng_state()
    try:
        with seeded_torch_rng(3):
            again = torch.randn(4)
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert torch.equal(first, again)
    assert torch.equal(torch.get_rng_state(), before)


def test_cuda_generators_are_left_alone_unless_asked():
    if torch.cuda.is_available():
        before = torch.cuda.get_rng_state_all()
        with seeded_torch_rng(5):
            pass
        with seeded_torch_rng(5, cuda=True):
            inside = torch.cuda.get_rng_state()
        assert all(torch.equal(a, b) for a, b in zip(before, torch.cuda.get_rng_state_all()))
        torch.cuda.manual_seed(5)
        assert torch.equal(inside, torch.cuda.get_rng_state())
        torch.cuda.set_rng_state_all(before)
    else:
        with seeded_torch_rng(5, cuda=True):  # no CUDA: only the CPU generator, no error
            assert torch.equal(torch.get_rng_state(), torch.Generator().manual_seed(5).get_state())
