"""Executing a plan: units of work (training jobs with their evaluation cells) handed to an
`Executor`.

The executor seam keeps planning and evaluation independent of where work runs. Today's
executor runs in this process; one that spreads units over processes, devices or cluster
nodes implements the same `map`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from rambench.cache import CorruptionCache
from rambench.checkpoints import load_or_train
from rambench.datasets import Batcher
from rambench.device import torch_threads
from rambench.errors import TrainingError
from rambench.evaluate import cell_record, predict, predict_adapted
from rambench.feature_cache import FeatureCache, reuse_enabled
from rambench.memory import MemoryBudget
from rambench.methods import Method
from rambench.plan import Cell, Job, Plan
from rambench.progress import Progress
from rambench.schema import Record
from rambench.test_inputs import TestInputs, build_test_inputs
from rambench.tracking import Tracker
from rambench.train import TrainSummary

T = TypeVar("T")


@dataclass(frozen=True)
class WorkUnit:
    """Training jobs of one seed and the cells to evaluate with them. Cells of one seed
    that share a condition share their corrupted inputs (built once per unit)."""

    seed: int
    jobs: tuple[Job, ...]
    cells: tuple[Cell, ...]


def work_units(plan: Plan) -> list[WorkUnit]:
    """One unit per seed: every job of that seed, so corrupted inputs are built once and
    shared by all methods."""
    units = []
    for seed in sorted({c.job.seed for c in plan.todo}):
        cells = tuple(c for c in plan.todo if c.job.seed == seed)
        units.append(WorkUnit(seed, tuple(dict.fromkeys(c.job for c in cells)), cells))
    return units


class Executor(Protocol):
    def map(self, fn: Callable[[WorkUnit], T], units: Iterable[WorkUnit]) -> Iterator[T]:
        """fn(unit) for every unit, results in any order."""
        ...


@runtime_checkable
class RemoteExecutor(Protocol):
    """Runs a plan's work in other processes (`rambench.executors`): each stores its
    records, `step` hears of each one read back."""

    def execute(self, plan: Plan, cache: CorruptionCache | None, progress: Progress | None,
                step: Callable[[Record], None], trackers: Sequence[Tracker]) -> UnitResult:
        ...


class InProcess:
    """Runs every unit here, one after another."""

    def map(self, fn: Callable[[WorkUnit], T], units: Iterable[WorkUnit]) -> Iterator[T]:
        for unit in units:
            yield fn(unit)


@dataclass
class UnitResult:
    records: list[Record]
    failures: list[str]  # one line per job that could not be trained or cell not evaluated


def run_unit(plan: Plan, unit: WorkUnit, cache: CorruptionCache | None = None,
             progress: Progress | None = None, force: bool = False,
             on_record: Callable[[Record], None] | None = None,
             trackers: Sequence[Tracker] = ()) -> UnitResult:
    """Train (or load) the unit's jobs, evaluate their cells, store every record. A job
    whose training fails is reported and its cells skipped; the other jobs go on. Torch runs
    on the study's threads (`Study.threads`), whichever executor calls this."""
    with torch_threads(plan.spec.study.threads):
        return _run_unit(plan, unit, cache, progress, force, on_record, trackers)


def _run_unit(plan: Plan, unit: WorkUnit, cache: CorruptionCache | None,
              progress: Progress | None, force: bool,
              on_record: Callable[[Record], None] | None,
              trackers: Sequence[Tracker]) -> UnitResult:
    spec = plan.spec
    dataset, device = spec.dataset, spec.device
    kinds = {m: s.kind for m, s in dataset.modalities.items()}
    test = dataset.split(spec.split)
    models, failures = {}, []
    for job in unit.jobs:
        if progress is not None:
            progress.job_started(job.method.label, job.seed, loading=not (
                force or not plan.store.checkpoint_path(job.key).exists()))
        try:
            on_epoch = None if progress is None else (
                lambda epoch, epochs, values, job=job: progress.epoch(
                    job.method.label, job.seed, epoch, epochs, values))
            method, summary, trained = load_or_train(
                job, dataset, plan.store, device, progress is not None and progress.live, force,
                on_epoch)
        except TrainingError as err:
            failures.append(str(err))
            if progress is not None:
                progress.line(f"failed: {err}")
                progress.detail(err.detail)
            continue
        models[job.key] = (method, summary)
        if progress is not None:
            progress.job_finished(job.method.label, job.seed, summary, trained)
        if trained:
            for tracker in trackers:
                tracker.job(job, summary)
    by_data: dict[str, list[Cell]] = {}
    for cell in unit.cells:
        if cell.job.key in models:
            by_data.setdefault(cell.data_key, []).append(cell)
    written: list[Record] = []
    memory = cache.memory if cache is not None else MemoryBudget()
    # encoder outputs, per unit (its models, one split)
    features = FeatureCache(memory) if reuse_enabled() else None

    def build(data_key: str, cells: list[Cell]) -> tuple[TestInputs, float]:
        start = time.perf_counter()
        inputs = build_test_inputs(dataset, test, cells[0].condition, unit.seed, data_key,
                                   spec.corruption_backend, device, cache, cells[0].draw_key)
        return inputs, time.perf_counter() - start

    size = sum(np.asarray(a).nbytes for a in test.inputs.values())  # a test set at most
    try:
        for cells, (inputs, corrupt_seconds) in _ahead(build, by_data, memory, size):
            batches = Batcher(test, kinds, device, inputs.inputs)  # shared by every method
            for cell in cells:
                outcome = _evaluate_cell(plan, cell, models[cell.job.key], inputs, batches,
                                         features, corrupt_seconds)
                if isinstance(outcome, str):
                    failures.append(outcome)
                    if progress is not None:
                        progress.line(f"failed: {outcome}")
                    continue
                plan.store.write(outcome)
                written.append(outcome)
                if on_record is not None:
                    on_record(outcome)
    finally:
        if features is not None:
            features.release()
        if cache is not None:
            cache.flush()  # every corrupted test set on disk
    return UnitResult(written, failures)


