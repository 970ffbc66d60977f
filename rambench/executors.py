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

So a local driver that is interrupted (Ctrl-C, SIGTERM) terminates its workers at once:
what they finished is stored, their jobs in progress are done by the next run. A local
worker that dies costs only its own job in progress, which runs again in a new worker
(once; a second death leaves it to the next run).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.connection import Connection
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

EXECUTORS = ("auto", "inprocess", "local", "slurm")
DEVICE_ENV = "RAMBENCH_WORKER_DEVICE"  # a local worker's own device (its GPU)

log = logging.getLogger(__name__)


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


def _start_worker(device: str | None, cpus: int) -> None:
    """A local worker's initializer. Ctrl-C is the driver's to handle: a terminal sends it
    to the whole process group, and the driver stops its workers itself. (`_Worker` starts
    the process with SIGINT ignored already.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if device is not None:
        os.environ[DEVICE_ENV] = device
    # its share of the cores for the reference corruptions' processes (speed only; torch's
    # threads are the study's, set where the work runs: `rambench.execute.run_unit`)
    os.environ[REFERENCE_WORKERS_ENV] = str(cpus)


def _serve(conn: Connection, device: str | None, cpus: int) -> None:
    """A local worker process: runs each `(fn, task)` it receives and sends back `("ok",
    result, None)` or `("error", exception, its traceback)`; stops on None or when the
    driver is gone."""
    _start_worker(device, cpus)
    try:
        while (work := conn.recv()) is not None:
            fn, task = work
            try:
                reply = ("ok", fn(task), None)
            except Exception as err:  # noqa: BLE001 - raised again by the driver
                detail = "".join(traceback.format_exception(err))
                try:
                    pickle.loads(pickle.dumps(err))
                except Exception:  # noqa: BLE001 - an exception that does not travel
                    err = RuntimeError(f"{type(err).__name__}: {err}")
                reply = ("error", err, detail)
            conn.send(reply)
    except (EOFError, OSError):  # the driver is gone
        pass


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (its `__cause__` in the driver)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def _how(exitcode: int | None) -> str:
    """'killed by signal 9 (SIGKILL)', 'exit status 1'."""
    if exitcode is not None and exitcode < 0:
        try:
            name = f" ({signal.Signals(-exitcode).name})"
        except ValueError:
            name = ""
        return f"killed by signal {-exitcode}{name}"
    return f"exit status {exitcode}"


class _Worker:
    """One process of a `LocalPool`, fed one task at a time through its own pipe.

    Not `concurrent.futures.ProcessPoolExecutor`: when one of its processes dies, the pool
    breaks as a whole (it fails every task, terminating the other processes with their
    tasks in progress), and on the way out it waits for every task, even the queued ones.
    Here the driver owns each process: a death costs only that process's task, and an
    interrupted driver terminates its workers at once."""

    def __init__(self, context: Any, device: str | None, cpus: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, device, cpus),
                                       name="rambench-worker")
        self.task: Task | None = None  # the task it is running
        # an ignored signal stays ignored through exec: the worker ignores Ctrl-C from its
        # first instruction, not only once `_start_worker` runs (seconds of imports later)
        main = threading.current_thread() is threading.main_thread()
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            self.process.start()
        finally:
            if handler is not None:
                signal.signal(signal.SIGINT, handler)
            child.close()

    def run(self, fn: Callable[[Task], TaskResult], task: Task) -> None:
        self.task = task
        try:
            self.conn.send((fn, task))
        except OSError:  # it died: `reply` says how
            pass

    def reply(self) -> tuple[Task, tuple[str, Any, Any]]:
        """Its task and `("ok", result, None)`, `("error", exception, traceback)` or
        `("died", exitcode, None)`; it is idle again (or dead)."""
        task, self.task = self.task, None
        assert task is not None
        try:
            if self.conn.poll():
                return task, self.conn.recv()
        except (EOFError, OSError):
            pass
        self.process.join(5)
        self.conn.close()
        return task, ("died", self.process.exitcode, None)


def _stop(workers: Sequence[_Worker], politely: bool) -> None:
    """Ends the workers: idle ones are asked to stop (`politely`: the work is done), the
    others terminated at once; one still alive 5 s later is killed."""
    for worker in workers:
        if worker.conn.closed:  # dead, and joined
            continue
        if politely and worker.task is None:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        else:
            worker.process.terminate()
    deadline = time.monotonic() + 5
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()


POLL_SECONDS = 10.0  # how often a waiting executor reports the records stored meanwhile


class Remote:
    """What the executors of other processes share: one task per training job, each
    stores its records; here they are read back for the progress and the trackers
    (`rambench.execute.RemoteExecutor`)."""

    progress: Progress | None = None  # the run's, while `execute` runs
    labels: Mapping[str, str] = {}  # job key: "method seed N", while `execute` runs
    # while `execute` runs: reports the records the workers stored since the last call
    # (`map` calls it every `POLL_SECONDS` while it waits)
    poll: Callable[[], None] = staticmethod(lambda: None)

    def label(self, task: Task) -> str:
        """'tmc seed 0': the task's jobs."""
        return ", ".join(self.labels.get(key, key) for key in task.job_keys)

    def warn(self, text: str) -> None:
        """A warning line, on the screen and in the run's log."""
        if self.progress is not None:
            self.progress.line(f"warning: {text}")
        else:
            log.warning(text)

    def map(self, fn: Callable[[Task], TaskResult], tasks: Iterable[Task]
            ) -> Iterator[TaskResult]:
        raise NotImplementedError

    def execute(self, plan: Plan, cache: CorruptionCache | None, progress: Progress | None,
                step: Callable[[Record], None], trackers: Sequence[Tracker]) -> UnitResult:
        study = plan.spec.study
        if not all(isinstance(m, str) for m in study.methods):
            raise UsageError("a method given as a class object cannot run in other processes: "
                             "name it (registered name, or path/file.py:Class) instead")
        study_file = str(study.save().resolve())  # the tasks plan from it
        jobs = {c.job.key: c.job for c in plan.todo}
        # the cache's folder, which CorruptionCache(cache_dir) opens again (its `root` is
        # that folder's corrupted/)
        cache_dir = str(cache.root.parent) if cache is not None and cache.root else None
        tasks = [Task(study_file, (key,), cache_dir, plan.forced, plan.reused_stale)
                 for key in jobs]
        if progress is not None:
            progress.line(f"dispatching {len(tasks)} training job(s) to "
                          f"{type(self).__name__}")
        self.progress = progress
        self.labels = {key: f"{job.method.label} seed {job.seed}" for key, job in jobs.items()}
        waiting = {c.key for c in plan.todo}  # cells whose record has not been reported
        training = {job.key for job in plan.jobs_to_train()}

        def report(record: Record) -> None:
            waiting.discard(record.key)
            if progress is not None and record.provenance.get("job_key") in training:
                training.discard(record.provenance["job_key"])
                progress.trained_elsewhere()  # its first cell: its training is over
            step(record)

        def poll() -> None:
            for key in [k for k in waiting if plan.store.record_path(k).exists()]:
                if (record := plan.store.read(plan.store.record_path(key))) is not None:
                    report(record)

        self.poll = poll
        results = self.map(run_task, tasks)
        try:
            return self._collect(results, plan, jobs, progress, report, trackers, waiting)
        finally:
            results.close()  # an interrupted run stops its workers now, not when collected
            self.progress, self.labels = None, {}
            del self.poll

    def _collect(self, results: Iterator[TaskResult], plan: Plan, jobs: dict,
                 progress: Progress | None, step: Callable[[Record], None],
                 trackers: Sequence[Tracker], waiting: set[str]) -> UnitResult:
        """The records and failures of every task's result, each record reported (`step`)
        unless `poll` reported it already (its key is no longer in `waiting`)."""
        from rambench.train import TrainSummary

        total = UnitResult([], [])
        for result in results:
            records = [r for r in (plan.store.read(plan.store.record_path(k))
                                   for k in result.record_keys) if r is not None]
            for key in result.job_keys:
                job = jobs[key]
                cells = sum(r.provenance.get("job_key") == key for r in records)
                if progress is not None and (cells or not result.failures):
                    progress.line(f"finished {job.method.label} seed {job.seed}: {cells} cells")
                training = next((r.provenance.get("training") for r in records
                                 if r.provenance.get("job_key") == key), None)
                if training:
                    for tracker in trackers:
                        tracker.job(job, TrainSummary(**training))
            for record in records:
                if record.key in waiting:
                    step(record)
            for failure in result.failures:
                if progress is not None:
                    progress.line(f"failed: {failure}")
            total.records += records
            total.failures += result.failures
        return total


