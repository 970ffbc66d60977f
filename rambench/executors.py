"""Where a study's work runs: other processes (`--executor local --workers N`, one per GPU
with `--devices 0,1`) or a SLURM cluster through submitit (`--executor slurm`).

The unit of work is one training job with every cell still to do for it. A task carries
the study's file (`<out>/<study>/study.yaml`, `rambench.study`) and its job keys rather
than the plan itself, so it runs wherever Python and rambench are installed: it plans the
study from the file, trains (or loads) its job and stores each record as it is made.
Nothing returns through the executor but keys and failures; the study folder is the
meeting point, so a driver may exit and be run again to dispatch only what is still
missing. Jobs are guarded by file locks (`rambench.checkpoints`), records and checkpoints
are written atomically, and corrupted test sets are shared through the on-disk cache.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corruptions.reference_pool import WORKERS_ENV as REFERENCE_WORKERS_ENV
from corruptions.reference_pool import usable_cpus
from rambench.cache import CorruptionCache
from rambench.errors import UsageError
from rambench.execute import UnitResult, WorkUnit, run_unit
from rambench.plan import Plan
from rambench.progress import Progress
from rambench.schema import Record
from rambench.tracking import Tracker

EXECUTORS = ("inprocess", "local", "slurm")
DEVICE_ENV = "RAMBENCH_WORKER_DEVICE"  # a local worker's own device (its GPU)


def plan_from(study_file: str, force: bool, reuse_stale: bool, device: str | None = None):
    """The plan of the study saved at `study_file` (on `device`, default the study's)."""
    from rambench.config import resolve
    from rambench.plan import make_plan
    from rambench.store import Store
    from rambench.study import stored

    path = Path(study_file)
    study = stored(path.parent.parent, path.parent.name)
    if study is None:
        raise UsageError(f"no study file {study_file}")
    if device:
        study = study.replace(device=device)
    return make_plan(resolve(study), Store(study.out, study.name), force, reuse_stale)


@dataclass(frozen=True)
class Task:
    study_file: str  # <out>/<study>/study.yaml
    job_keys: tuple[str, ...]
    cache_dir: str | None  # None: no corrupted-data cache
    threads: int | None = None  # torch threads (None: the process's default)
    force: bool = False
    reuse_stale: bool = False


@dataclass
class TaskResult:
    job_keys: tuple[str, ...]
    record_keys: list[str]
    failures: list[str]


def run_task(task: Task) -> TaskResult:
    """Runs in a worker: plan the study, then train (or load) the task's jobs and evaluate
    their cells that are still to do (another worker or an earlier run may have done
    some)."""
    import torch

    if task.threads:
        torch.set_num_threads(task.threads)
        os.environ[REFERENCE_WORKERS_ENV] = str(task.threads)
    plan = plan_from(task.study_file, task.force, task.reuse_stale,
                     os.environ.get(DEVICE_ENV))
    wanted = set(task.job_keys)
    cells = tuple(c for c in plan.todo if c.job.key in wanted)
    if not cells:
        return TaskResult(task.job_keys, [], [])
    unit = WorkUnit(cells[0].job.seed, tuple(dict.fromkeys(c.job for c in cells)), cells)
    cache = CorruptionCache(task.cache_dir)
    result = run_unit(plan, unit, cache, None, task.force)
    return TaskResult(task.job_keys, [r.key for r in result.records], result.failures)


def _start_worker(devices, threads: int) -> None:
    import torch

    if devices is not None:
        os.environ[DEVICE_ENV] = devices.get()
    torch.set_num_threads(threads)
    os.environ[REFERENCE_WORKERS_ENV] = str(threads)  # its share of the cores, also there


class Remote:
    """What the executors of other processes share: one task per training job, each
    stores its records; here they are read back for the progress and the trackers
    (`rambench.execute.RemoteExecutor`)."""

    threads: int | None = None

    def map(self, fn: Callable[[Task], TaskResult], tasks: Iterable[Task]
            ) -> Iterator[TaskResult]:
        raise NotImplementedError

    def execute(self, plan: Plan, cache: CorruptionCache | None, progress: Progress | None,
                step: Callable[[Record], None], trackers: Sequence[Tracker]) -> UnitResult:
        from rambench.train import TrainSummary

        study = plan.spec.study
        if not all(isinstance(m, str) for m in study.methods):
            raise UsageError("a method given as a class object cannot run in other processes: "
                             "name it (registered name, or path/file.py:Class) instead")
        study_file = str(study.save().resolve())  # the tasks plan from it
        jobs = {c.job.key: c.job for c in plan.todo}
        cache_dir = str(cache.root) if cache is not None and cache.root else None
        tasks = [Task(study_file, (key,), cache_dir, self.threads, plan.forced,
                      plan.reused_stale) for key in jobs]
        if progress is not None:
            progress.line(f"dispatching {len(tasks)} training job(s) to "
                          f"{type(self).__name__}")
        total = UnitResult([], [])
        for result in self.map(run_task, tasks):
            records = [r for r in (plan.store.read(plan.store.record_path(k))
                                   for k in result.record_keys) if r is not None]
            for key in result.job_keys:
                job = jobs[key]
                if progress is not None:
                    progress.line(f"finished {job.method.label} seed {job.seed}: "
                                  f"{sum(r.provenance.get('job_key') == key for r in records)} "
                                  "cells")
                training = next((r.provenance.get("training") for r in records
                                 if r.provenance.get("job_key") == key), None)
                if training:
                    for tracker in trackers:
                        tracker.job(job, TrainSummary(**training))
            for record in records:
                step(record)
            for failure in result.failures:
                if progress is not None:
                    progress.line(f"failed: {failure}")
            total.records += records
            total.failures += result.failures
        return total


class LocalPool(Remote):
    """`workers` processes on this machine. On CPU each gets `threads` torch threads
    (default: an equal share of the cores); with `devices` (e.g. ["cuda:0", "cuda:1"]) one
    worker per device. Results equal an in-process run's with the same thread count (the
    order of floating-point sums depends on it)."""

    def __init__(self, workers: int, devices: Sequence[str] = (), threads: int | None = None):
        if workers < 1:
            raise UsageError(f"--workers must be at least 1; got {workers}")
        if devices and len(devices) != workers:
            workers = len(devices)
        self.workers, self.devices = workers, list(devices)
        self.threads = threads or max(1, usable_cpus() // self.workers)

    def map(self, fn: Callable[[Task], TaskResult], tasks: Iterable[Task]
            ) -> Iterator[TaskResult]:
        context = multiprocessing.get_context("spawn")
        queue = None
        if self.devices:
            queue = context.Queue()
            for device in self.devices:
                queue.put(device)
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                 initargs=(queue, self.threads)) as pool:
            futures = [pool.submit(fn, task) for task in tasks]
            for future in as_completed(futures):
                yield future.result()


SLURM_DEFAULTS = {"timeout_min": 240, "cpus_per_task": 4}


class Slurm(Remote):
    """A SLURM job array through submitit, one array task per training job; logs under
    `folder`. `parameters` are submitit's (`slurm_partition`, `timeout_min`,
    `gpus_per_node`, `cpus_per_task`, `slurm_array_parallelism`,
    `slurm_additional_parameters`, ...). `cluster="local"` runs the array as local
    processes (submitit's local executor): the same code path, without a cluster."""

    def __init__(self, folder: Path, parameters: dict[str, Any], cluster: str | None = None,
                 threads: int | None = None):
        self.threads = threads
        try:
            import submitit
        except ImportError as err:
            raise UsageError(f"--executor slurm needs submitit ({err}); pip install "
                             "\"rambench[slurm]\"") from None
        self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        params = {**SLURM_DEFAULTS, **parameters}
        if self.executor.cluster != "slurm":  # the local executor takes the generic names
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
        self.executor.update_parameters(**params)
        self.jobs: list = []

    def map(self, fn: Callable[[Task], TaskResult], tasks: Iterable[Task]
            ) -> Iterator[TaskResult]:
        tasks = list(tasks)
        if not tasks:
            return
        self.jobs = self.executor.map_array(fn, tasks)
        for job, task in zip(self.jobs, tasks, strict=True):
            try:
                yield job.result()
            except Exception as err:  # noqa: BLE001 - a task that died: report, go on
                first = (str(err).strip().splitlines() or [type(err).__name__])[-1]
                yield TaskResult(task.job_keys, [], [
                    f"task {job.job_id} ({', '.join(task.job_keys)}) did not finish: "
                    f"{first}; run the same command again to finish the study"])


def slurm_parameters(partition: str | None, minutes: int | None, gpus: int | None,
                     cpus: int | None, array: int | None, options: Sequence[str]
                     ) -> dict[str, Any]:
    """submitit parameters from the command line's --slurm-* options."""
    params: dict[str, Any] = {}
    if partition:
        params["slurm_partition"] = partition
    if minutes:
        params["timeout_min"] = minutes
    if gpus is not None:
        params["gpus_per_node"] = gpus
    if cpus:
        params["cpus_per_task"] = cpus
    if array:
        params["slurm_array_parallelism"] = array
    extra = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise UsageError(f"--slurm-option expects KEY=VALUE (an sbatch option without "
                             f"its dashes, e.g. account=abc123); got {option!r}")
        extra[key] = value
    if extra:
        params["slurm_additional_parameters"] = extra
    return params
