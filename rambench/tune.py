"""An equal tuning budget for every method: the learning rate picked from a small fixed set by
clean **validation** accuracy, never by the test grid.

Every method gets the same candidates (by default the dataset's learning rate x 0.5, 1, 2),
the same epochs and the same seed; each candidate is one ordinary training job, so its
checkpoint is reused by the study (the chosen learning rate's job on the tuning seed *is*
the study's job) and by a later tuning. Ties go to the candidate nearest the default. The
chosen value becomes part of the method's training settings: it is in every cell's key and in
every record's `train_config`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from rambench.checkpoints import load_or_train
from rambench.config import StudySpec
from rambench.device import torch_threads
from rambench.errors import TrainingError, UsageError
from rambench.identity import harness_id
from rambench.plan import Job
from rambench.store import Store
from rambench.study import Study

LR_FACTORS = (0.5, 1.0, 2.0)  # candidates: the default learning rate times these


@dataclass
class Tuning:
    """One method's tuning: validation accuracy per candidate learning rate, the choice."""

    method: str
    seed: int
    val_accuracy: dict[float, float]  # of the candidates that trained
    chosen: float
    diverged: dict[float, str] = dataclasses.field(default_factory=dict)  # lr -> why

    def to_json(self) -> dict:
        return {"method": self.method, "seed": self.seed, "chosen_lr": self.chosen,
                "val_accuracy": {f"{lr:g}": acc for lr, acc in self.val_accuracy.items()},
                "diverged": {f"{lr:g}": why for lr, why in self.diverged.items()}}

    @property
    def choice(self) -> dict:
        """As a study keeps it (`Study.tuned[method]`)."""
        choice = {"lr": self.chosen, "seed": self.seed,
                  "val_accuracy": {f"{lr:g}": round(acc, 6)
                                   for lr, acc in self.val_accuracy.items()}}
        if self.diverged:
            choice["diverged"] = [f"{lr:g}" for lr in self.diverged]
        return choice


def candidates(spec: StudySpec, lrs: Sequence[float] | None) -> list[float]:
    values = list(lrs) if lrs else [spec.train.lr * f for f in LR_FACTORS]
    if not values or any(not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0)
                         for v in values):
        raise UsageError(f"learning rates to tune must be positive numbers; got {values!r}")
    return sorted(dict.fromkeys(float(v) for v in values))


def tune(spec: StudySpec, store: Store, lrs: Sequence[float] | None = None, seed: int = 0,
         progress: bool = True) -> list[Tuning]:
    """Train every method of `spec` once per candidate learning rate (or reuse the
    checkpoints) and pick, per method, the one with the best clean validation accuracy. A
    candidate whose training diverges is recorded as diverged and the tuning goes on; a
    method none of whose candidates trains raises TrainingError."""
    with torch_threads(spec.study.threads):
        return _tune(spec, store, candidates(spec, lrs), seed, progress)


def _tune(spec: StudySpec, store: Store, values: list[float], seed: int,
          progress: bool) -> list[Tuning]:
    harness = harness_id()
    out = []
    for method in spec.methods:
        accuracy, diverged = {}, {}
        for lr in values:
            cfg = dataclasses.replace(spec.train_config(method), lr=lr)
            job = Job(spec.dataset.name, spec.dataset.version, method, dataclasses.asdict(cfg),
                      seed, harness)
            try:
                summary = load_or_train(job, spec.dataset, store, spec.device, progress).summary
            except TrainingError as err:
                diverged[lr] = str(err)
                continue
            accuracy[lr] = summary.best_val_accuracy
        if not accuracy:
            raise TrainingError(f"tuning {method.label}: no candidate learning rate trained ("
                                + "; ".join(f"lr {lr:g}: {why}" for lr, why in diverged.items())
                                + ")")
        default = spec.train.lr
        chosen = max(accuracy, key=lambda lr: (accuracy[lr], -abs(math.log(lr / default))))
        out.append(Tuning(method.label, seed, accuracy, chosen, diverged))
    return out


def tune_study(spec: StudySpec, store: Store, progress: bool = True) -> list[Tuning]:
    """Tune `spec`'s methods as its study's `tune:` says (default candidates and seed 0
    without one), from their untuned settings."""
    settings = spec.study.tune or {}
    untuned = dataclasses.replace(spec, methods=tuple(
        dataclasses.replace(m, train={k: v for k, v in m.train.items() if k != "lr"})
        for m in spec.methods))
    return tune(untuned, store, settings.get("lr"), settings.get("seed", 0), progress)


def with_tunings(study: Study, tunings: Sequence[Tuning]) -> Study:
    """`study` keeping each tuned method's choice (`Study.tuned`)."""
    return study.replace(tuned={**study.tuned, **{t.method: t.choice for t in tunings}})


def render(tunings: Sequence[Tuning]) -> str:
    lrs = sorted({lr for t in tunings for lr in (*t.val_accuracy, *t.diverged)})
    head = "| method | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " | chosen |"
    lines = [head, "|---|" + "---:|" * len(lrs) + "---:|"]
    for t in tunings:
        cells = [f"{100 * t.val_accuracy[lr]:.1f}" if lr in t.val_accuracy
                 else "diverged" if lr in t.diverged else "" for lr in lrs]
        lines.append(f"| {t.method} | " + " | ".join(cells) + f" | {t.chosen:g} |")
    return "\n".join(lines)
