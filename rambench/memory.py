"""The memory budget of a process's caches (`RAMBENCH_CACHE_MEMORY_MB`).

One budget is shared by the encoder outputs kept for reuse (`rambench.feature_cache`), the
corrupted test sets waiting to be written to the on-disk cache (`rambench.cache`) and the
next condition's test inputs built ahead (`rambench.execute`).

`RAMBENCH_CACHE_MEMORY_MB` sets it (default 1024 MiB). Past it, encoder outputs are
computed and not kept, a corrupted test set is written before the run goes on, and the next
condition's inputs are built in turn; so a smaller budget costs time, never a different
result.
"""

from __future__ import annotations

import os
import threading

from rambench.errors import UsageError

ENV_VAR = "RAMBENCH_CACHE_MEMORY_MB"
DEFAULT_MB = 1024


def default_budget_mb() -> float:
    """`RAMBENCH_CACHE_MEMORY_MB`, else `DEFAULT_MB`."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return DEFAULT_MB
    try:
        mb = float(value)
    except ValueError:
        mb = -1.0
    if mb < 0:
        raise UsageError(f"{ENV_VAR} must be a number of MiB (0 or more); got {value!r}")
    return mb


class MemoryBudget:
    """Bytes taken and given back by the caches of one process (thread-safe)."""

    def __init__(self, mb: float | None = None):
        self.total = int((default_budget_mb() if mb is None else mb) * 2**20)
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Reserve `size` bytes; False (nothing reserved) where they do not fit."""
        with self._lock:
            if self.used + size > self.total:
                return False
            self.used += size
            return True

    def give(self, size: int) -> None:
        """Return `size` bytes taken before."""
        with self._lock:
            self.used -= size
