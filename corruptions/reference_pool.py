"""The reference code of a corruption, sample by sample, in worker processes.

The torch backend hands some corruptions to the reference code: JPEG through Pillow, the
small-scale affine warp through OpenCV, pitch shift and time stretch through
signalsmith-stretch, MP3 through LAME (their specs' fidelity class). The reference seeds numpy's and Python's global RNGs around each call
under a lock, so threads would take turns; processes do not. On a GPU run the device would
otherwise wait for one CPU core to corrupt every sample of those cells.

`reference_map` corrupts the first sample here and times it: when a sample takes at least
`POOL_MIN_SECONDS` (sending it to another process costs about a millisecond) and there are
enough samples, the others go to a pool of `workers - 1` processes (spawned once and kept;
`workers` defaults to `RAMBENCH_REFERENCE_WORKERS`, else the number of CPU cores; this
process keeps one core); otherwise they are corrupted here too. Each sample's output
depends only on (sample, severity, its seed, context), so the pool changes nothing but the
time.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from corruptions import registry

# fewer samples than this per worker: not worth sending them to other processes
MIN_SAMPLES_PER_WORKER = 4
# a sample cheaper than this is corrupted here: the transfer to a worker would cost more
POOL_MIN_SECONDS = 2e-3
WORKERS_ENV = "RAMBENCH_REFERENCE_WORKERS"
_POOLS: dict[int, ProcessPoolExecutor] = {}


def usable_cpus() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """`RAMBENCH_REFERENCE_WORKERS` if set (a local or SLURM worker sets its share of the
    cores), else the number of CPU cores available."""
    value = os.environ.get(WORKERS_ENV)
    return max(1, int(value)) if value else usable_cpus()


def _pool(workers: int) -> ProcessPoolExecutor:
    if workers not in _POOLS:
        _POOLS[workers] = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"))
    return _POOLS[workers]


@atexit.register
def shutdown() -> None:
    """Stops the worker processes (they are started again when needed)."""
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


def _one(job: tuple) -> np.ndarray:
    name, kind, sample, severity, seed, context = job
    return registry.get(name, kind)(sample, severity, seed, **context)


def reference_map(name: str, kind: str, samples: Sequence[np.ndarray], severity: int,
                  seeds: Sequence[int], workers: int | None = None,
                  min_seconds: float = POOL_MIN_SECONDS, **context) -> np.ndarray:
    """The reference corruption of each sample with its seed, stacked: in `workers - 1`
    worker processes when a sample takes at least `min_seconds` and there are
    `MIN_SAMPLES_PER_WORKER` samples per worker, else here."""
    workers = default_workers() if workers is None else workers
    jobs = [(name, kind, np.asarray(s), severity, int(seed), context)
            for s, seed in zip(samples, seeds, strict=True)]
    if not jobs:
        raise ValueError("no samples")
    start = time.perf_counter()
    first = _one(jobs[0])
    rest = jobs[1:]
    # this process keeps a core: it feeds the workers (and, on a GPU run, drives the device);
    # on 2 cores one worker process gains nothing over corrupting here
    workers = min(workers - 1, len(rest) // MIN_SAMPLES_PER_WORKER)
    if workers < 2 or time.perf_counter() - start < min_seconds:
        return np.stack([first, *(_one(job) for job in rest)])
    chunk = max(1, len(rest) // (4 * workers))
    return np.stack([first, *_pool(workers).map(_one, rest, chunksize=chunk)])
