"""Suite-wide test settings."""

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread():
    """The tests' models are tiny: several threads gain nothing, and on a shared 2-core machine OpenMP threads
    spin-wait on each other (10x slower). The previous thread count is restored after the session."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
