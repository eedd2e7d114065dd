"""Start the processes of one job on this machine (``rrbench run CONFIG --processes N``).

:func:`run_in_processes` spawns N fresh Python processes (``torch.multiprocessing``, start method ``spawn``) and
gives each the environment a launcher gives (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``), so ``rrbench_base.process_group.join_process_group`` joins
them exactly as under ``accelerate launch``: gloo on CPU, nccl with one local GPU per process when CUDA is
there. If a process fails, the others are stopped and the error is raised here. Several machines: use
``accelerate launch`` (see the README).
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

LOCAL_HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port that is free on this machine now (for the processes' rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL_HOST, 0))
        return int(sock.getsockname()[1])


def launcher_environment(rank: int, count: int, port: int) -> dict[str, str]:
    """The variables a launcher sets for process ``rank`` of ``count`` on one machine."""
    return {"RANK": str(rank), "WORLD_SIZE": str(count), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(count),
            "MASTER_ADDR": LOCAL_HOST, "MASTER_PORT": str(port)}


def _process_main(rank: int, count: int, port: int, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update(launcher_environment(rank, count, port))
    try:
        target(*args)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def run_in_processes(count: int, target: Callable[..., Any], *args: Any) -> None:
    """Run ``target(*args)`` in ``count`` processes of one job (module doc); ``target`` and ``args`` must be
    picklable (a module-level function). Returns when all have finished."""
    if count < 1:
        raise ValueError(f"the number of processes must be at least 1, got {count}")
    import torch.multiprocessing as mp

    mp.start_processes(_process_main, args=(count, free_port(), target, args), nprocs=count, join=True,
                       start_method="spawn")