# estimated seconds of work (in one process) below which a CPU run stays in this process:
# starting a pool's workers takes a few seconds each (imports, the dataset)
POOL_PAYS_SECONDS = 30.0


def auto_executor(plan) -> tuple[Remote | None, str]:
    """What `--executor auto` runs a plan with, and why, in words. On a CPU: one worker per
    `threads` cores (single-thread workers on a 2-core machine, which measured 1.44x faster
    than one process on the full grid, benchmarks/study.py), never more workers than
    training jobs, and in this process where that is one or where the plan's estimate is
    under `POOL_PAYS_SECONDS`. On GPUs: one worker per visible
    device where there are several (and several jobs), else this process. The numbers do
    not depend on it: every process trains and evaluates with the study's threads."""
    import torch

    jobs = len({c.job for c in plan.todo})
    device = torch.device(plan.spec.device)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count > 1 and jobs > 1:
            devices = [f"cuda:{i}" for i in range(min(count, jobs))]
            return LocalPool(len(devices), devices), (
                f"a local pool of {len(devices)} workers, one per GPU (auto)")
        return None, "this process (auto: one GPU)"
    threads = plan.spec.study.threads
    workers = min(usable_cpus() // threads, jobs)
    estimate = plan.estimate_seconds(1) if workers >= 2 else None
    if estimate is not None and sum(estimate) < POOL_PAYS_SECONDS:
        return None, (f"this process (auto: about {sum(estimate):.0f}s of work, too little "
                      "for a pool's start-up)")
    if workers >= 2:
        return LocalPool(workers), (f"a local pool of {workers} workers with {threads} "
                                    f"thread(s) each (auto: {usable_cpus()} cores, {jobs} "
                                    "jobs)")
    why = "one training job" if jobs <= 1 else f"{usable_cpus()} core(s)"
    return None, f"this process (auto: {why})"


class LocalPool(Remote):
    """`workers` processes on this machine; with `devices` (e.g. ["cuda:0", "cuda:1"]) one
    worker per device. Each trains and evaluates with the study's torch threads
    (`Study.threads`), as an in-process run does, so the results are the same (on a CPU, the
    order of floating-point sums depends on the thread count).

    Interrupted (Ctrl-C, SIGTERM: a KeyboardInterrupt here), it terminates its workers at
    once: their finished records are stored, their jobs in progress are lost (a re-run does
    them). A worker that dies (killed by the system, say) costs only its job in progress:
    the job runs again in a new worker; if that one dies too, the job is left for a
    re-run and reported as a failure."""

    def __init__(self, workers: int, devices: Sequence[str] = ()):
        if workers < 1:
            raise UsageError(f"--workers must be at least 1; got {workers}")
        if devices and len(devices) != workers:
            workers = len(devices)
        self.workers, self.devices = workers, list(devices)
        self.cpus = max(1, usable_cpus() // self.workers)  # each worker's share

    def map(self, fn: Callable[[Task], TaskResult], tasks: Iterable[Task]
            ) -> Iterator[TaskResult]:
        queue = deque(tasks)
        devices: list[str | None] = [*self.devices] or [None] * self.workers
        slots: list[_Worker | None] = [None] * min(len(devices), len(queue))
        context = multiprocessing.get_context("spawn")
        deaths: dict[tuple[str, ...], int] = {}
        error: BaseException | None = None
        finished = False
        try:
            while True:
                for i, worker in enumerate(slots):
                    if queue and error is None and (worker is None or worker.task is None):
                        if worker is None:
                            worker = slots[i] = _Worker(context, devices[i], self.cpus)
                        worker.run(fn, queue.popleft())
                busy = [(i, w) for i, w in enumerate(slots) if w is not None and w.task is not None]
                if not busy:
                    break
                ready = set(connection.wait([w.conn for _, w in busy]
                                            + [w.process.sentinel for _, w in busy],
                                            timeout=POLL_SECONDS))
                if not ready:
                    self.poll()
                    continue
                for i, worker in busy:
                    if worker.conn not in ready and worker.process.sentinel not in ready:
                        continue
                    task, (status, value, detail) = worker.reply()
                    if status == "ok":
                        yield value
                    elif status == "error":
                        value.__cause__ = _RemoteTraceback(detail)
                        error = error or value
                    else:  # died: a new worker takes its place when there is work
                        slots[i] = None
                        how, label = _how(value), self.label(task)
                        deaths[task.job_keys] = deaths.get(task.job_keys, 0) + 1
                        if deaths[task.job_keys] == 1:
                            self.warn(f"a worker process died ({how}) while running {label}; "
                                      "it runs again in a new worker")
                            queue.appendleft(task)
                            continue
                        self.warn(f"a worker process died again ({how}) while running "
                                  f"{label}; it is left for the resume")
                        yield TaskResult(task.job_keys, [], [
                            f"{label} did not finish: its worker process died twice ({how}); "
                            "run the same command to resume"])
            if error is not None:
                raise error
            finished = True
        finally:
            _stop([w for w in slots if w is not None], politely=finished)


SLURM_DEFAULTS = {"timeout_min": 240, "cpus_per_task": 4}


class Slurm(Remote):
    """A SLURM job array through submitit, one array task per training job; logs under
    `folder`. `parameters` are submitit's (`slurm_partition`, `timeout_min`,
    `gpus_per_node`, `cpus_per_task`, `slurm_array_parallelism`,
    `slurm_additional_parameters`, ...). `cluster="local"` runs the array as local
    processes (submitit's local executor): the same code path, without a cluster."""

    def __init__(self, folder: Path, parameters: dict[str, Any], cluster: str | None = None):
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
            while not job.done():
                time.sleep(POLL_SECONDS)
                self.poll()
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