def _ahead(build: Callable[[str, list[Cell]], T], by_data: dict[str, list[Cell]],
           memory: MemoryBudget, size: int) -> Iterator[tuple[list[Cell], T]]:
    """`build(data_key, cells)` of each data key, in order, with its cells: the next one is
    built in a thread while the caller uses this one, where `memory` holds `size` more
    bytes. What is built depends only on the key, so only the time changes (a CPU run's
    evaluation then keeps a second core busy corrupting)."""
    items = list(by_data.items())
    pool = ThreadPoolExecutor(1, thread_name_prefix="rambench-inputs")
    ahead: Future | None = None
    try:
        for i, (data_key, cells) in enumerate(items):
            if ahead is None:
                built = build(data_key, cells)
            else:
                built, ahead = ahead.result(), None
                memory.give(size)
            if i + 1 < len(items) and memory.take(size):
                ahead = pool.submit(build, *items[i + 1])
            yield cells, built
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if ahead is not None:
            memory.give(size)


def _evaluate_cell(plan: Plan, cell: Cell, model: tuple[Method, TrainSummary],
                   inputs: TestInputs, batches: Batcher, features: FeatureCache | None,
                   corrupt_seconds: float) -> Record | str:
    """The record of one cell (`model`: its trained method and how the training went), or
    why it has none (non-finite outputs)."""
    spec, test, kinds = plan.spec, batches.split, batches.kinds
    dataset, device = spec.dataset, spec.device
    (method, training), start = model, time.perf_counter()
    if cell.job.method.adaptation is None:
        probabilities = predict(method, test, kinds, device, spec.train.eval_batch_size,
                                missing=inputs.missing, batches=batches, features=features)
    else:
        probabilities = predict_adapted(method, cell.job.method.adaptation, test, kinds,
                                        device, inputs.missing, batches)
    bad = int((~np.isfinite(probabilities).all(axis=1)).sum())
    if bad:  # never a result: the same rule as a non-finite training loss
        return (f"method {cell.job.method.label} (seed {cell.job.seed}) gave non-finite "
                f"outputs for {bad} of {len(probabilities)} samples on "
                f"{cell.condition.label}; nothing was stored for this cell")
    return cell_record(cell, plan.store.study, dataset, probabilities, test.y, inputs.missing,
                       training, spec.corruption_backend, spec.grid, device,
                       corrupt_seconds + time.perf_counter() - start, spec.split,
                       inputs.drawn, tuple(method.used_modalities()))


def execute(plan: Plan, cache: CorruptionCache | None = None,
            progress: Progress | None = None, force: bool = False,
            executor: Executor | None = None, trackers: Sequence[Tracker] = ()) -> UnitResult:
    """Run every cell still to do; returns the records written and the failed jobs.

    Corrupted test inputs are built once per data key and unit; with a `cache`, they are
    also kept on disk for later runs and other studies. `progress` hears of every job and
    cell (`rambench.progress`), `trackers` of every job trained and cell evaluated
    (`rambench.tracking`)."""

    def step(record: Record) -> None:
        if progress is not None:
            progress.cell_done(f"{record.method.label} seed {record.seed} "
                               f"{record.condition.label}")
        for tracker in trackers:
            tracker.cell(record)

    if isinstance(executor, RemoteExecutor):
        return executor.execute(plan, cache, progress, step, trackers)

    def run(unit: WorkUnit) -> UnitResult:
        return run_unit(plan, unit, cache, progress, force, step, trackers)

    total = UnitResult([], [])
    for result in (executor or InProcess()).map(run, work_units(plan)):
        total.records += result.records
        total.failures += result.failures
    return total
