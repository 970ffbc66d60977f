"""corruptions.allocator: freed memory stays with the process (measured in page faults)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corruptions import allocator

# Allocate and touch a 64 MiB block (above glibc's largest automatic mmap threshold,
# 32 MiB), free it, and print how much of it is still resident (MiB).
PROBE = """
import sys
import numpy as np
from corruptions import allocator

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "keep":
    assert allocator.keep_freed_memory()
before = rss()
a = np.ones(8 << 20)
del a
print(rss() - before)
"""


def resident_after_free(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True)
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_memory_stays_with_the_process():
    assert resident_after_free("default") < 8  # unmapped: the next one faults in anew
    assert resident_after_free("keep") > 56  # kept for the next allocation


def test_is_applied_once_and_reports_it():
    first = allocator.keep_freed_memory()
    assert allocator.keep_freed_memory() is first
    assert first == sys.platform.startswith("linux")
