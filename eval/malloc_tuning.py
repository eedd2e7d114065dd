"""Process-level glibc malloc settings for CPU runs of convolutional backbones (called by entry points only).

glibc serves an allocation above its mmap threshold (dynamic, at most 32 MiB by default) with a fresh ``mmap``
and returns it with ``munmap`` on free, and trims the heap top above 128 KiB. A batch of 64 images through
EfficientNet-Lite at 260 px allocates and frees activations of 100+ MiB per layer, so every layer pays page
faults that zero fresh pages: on this project's 2-core machine the kernel time exceeded the compute
(``python scripts/bench_malloc.py``). :func:`tune_malloc` raises both thresholds so that freed blocks stay in
the heap and are reused; the process keeps its peak heap instead of returning it to the system.
Same effect as ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` in the environment, set at run time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 30
TRIM_THRESHOLD_BYTES = (1 << 31) - 1


def tune_malloc() -> bool:
    """Raise glibc's mmap threshold to 1 GiB and its trim threshold to 2 GiB in this process; True when applied,
    False (with a debug log) where the C library has no ``mallopt`` (not glibc) or refuses the values."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError) as exc:
        log.debug("malloc tuning skipped: no mallopt in %s (%s)", name, exc)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                     TRIM_THRESHOLD_BYTES))
    log.debug("glibc malloc thresholds raised: %s", applied)
    return applied
