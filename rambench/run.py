"""Execution: plan the cells of a study, skip finished ones, train each job once, evaluate.

Flow: request -> jobs x conditions = cells (keyed) -> drop cells already stored ->
per seed: train or load each job's checkpoint -> per condition: build the corrupted test
inputs once, evaluate every job that still needs that cell -> atomic record.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from corruptions.backends import DEFAULT_BACKEND, backend_id
from rambench.cache import CorruptionCache
from rambench.datasets import Dataset, datasets
from rambench.errors import UsageError
from rambench.evaluate import build_test_inputs
from rambench.grid import Grid
from rambench.methods import Method, methods, params_dict
from rambench.params import apply_overrides
from rambench.plan import Cell, Condition, Job
from rambench.provenance import code_version, device_description, git_commit, package_versions
from rambench.store import Store, atomic_write_bytes, pack_bits
from rambench.train import (
    TrainConfig,
    build_method,
    modality_kinds,
    predict,
    resolve_device,
    train,
)


@dataclass
class MethodSpec:
    name: str  # as recorded in results
    cls: type[Method]
    params: Any


def resolve_methods(names: Sequence[str], overrides: dict[str, dict[str, str]]) -> list[MethodSpec]:
    """Method names (or 'all', or file.py:Class) -> classes with their hyper-parameters."""
    expanded: list[str] = []
    for name in names:
        expanded += methods.names() if name == "all" else [name]
    specs = []
    for name in dict.fromkeys(expanded):
        cls = methods.get(name)
        recorded = name if name in methods.names() else cls.__name__
        specs.append(MethodSpec(recorded, cls, apply_overrides(
            cls.Params, recorded, overrides.get(recorded, {}))))
    unknown_scopes = set(overrides) - {s.name for s in specs} - {"train"}
    if unknown_scopes:
        raise UsageError(f"--set scope(s) {', '.join(sorted(unknown_scopes))} match no selected "
                         f"method; scopes: train, {', '.join(s.name for s in specs)}")
    return specs


def resolve_train_config(overrides: dict[str, str], epochs: int | None,
                         dataset: Dataset | None = None) -> TrainConfig:
    """Training settings: TrainConfig's defaults < the dataset's < the grid's < the command's."""
    base = apply_overrides(TrainConfig, f"{dataset.name} train defaults",
                           dataset.train_defaults) if dataset is not None else None
    cfg = apply_overrides(TrainConfig, "train", overrides, base)
    if epochs is not None:
        cfg.epochs = epochs
    return cfg


def make_job(dataset: Dataset, spec: MethodSpec, cfg: TrainConfig, seed: int) -> Job:
    return Job(dataset.name, dataset.version, spec.name, spec.cls.family,
               params_dict(spec.params), params_dict(cfg), seed)


def condition_backends(condition: Condition, kinds: dict[str, str], backend: str,
                       device: torch.device) -> dict[str, str]:
    """What produces each corruption a condition applies (library, version, device)."""
    pairs = [(condition.modality, condition.corruption)] if condition.kind == "corruption" \
        else list(condition.mixed)
    return {name: backend_id(name, kinds[m], backend, device) for m, name in pairs}


@dataclass
class Plan:
    dataset: Dataset
    specs: list[MethodSpec]
    cells: list[Cell]
    todo: list[Cell]
    store: Store
    grid: Grid
    device: torch.device
    backend: str  # corruption backend: "torch" or "reference"

    def describe(self) -> str:
        jobs = {c.job.key for c in self.todo}
        lines = [f"study {self.store.study!r} in {self.store.root}: {len(self.cells)} cells, "
                 f"{len(self.cells) - len(self.todo)} done, {len(self.todo)} to do "
                 f"({len(jobs)} training jobs)"]
        for cell in self.todo:
            lines.append(f"  todo {cell.key}  {cell.job.method:<14} seed={cell.job.seed} "
                         f"{cell.condition.label}")
        return "\n".join(lines)


def make_plan(
    dataset_name: str, method_names: Sequence[str], seeds: Sequence[int], grid: Grid,
    overrides: dict[str, dict[str, str]], epochs: int | None, store: Store, force: bool,
    device_name: str = "auto", corruption_backend: str = DEFAULT_BACKEND,
) -> Plan:
    device = resolve_device(device_name)
    dataset = datasets.get(dataset_name)()
    grid_overrides: dict[str, dict[str, str]] = {}
    for key, value in grid.overrides.items():
        scope, _, name = key.partition(".")
        grid_overrides.setdefault(scope, {})[name] = value
    for scope, values in overrides.items():  # the command line wins over the grid
        grid_overrides.setdefault(scope, {}).update(values)
    cfg = resolve_train_config(grid_overrides.pop("train", {}),
                               epochs if epochs is not None else grid.epochs, dataset)
    specs = resolve_methods(method_names, grid_overrides)
    kinds = modality_kinds(dataset)
    conditions = grid.conditions(kinds)
    cells = [
        Cell(make_job(dataset, spec, cfg, seed), cond,
             condition_backends(cond, kinds, corruption_backend, device))
        for seed in seeds for spec in specs for cond in conditions
    ]
    todo = cells if force else [c for c in cells if not store.has(c.key)]
    return Plan(dataset, specs, cells, todo, store, grid, device, corruption_backend)


def _load_or_train(plan: Plan, spec: MethodSpec, job: Job, device, progress: bool,
                   force: bool) -> tuple[Method, dict[str, Any]]:
    cfg = TrainConfig(**job.train_config)
    method = build_method(spec.cls, plan.dataset, spec.params, cfg, job.seed)
    path = plan.store.checkpoint_path(job.key)
    if path.exists() and not force:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        method.load_state_dict(checkpoint["state_dict"])
        method.to(device)
        return method, checkpoint["training"]
    result = train(method, plan.dataset, cfg, job.seed, device, progress)
    training = {"best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
                "epochs_run": result.epochs_run, "seconds": result.seconds}
    buffer = io.BytesIO()
    torch.save({"state_dict": result.state_dict, "job": job.__dict__, "training": training},
               buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return method, training


def execute(plan: Plan, progress: bool = True, force: bool = False,
            cache: CorruptionCache | None = None) -> list[dict[str, Any]]:
    """Run every cell still to do; returns the records written.

    Corrupted test inputs are built once per data key and shared by every method; with a
    `cache`, they are also kept on disk for later runs and other studies."""
    device = plan.device
    kinds = modality_kinds(plan.dataset)
    test = plan.dataset.split("test")
    spec_of = {s.name: s for s in plan.specs}
    written: list[dict[str, Any]] = []
    bar = tqdm(total=len(plan.todo), desc="grid", unit="cell",
               disable=None if progress else True)  # None: only on a terminal
    for seed in sorted({c.job.seed for c in plan.todo}):
        seed_cells = [c for c in plan.todo if c.job.seed == seed]
        models: dict[str, tuple[Method, dict[str, Any]]] = {}
        for job in dict.fromkeys(c.job for c in seed_cells):
            models[job.key] = _load_or_train(plan, spec_of[job.method], job, device, progress,
                                             force)
        by_data: dict[str, list[Cell]] = {}
        for cell in seed_cells:
            by_data.setdefault(cell.data_key, []).append(cell)
        for data_key, cells in by_data.items():
            start = time.perf_counter()
            condition = cells[0].condition
            bar.set_postfix_str(condition.label)
            inputs = build_test_inputs(plan.dataset, test, condition, seed, data_key,
                                       plan.backend, device, cache)
            corrupt_seconds = time.perf_counter() - start
            for cell in cells:
                method, training = models[cell.job.key]
                t0 = time.perf_counter()
                preds = predict(method, test, kinds, device, inputs=inputs.inputs,
                                missing=inputs.missing)
                record = _record(plan, cell, preds == test.y, inputs.missing, training, device,
                                 corrupt_seconds + time.perf_counter() - t0)
                plan.store.write(record)
                written.append(record)
                bar.update()
    bar.close()
    return written


def _record(plan: Plan, cell: Cell, correct: np.ndarray, missing: dict[str, np.ndarray],
            training: dict[str, Any], device, seconds: float) -> dict[str, Any]:
    job, cond = cell.job, cell.condition
    details = {}
    if missing:
        details["missing_fraction"] = {m: float(v.mean()) for m, v in missing.items()}
    return {
        "key": cell.key, "study": plan.store.study, "dataset": job.dataset,
        "dataset_version": job.dataset_version, "method": job.method, "family": job.family,
        "seed": job.seed, "train_condition": job.train_condition,
        "test_condition": cond.as_dict(), "test_modality": cond.modality,
        "corruption": cond.corruption, "severity": cond.severity,
        "missing_pattern": cond.missing_pattern, "missing_rate": cond.missing_rate,
        "corruption_backend": plan.backend,
        "metrics": {"accuracy": float(correct.mean())}, "n": int(correct.size),
        "correct": pack_bits(correct), "details": details,
        "method_params": job.params, "train_config": job.train_config,
        "provenance": {
            "code_version": code_version(), "git_commit": git_commit(),
            "packages": package_versions(), "device": device_description(device),
            "grid": {"name": plan.grid.name, "hash": plan.grid.hash},
            "corruption_backends": cell.backends, "job_key": job.key,
            "data_key": cell.data_key, "training": training,
            "eval_seconds": round(seconds, 4),
        },
    }

