"""Seeded randomness for code that can only draw from torch's global generator, without changing the caller's.

``nn.init`` (run by every module's constructor) and some library internals take no generator argument. Library
code wraps such calls in :func:`seeded_torch_rng`: inside, torch's global CPU generator (and, when asked, every
visible CUDA device's) starts from ``seed``; afterwards the caller's generator states are back exactly as they
were. Code that accepts a generator gets its own ``torch.Generator().manual_seed(seed)`` or
``numpy.random.default_rng(seed)`` instead. torch is imported when the context is entered, so importing this
module stays light.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def seeded_torch_rng(seed: int, cuda: bool = False) -> Iterator[None]:
    """Run the block with torch's global CPU generator seeded to ``seed`` (as ``torch.manual_seed`` seeds it) and
    restore the caller's state on exit. ``cuda``: also fork and seed the generator of every visible CUDA device
    (none when CUDA is absent); otherwise the CUDA generators are neither seeded nor touched."""
    import torch

    devices = list(range(torch.cuda.device_count())) if cuda and torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        if devices:
            torch.cuda.manual_seed_all(seed)
        yield
