"""The processes of one evaluation job and the few collectives both stages use to share work between them.

A job runs as one process (:data:`SINGLE_PROCESS`: every collective returns its input, nothing touches
``torch.distributed``) or as N processes started by ``accelerate launch`` / ``torchrun`` / ``rrbench run
--processes N``, which set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
:func:`join_process_group` reads them: with a world of more than one process it lets accelerate's
``PartialState`` initialise ``torch.distributed`` (nccl and this process's local GPU as current device when CUDA
is available, gloo on CPU). Objects travel with ``torch.distributed``'s pickling collectives
(``all_gather_object``, ``gather_object``, ``broadcast_object_list``); rank 0 is the main process.

Splitting work: :func:`contiguous_blocks` (equal-sized runs of units, in order) and :func:`balanced_groups`
(whole groups of different weights, e.g. an image and its pairs, spread so every process gets about the same
weight). Both are deterministic, so every process computes the same assignment without talking.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the job: ``rank`` of ``size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def all_gather(self, value: Any) -> list[Any]:
        """Every process's ``value`` (picklable), in rank order, on every process."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, value)
        return gathered

    def gather(self, value: Any) -> list[Any] | None:
        """Every process's ``value`` (picklable), in rank order, on the main process; None on the others."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] | None = [None] * self.size if self.is_main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    def broadcast(self, value: Any) -> Any:
        """The main process's ``value`` on every process (what the others pass is ignored)."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


SINGLE_PROCESS = ProcessGroup()


def world_size_from_env(environ: dict[str, str] | os._Environ = os.environ) -> int:
    """``WORLD_SIZE`` as set by the launchers (1 when unset)."""
    return int(environ.get("WORLD_SIZE", "1") or 1)


def join_process_group() -> ProcessGroup:
    """:data:`SINGLE_PROCESS` unless the environment names a world of several processes; then initialise
    ``torch.distributed`` through accelerate's ``PartialState`` (once per process) and return this process's
    place in it."""
    if world_size_from_env() <= 1:
        return SINGLE_PROCESS
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    group = ProcessGroup(state.process_index, state.num_processes, state.local_process_index)
    log.info("process %d of %d (local %d, backend %s, device %s)", group.rank, group.size, group.local_rank,
             state.backend, state.device)
    return group


def contiguous_blocks(count: int, parts: int) -> list[range]:
    """``range(count)`` cut into ``parts`` consecutive blocks whose sizes differ by at most one."""
    bounds = [count * p // parts for p in range(parts + 1)]
    return [range(bounds[p], bounds[p + 1]) for p in range(parts)]


def balanced_groups(weights: Sequence[int] | np.ndarray, parts: int,
                    initial: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Owner (``0..parts-1``) of each group, by longest-processing-time-first: groups in order of decreasing
    weight (ties by index) each go to the part with the least weight so far (ties by lower part); ``initial``:
    the weight each part already carries (default none)."""
    weights = np.asarray(weights, dtype=np.int64)
    owner = np.zeros(len(weights), dtype=np.int64)
    load = np.zeros(parts, dtype=np.int64) if initial is None else np.array(initial, dtype=np.int64)
    for group in np.argsort(-weights, kind="stable").tolist():
        part = int(np.argmin(load))
        owner[group] = part
        load[part] += weights[group]
    return owner
