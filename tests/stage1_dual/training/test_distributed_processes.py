"""The all-gather with local gradient in two real processes (gloo on CPU): rows in process order, and each process's
loss sends gradient only into the rows that process computed. Also records why it is not
``torch.distributed.nn.functional.all_gather``: that one sums every process's gradient into the local rows (P times
ours when all processes compute the same loss) and is deprecated in current torch (issue 19 item 9)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from stage1_dual.training.distributed import gather_no_grad, gather_with_local_grad

WORLD = 2


@dataclass
class ProcessGroupAccelerator:
    """The part of ``accelerate.Accelerator`` the gather functions use, over the default process group."""

    num_processes: int
    process_index: int

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(self.num_processes)]
        dist.all_gather(parts, tensor)
        return torch.cat(parts)


def _rows(rank: int) -> torch.Tensor:
    return torch.arange(6, dtype=torch.float32).reshape(2, 3) + 10 * rank


def _worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        accelerator = ProcessGroupAccelerator(WORLD, rank)
        weights = torch.arange(4 * 3, dtype=torch.float32).reshape(4, 3)  # the same global loss on every process
        local = _rows(rank).requires_grad_(True)
        gathered = gather_with_local_grad(local, accelerator)
        (gathered * weights).sum().backward()
        no_grad = gather_no_grad(local, accelerator)
        library = _rows(rank).requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.14: "deprecated, use torch.distributed._functional_collectives"
            from torch.distributed.nn.functional import all_gather

            parts = all_gather(library)
        (torch.cat(parts) * weights).sum().backward()
        torch.save({"gathered": gathered.detach(), "grad": local.grad, "no_grad": no_grad,
                    "no_grad_requires_grad": no_grad.requires_grad, "library_grad": library.grad},
                   Path(out) / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    root = tmp_path_factory.mktemp("gather")
    mp.spawn(_worker, args=(str(root / "store"), str(root)), nprocs=WORLD, join=True)
    return [torch.load(root / f"{rank}.pt") for rank in range(WORLD)]


def test_gathered_rows_in_process_order_with_gradient_only_from_this_process(results):
    weights = torch.arange(4 * 3, dtype=torch.float32).reshape(4, 3)
    everything = torch.cat([_rows(rank) for rank in range(WORLD)])
    for rank, got in enumerate(results):
        torch.testing.assert_close(got["gathered"], everything)
        torch.testing.assert_close(got["no_grad"], everything)
        assert not got["no_grad_requires_grad"]
        torch.testing.assert_close(got["grad"], weights[2 * rank: 2 * rank + 2])  # this process's loss only


def test_torch_differentiable_all_gather_sums_the_gradient_of_every_process(results):
    """Why the hand-written gather stays: with the same loss on every process, torch's differentiable all_gather
    gives the local rows WORLD times our gradient (its backward is a reduce-scatter sum), which would change the
    tower gradients of multi-process training (and torch 2.14 warns that the function is deprecated)."""
    for got in results:
        torch.testing.assert_close(got["library_grad"], WORLD * got["grad"])
