"""All-gather with local gradient: gathered rows in process order, gradient only into this process's rows."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stage1_dual.training.distributed import gather_no_grad, gather_with_local_grad


@dataclass
class FakeAccelerator:
    """Process ``process_index`` of ``num_processes``; the other processes contribute ``others``."""

    num_processes: int
    process_index: int
    others: dict[int, torch.Tensor]

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        assert not tensor.requires_grad  # accelerate's gather is not differentiable
        rows = [tensor if rank == self.process_index else self.others[rank] for rank in range(self.num_processes)]
        return torch.cat(rows)


def test_local_rows_keep_their_gradient_in_process_order():
    local = torch.randn(2, 3, requires_grad=True)
    others = {0: torch.randn(2, 3), 2: torch.randn(2, 3)}
    accelerator = FakeAccelerator(3, 1, others)
    gathered = gather_with_local_grad(local, accelerator)
    torch.testing.assert_close(gathered, torch.cat([others[0], local.detach(), others[2]]))
    weights = torch.arange(18, dtype=torch.float32).reshape(6, 3)
    (gathered * weights).sum().backward()
    torch.testing.assert_close(local.grad, weights[2:4])
    torch.testing.assert_close(gather_no_grad(local, accelerator), gathered.detach())


def test_single_process_returns_the_input_itself():
    local = torch.randn(4, 2, requires_grad=True)
    accelerator = FakeAccelerator(1, 0, {})
    assert gather_with_local_grad(local, accelerator) is local
    assert gather_no_grad(local, accelerator) is local
