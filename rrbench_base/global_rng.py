"""A private copy of torch's global random state, for code that can only draw from the global RNG.

Dropout and ``nn.init`` in module constructors take no ``torch.Generator``. Library code that must make such
draws reproducible (a trainer seeding its dropout, a recipe building a model from a seed) holds a
:class:`PrivateGlobalRng`: its body runs inside ``use()``, which swaps the private states in (CPU, and the
CUDA devices named) and swaps the caller's back on exit. The caller's global state is the same after the
call as before, and draws the caller makes between two ``use()`` blocks never shift the private stream: a
trainer that saves ``states()`` in its checkpoint and restores them with ``set_states`` on resume replays
exactly the draws of an uninterrupted run.

Seeding matches ``torch.manual_seed(seed)`` on the devices used, so code moved from ``torch.manual_seed``
to a ``PrivateGlobalRng`` draws exactly the same numbers. :func:`seeded_torch_rng` is the one-shot form (one block
from a fresh seed). Code that accepts a generator gets its own ``torch.Generator().manual_seed(seed)`` or
``numpy.random.default_rng(seed)`` instead.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import torch

CPU_KEY = "torch"


@contextmanager
def seeded_torch_rng(seed: int, cuda: bool = False) -> Iterator[None]:
    """A one-shot :class:`PrivateGlobalRng`: the block draws from torch's global CPU generator seeded to ``seed``
    (as ``torch.manual_seed`` seeds it; ``cuda``: also every visible CUDA device's), and the caller's states are
    restored on exit. For one-off draws such as ``nn.init`` while building a model."""
    devices = list(range(torch.cuda.device_count())) if cuda and torch.cuda.is_available() else []
    with PrivateGlobalRng(seed, devices).use():
        yield


def cuda_devices_of(device: torch.device | str) -> list[int]:
    """The CUDA device indices a model on ``device`` draws from (``[]`` off CUDA)."""
    device = torch.device(device)
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _capture(cuda_devices: Sequence[int]) -> dict[str, torch.Tensor]:
    states = {CPU_KEY: torch.get_rng_state()}
    for index in cuda_devices:
        states[f"cuda{index}"] = torch.cuda.get_rng_state(index)
    return states


def _restore(states: dict[str, torch.Tensor], cuda_devices: Sequence[int]) -> None:
    torch.set_rng_state(states[CPU_KEY])
    for index in cuda_devices:
        torch.cuda.set_rng_state(states[f"cuda{index}"], index)


class PrivateGlobalRng:
    """torch's global CPU (and ``cuda_devices``') random state, owned by one user; see the module doc.

    ``use()`` is not re-entrant: one block at a time per object.
    """

    def __init__(self, seed: int, cuda_devices: Sequence[int] = ()) -> None:
        self.seed = int(seed)
        self.cuda_devices = list(cuda_devices)
        self._states: Optional[dict[str, torch.Tensor]] = None  # None: freshly seeded on first use
        self._active = False

    @contextmanager
    def use(self) -> Iterator[None]:
        """Run the body with the private states as torch's global ones; the caller's are restored after."""
        if self._active:
            raise RuntimeError("PrivateGlobalRng.use() is already active (it is not re-entrant)")
        caller = _capture(self.cuda_devices)
        if self._states is None:
            torch.random.default_generator.manual_seed(self.seed)
            for index in self.cuda_devices:
                torch.cuda.default_generators[index].manual_seed(self.seed)
        else:
            _restore(self._states, self.cuda_devices)
        self._active = True
        try:
            yield
        finally:
            self._active = False
            self._states = _capture(self.cuda_devices)
            _restore(caller, self.cuda_devices)

    def states(self) -> dict[str, torch.Tensor]:
        """The private states (``"torch"``, ``"cuda<i>"``), live when called inside ``use()``."""
        if self._active:
            return _capture(self.cuda_devices)
        if self._states is None:
            with self.use():
                pass
        return {name: value.clone() for name, value in self._states.items()}

    def set_states(self, states: dict[str, torch.Tensor]) -> None:
        """Continue from ``states`` (as :meth:`states` returned them), e.g. after a resume."""
        missing = [name for name in [CPU_KEY, *(f"cuda{i}" for i in self.cuda_devices)] if name not in states]
        if missing:
            raise KeyError(f"random states lack {missing} (saved on another device?)")
        chosen = {CPU_KEY: states[CPU_KEY], **{f"cuda{i}": states[f"cuda{i}"] for i in self.cuda_devices}}
        if self._active:
            _restore(chosen, self.cuda_devices)
        else:
            self._states = {name: value.clone() for name, value in chosen.items()}
