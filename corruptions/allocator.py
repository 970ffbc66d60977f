"""Keep freed memory in the process, so that large temporaries do not page-fault.

The torch backend's corruptions allocate and free tensors of a few MB to a few hundred MB
per call (a chunk of 224 px images in float32 is 5 MB, every operation makes one). glibc's
malloc serves blocks above its mmap threshold (128 KiB, raised on the fly up to 32 MiB)
with fresh `mmap`s and returns the top of its heaps to the system once more than its trim
threshold is free; every new block is then faulted in page by page (the kernel zeroes each
4 KiB page) and two threads that do so wait for each other on the process's memory map.
Measured with `benchmarks/corruptions.py` on 2 CPU cores: the image aggregate rose from
7.5x to 9.8x the reference with freed memory kept (impulse noise 2.1 -> 0.8 ms per image).

`keep_freed_memory()` raises both thresholds (`mallopt(M_MMAP_THRESHOLD)` and
`mallopt(M_TRIM_THRESHOLD)`) to `THRESHOLD`, as the environment variables
`MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_` would at start-up: up to that much
freed memory stays with the process for its next allocation. It changes no result, only
where memory comes from. Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

THRESHOLD = 256 << 20  # bytes: blocks below this come from the heap, and this much is kept
_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to `THRESHOLD` (once per process); True when
    applied, False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: AttributeError elsewhere
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, THRESHOLD))
