"""All-gather of embeddings across processes under ``accelerate``, keeping the gradient of the local part.

``accelerator.gather`` returns detached copies; the contrastive loss needs every process's rows as
columns but gradients only flow into the rows this process computed (as open_clip's
``gather_with_grad=False``): the local slice of the gathered tensor is replaced by the local tensor
itself. Each process then computes the same global loss; data-parallel gradient averaging makes the
tower/projection gradients the global-loss gradients divided by the number of processes (the
logit-scale gradient is exact). With one process both functions return their input unchanged.
Every process must contribute the same number of rows (the trainer drops incomplete batches).

Why not ``torch.distributed.nn.functional.all_gather`` (open_clip's ``gather_with_grad=True``): its backward is a
reduce-scatter that sums every process's gradient into the local rows, so with the same loss on every process the
local rows get P times the gradient above (the tower gradients after averaging become the exact global-loss
gradient, not it divided by P): a different training behaviour for multi-process runs. It also needs a
``torch.distributed`` process group (``accelerator.gather`` works on every accelerate backend) and torch 2.14 marks
it deprecated in favour of the private ``torch.distributed._functional_collectives``.
``tests/stage1_dual/training/test_distributed_processes.py`` checks both gathers in two real processes.
"""

from __future__ import annotations

from typing import Any

import torch


def gather_with_local_grad(tensor: torch.Tensor, accelerator: Any) -> torch.Tensor:
    """``[B, ...]`` on each process -> ``[P * B, ...]`` in process order; gradient flows to the local rows."""
    if accelerator.num_processes == 1:
        return tensor
    gathered = accelerator.gather(tensor.detach().contiguous())
    chunks = list(gathered.chunk(accelerator.num_processes))
    chunks[accelerator.process_index] = tensor
    return torch.cat(chunks)


def gather_no_grad(tensor: torch.Tensor, accelerator: Any) -> torch.Tensor:
    """``[B, ...]`` on each process -> ``[P * B, ...]`` in process order (no gradient)."""
    if accelerator.num_processes == 1:
        return tensor
    return accelerator.gather(tensor.detach().contiguous())
