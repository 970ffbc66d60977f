"""Evaluation: a trained method's class probabilities on (possibly corrupted) test inputs,
and the `Record` of an evaluated cell."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from corruptions import registry
from rambench.batch import Batch
from rambench.datasets import Batcher, Dataset, Split
from rambench.device import autocast
from rambench.feature_cache import FeatureCache
from rambench.methods import Method
from rambench.provenance import (
    code_version,
    device_description,
    git_commit,
    numerics,
    package_versions,
)
from rambench.schema import AV_FAMILY, AVEvent, MethodInfo, Predictions, Record

if TYPE_CHECKING:
    from rambench.train import TrainSummary


@torch.no_grad()
def predict(
    method: Method,
    split: Split,
    kinds: dict[str, str],
    device: torch.device,
    batch_size: int = 256,
    inputs: dict[str, np.ndarray] | None = None,
    missing: dict[str, np.ndarray] | None = None,
    batches: Batcher | None = None,
    logits_of: Callable[[Batch], torch.Tensor] | None = None,
    features: FeatureCache | None = None,
) -> np.ndarray:
    """Class probabilities (N, classes), float32, for every sample of `split`, optionally
    with replaced inputs (corrupted arrays) and `missing` masks (bool (N,) per modality,
    True = absent). `batches`: a Batcher of these inputs to share between methods (on a GPU
    they are then uploaded once for all). `logits_of`: the prediction to take (default: the
    method's forward). `features`: encoder outputs of clean inputs to reuse (and store)."""
    method.eval()
    logits_of = logits_of or method
    batches = batches or Batcher(split, kinds, device, inputs)
    clean = {m: a for m, a in batches.arrays.items() if a is split.inputs.get(m)}
    out = []
    with features.attached(method) if features is not None else contextlib.nullcontext():
        for start, batch in _stream(batches, len(split), batch_size):
            drop = _drops(missing, start, len(batch), device)
            masked = batch.with_missing(drop) if drop else batch
            if features is not None:
                features.offer(masked.inputs, clean, (start, start + len(batch)),
                               batch.inputs, drop)
            with autocast(device):
                logits = logits_of(masked)
            out.append(torch.softmax(logits.float(), dim=1))
    return torch.cat(out).cpu().numpy()  # one copy back to the host


def _stream(batches: Batcher, n: int, batch_size: int) -> Iterator[tuple[int, Batch]]:
    """The batches of samples 0..n-1 in order, each with its first row."""
    for start in range(0, n, batch_size):
        yield start, batches(np.arange(start, min(start + batch_size, n)))


def _drops(missing: dict[str, np.ndarray] | None, start: int, size: int,
           device: torch.device) -> dict[str, torch.Tensor]:
    """The rows of `missing` (modality -> bool (N,), True = absent) in [start, start+size)."""
    return {m: torch.from_numpy(v[start:start + size]).to(device)
            for m, v in (missing or {}).items()}


def predict_adapted(
    method: Method,
    adaptation,
    split: Split,
    kinds: dict[str, str],
    device: torch.device,
    missing: dict[str, np.ndarray] | None = None,
    batches: Batcher | None = None,
) -> np.ndarray:
    """As `predict`, through a test-time adaptation (`rambench.config.AdaptationSpec`): a
    fresh copy of `method` is adapted online on the samples in their order, in batches of
    the adaptation's `batch_size`, with the labels withheld (`batch.y` is None). `method`
    itself is left as it was, so every cell starts from the trained model."""
    adapter = adaptation.cls(copy.deepcopy(method), adaptation.params)
    out = []
    for start, batch in _stream(batches or Batcher(split, kinds, device), len(split),
                                adaptation.params.batch_size):
        batch = batch.with_missing(_drops(missing, start, len(batch), device))
        with autocast(device):
            logits = adapter.adapt(dataclasses.replace(batch, y=None))
        out.append(torch.softmax(logits.detach().float(), dim=1))
    return torch.cat(out).cpu().numpy()


def accuracy(method: Method, split: Split, kinds: dict[str, str], device: torch.device,
             batch_size: int = 256) -> float:
    """Top-1 accuracy on `split` of the method's `validation_logits` (the prediction it is
    selected by); NaN where an output is not finite (a diverged model)."""
    probabilities = predict(method, split, kinds, device, batch_size,
                            logits_of=method.validation_logits)
    if not np.isfinite(probabilities).all():
        return float("nan")
    return float((probabilities.argmax(1) == split.y).mean())


def cell_record(cell, study: str, dataset: Dataset, probabilities: np.ndarray,
                labels: np.ndarray, missing: dict[str, np.ndarray], training: TrainSummary,
                backend: str, grid, device: torch.device, seconds: float,
                split: str = "test", drawn: dict[str, dict[str, list]] | None = None,
                modalities: tuple[str, ...] | None = None) -> Record:
    """The record of one evaluated cell (`cell`: a `rambench.plan.Cell`); `modalities`:
    those the method reads."""
    job, condition = cell.job, cell.condition
    predictions = Predictions.from_probabilities(probabilities, labels)
    correct = predictions.correct
    tested = condition.tested_modalities()
    families = [registry.get(name, dataset.modalities[m].kind).family
                for m, name in condition.corruptions()]
    if isinstance(condition, AVEvent):
        families = [AV_FAMILY]
    details = {}
    if missing:
        details["missing_fraction"] = {m: float(v.mean()) for m, v in missing.items()}
    if drawn:  # the corruption's random parameters per test sample, by modality
        details["drawn"] = drawn
    return Record(
        key=cell.key, study=study, dataset=job.dataset, dataset_version=job.dataset_version,
        method=MethodInfo(job.method.label, job.method.id.name, job.method.family,
                          dataclasses.asdict(job.method.params), job.method.id.code,
                          modalities, job.method.adaptation_identity),
        seed=job.seed, condition=condition,
        modality_kind="+".join(dataset.modalities[m].kind for m in tested) or None,
        corruption_family="+".join(dict.fromkeys(families)) or None,
        corruption_backend=backend, metrics={"accuracy": float(correct.mean())},
        n=int(correct.size), correct=correct, predictions=predictions, details=details,
        train_config=job.train_config, split=split,
        provenance={
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "code_version": code_version(), "git_commit": git_commit(),
            "harness": job.harness, "packages": package_versions(),
            "device": device_description(device), "numerics": numerics(device),
            "grid": {"name": grid.name, "hash": grid.hash},
            "corruption_backends": cell.backends, "job_key": job.key,
            "data_key": cell.data_key, "training": training.to_json(),
            "eval_seconds": round(seconds, 4),
        },
    )
