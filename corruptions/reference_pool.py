"""The reference code of a corruption, sample by sample, in worker processes.

The torch backend hands some corruptions to the reference code: JPEG through Pillow, the
small-scale affine warp through OpenCV, pitch shift and time stretch through
signalsmith-stretch, MP3 through LAME (their specs' fidelity class). These libraries hold
the GIL, and the reference seeds numpy's and Python's global RNGs around each call under a
lock, so threads would take turns; processes do not. On a GPU run the device would
otherwise wait for one CPU core to corrupt every sample of those cells.

`reference_map` corrupts the first sample here and times it: when a sample takes at least
`POOL_MIN_SECONDS` (sending a 224 px image or a 1 s clip to another process and back costs
about a tenth of a millisecond) and there are enough samples, the others are shared
between this process and a pool of `workers - 1` processes (spawned once and kept;
`workers` defaults to `RAMBENCH_REFERENCE_WORKERS`, else the number of CPU cores), which
run meanwhile; otherwise they are all corrupted here. Each sample's output depends only on
(sample, severity, its seed, context), so the pool changes nothing but the time. The
function is a spec's per-sample `reference` (picklable: a module's function, or a
`functools.partial` of one), which a worker imports by name.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence

import numpy as np

# fewer samples than this per process: not worth sending them to other processes
MIN_SAMPLES_PER_WORKER = 4
# a sample cheaper than this is corrupted here: the transfer to a worker would cost more
POOL_MIN_SECONDS = 5e-4
WORKERS_ENV = "RAMBENCH_REFERENCE_WORKERS"


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


def _one(job: tuple) -> np.ndarray:
    function, sample, severity, seed, context = job
    return function(sample, severity, seed, **context)


def _serve(conn) -> None:
    """A worker process: corrupts each list of jobs it receives and sends the outputs back
    (or the traceback of the error); stops on None or when the parent is gone. Ctrl-C is
    the parent's to handle (it terminates its workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while (jobs := conn.recv()) is not None:
            try:
                conn.send(("ok", [_one(job) for job in jobs]))
            except Exception as error:  # noqa: BLE001 - reported to the parent
                conn.send(("error", "".join(traceback.format_exception(error))))
    except EOFError:
        pass


class _Worker:
    """A spawned process fed through its own pipe by the calling thread.

    Not `concurrent.futures.ProcessPoolExecutor`: its jobs and results pass through helper
    threads of this process, which wait for the GIL while this process corrupts its own
    share in libraries that hold it (signalsmith-stretch, LAME), so the workers started
    only when this process was done (measured: pitch shift of 16 clips on 2 cores, no
    faster than here alone). Sending from the calling thread starts them at once."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True,
                                       name="rambench-reference")
        self.process.start()
        child.close()

    def stop(self, wait: bool = True) -> None:
        """Asks the process to stop and waits for it (up to 5 s), or (`wait=False`: it may
        be busy with jobs whose results nobody will read) terminates it at once."""
        if wait:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.conn.close()


_WORKERS: list[_Worker] = []
_IN_USE = threading.Lock()  # one caller at a time feeds the workers; others work alone


@atexit.register
def shutdown(wait: bool = True) -> None:
    """Stops the worker processes (they are started again when needed)."""
    while _WORKERS:
        _WORKERS.pop().stop(wait)


def reference_map(function: Callable[..., np.ndarray], samples: Sequence[np.ndarray],
                  severity: int, seeds: Sequence[int], workers: int | None = None,
                  min_seconds: float = POOL_MIN_SECONDS, **context) -> np.ndarray:
    """`function(sample, severity, seed, **context)` (a spec's `reference`) of each sample
    with its seed, stacked: shared between this
    process and `workers - 1` worker processes when a sample takes at least `min_seconds`
    and there are `MIN_SAMPLES_PER_WORKER` samples per process, else all here."""
    workers = default_workers() if workers is None else workers
    jobs = [(function, np.asarray(s), severity, int(seed), context)
            for s, seed in zip(samples, seeds, strict=True)]
    if not jobs:
        raise ValueError("no samples")
    start = time.perf_counter()
    first = _one(jobs[0])
    rest = jobs[1:]
    workers = min(workers, len(rest) // MIN_SAMPLES_PER_WORKER)
    if (workers < 2 or time.perf_counter() - start < min_seconds
            or not _IN_USE.acquire(blocking=False)):
        return np.stack([first, *(_one(job) for job in rest)])
    try:
        return np.stack([first, *_shared(rest, workers)])
    finally:
        _IN_USE.release()


def _shared(jobs: list[tuple], processes: int) -> list[np.ndarray]:
    """The jobs' outputs, in order: the first `processes - 1` shares sent to worker
    processes, the last one corrupted here meanwhile."""
    for worker in [w for w in _WORKERS if not w.process.is_alive()]:  # died while idle
        _WORKERS.remove(worker)
        worker.stop(wait=False)
    while len(_WORKERS) < processes - 1:
        _WORKERS.append(_Worker())
    size = -(-len(jobs) // processes)
    shares = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    helpers = _WORKERS[:len(shares) - 1]
    try:
        for worker, share in zip(helpers, shares, strict=False):
            worker.conn.send(share)
        here = [_one(job) for job in shares[-1]]
        outputs = []
        for worker in helpers:
            status, payload = worker.conn.recv()
            if status != "ok":
                raise RuntimeError(f"a reference worker process failed:\n{payload}")
            outputs += payload
    except (EOFError, ConnectionError) as error:  # the pipe's other end is gone
        shutdown(wait=False)
        raise RuntimeError("a reference worker process died (out of memory, or killed?); "
                           "the next call starts new ones") from error
    except BaseException:
        shutdown(wait=False)  # results may be left in the pipes: start afresh next time
        raise
    return outputs + here
