"""A time estimate for a study with no stored timings: a short timing run on this machine.

Each method to train is trained for two epochs on the first `TRAIN_SAMPLES` samples of
every split (the second epoch is the one timed: the first pays one-off costs), and its
validation pass on them is timed apart; the test inputs of a few of the conditions to
evaluate are built for `INPUT_SAMPLES` samples (after `WARM_UP_SAMPLES`, untimed). Scaled to
the sizes of the splits, these give what `rambench.plan.Plan` otherwise reads from stored
records: seconds per epoch of each method and seconds per cell. A cell is estimated as its
model's prediction of the whole test split plus building the inputs of its condition, once
per condition and seed (feature reuse and the overlap of corrupting with predicting make
the real cells faster: the estimate errs long).
"""

from __future__ import annotations

import dataclasses
import time
from statistics import fmean
from typing import TYPE_CHECKING

import torch

from rambench.datasets.limited import Limited
from rambench.device import torch_threads
from rambench.evaluate import accuracy
from rambench.test_inputs import build_test_inputs
from rambench.train import TrainConfig, build_method, modality_kinds, train

if TYPE_CHECKING:
    from rambench.plan import Plan

TRAIN_SAMPLES = 128  # per split, for every method timed
INPUT_SAMPLES = 8  # per condition timed
WARM_UP_SAMPLES = 2  # per condition built first (a reverb's room, a pool's processes)
CONDITIONS = 8  # conditions whose test inputs are built, spread over those to evaluate


def timing_run(plan: Plan) -> tuple[dict[str, dict[str, float]], list[float]] | None:
    """(seconds per epoch by method label, seconds of each cell to do) on this machine;
    None where no method could be timed (each failed to train)."""
    spec = plan.spec
    dataset, device = spec.dataset, torch.device(spec.device)
    sizes = {s: len(dataset.split(s)) for s in ("train", "val", spec.split)}
    small = Limited(dataset, TRAIN_SAMPLES)
    train_n, val = len(small.split("train")), small.split("val")
    kinds = modality_kinds(dataset)
    per_epoch: dict[str, dict[str, float]] = {}
    predicting: dict[str, float] = {}  # label -> seconds per test sample
    with torch_threads(spec.study.threads):
        for job in {c.job.method.label: c.job for c in plan.todo}.values():
            cfg = dataclasses.replace(TrainConfig(**job.train_config), epochs=2,
                                      patience=2, compile=False)
            method = build_method(job.method.cls, small, job.method.params, cfg, job.seed)
            try:
                epoch = train(method, small, cfg, job.seed, device, progress=False
                              ).summary.history[-1]["seconds"]
            except Exception:  # noqa: BLE001 - the run itself reports a method that fails
                continue
            start = time.perf_counter()
            accuracy(method, val, kinds, device, cfg.eval_batch_size)
            validating = time.perf_counter() - start
            training = max(0.0, epoch - validating) / train_n * sizes["train"]
            predicting[job.method.label] = validating / len(val)
            per_epoch[job.method.label] = {
                "timed": training + predicting[job.method.label] * sizes["val"]}
        if not per_epoch:
            return None
        conditions = list(dict.fromkeys((c.data_key, c.condition, c.job.seed, c.draw_key)
                                        for c in plan.todo))
        building = []
        for data_key, condition, seed, draw_key in conditions[
                ::max(1, -(-len(conditions) // CONDITIONS))]:
            for n in (WARM_UP_SAMPLES, INPUT_SAMPLES):  # the first pays one-off costs
                inputs = Limited(dataset, n)
                test = inputs.split(spec.split)
                start = time.perf_counter()
                build_test_inputs(inputs, test, condition, seed, data_key,
                                  spec.corruption_backend, device, None, draw_key)
            building.append((time.perf_counter() - start) / len(test) * sizes[spec.split])
    # each condition's inputs are built once for all the methods that evaluate it
    per_cell = fmean(building) * len(conditions) / len(plan.todo)
    fallback = fmean(predicting.values())
    return per_epoch, [predicting.get(c.job.method.label, fallback) * sizes[spec.split]
                       + per_cell for c in plan.todo]
