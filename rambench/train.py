"""The one training pipeline: every method is trained and evaluated by this code.

The harness owns the optimiser, schedule, epochs, early stopping on validation accuracy,
seeding and device; methods only provide `training_loss` and `forward`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from rambench.datasets import Batcher, Dataset
from rambench.device import autocast
from rambench.errors import TrainingError
from rambench.evaluate import accuracy
from rambench.methods import Method, MethodContext, optimiser_groups
from rambench.models import encoders
from rambench.params import param


@dataclass
class TrainConfig:
    epochs: int = param(30, ge=1)
    batch_size: int = param(64, ge=1)
    lr: float = param(2e-3, gt=0)
    weight_decay: float = param(1e-4, ge=0)
    patience: int = param(10, ge=1)  # stop after this many epochs without a better val. acc.
    feature_dim: int = param(128, ge=1)
    eval_batch_size: int = param(256, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"  # sgd uses `momentum`
    momentum: float = param(0.9, ge=0, le=1)
    schedule: Literal["onecycle", "step"] = "onecycle"  # per step | x step_gamma per step_size
    step_size: int = param(70, ge=1)
    step_gamma: float = param(0.1, gt=0, le=1)
    # torch.compile the method for training (`compile_method`); compiled kernels
    # may sum in another order, so a compiled run is a configuration of its own
    compile: bool = False


TRAINING_STATUSES = ("ok", "at_chance")


@dataclass(frozen=True)
class TrainSummary:
    """How a training run went; kept with the checkpoint and in every record.

    `status` is "at_chance" when the best validation accuracy is within two binomial
    standard errors of always predicting the most frequent validation class: the method
    did not learn, and tables say so instead of presenting its numbers as a result."""

    best_epoch: int
    best_val_accuracy: float
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: losses, val
    status: str = "ok"
    chance_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    summary: TrainSummary


def modality_kinds(dataset: Dataset) -> dict[str, str]:
    return {m: spec.kind for m, spec in dataset.modalities.items()}


def build_method(
    method_cls: type[Method], dataset: Dataset, params: Any, cfg: TrainConfig, seed: int
) -> Method:
    """Construct a method with freshly initialised, seed-determined weights. Its context
    carries each modality's InputSpec (kind, input shape, frames, sample rate)."""
    torch.manual_seed(seed)
    specs = dataset.modalities
    ctx = MethodContext.from_dataset(
        dataset, cfg.feature_dim,
        make_encoder=lambda m: encoders.get(specs[m].encoder)(specs[m], cfg.feature_dim))
    return method_cls(ctx, params)


def compile_method(method: Method) -> None:
    """torch.compile a method in place: its forward (`Module.compile`: the state dict keeps
    its keys) and its `training_loss`, with everything they call (encoders, fusion, the
    method's own arithmetic; a method that reads a value back to Python, e.g. `float(x)`,
    is split into several compiled graphs there)."""
    method.compile()
    method.training_loss = torch.compile(method.training_loss)


def _optimiser(method: Method, cfg: TrainConfig, steps_per_epoch: int):
    """(optimiser, called after every step, called after every epoch). A method's
    `param_groups()` (learning-rate multipliers of cfg.lr per group) is honoured; the
    schedule then scales every group alike (one-cycle peaks at cfg.lr x the group's scale)."""
    groups = optimiser_groups(method, cfg.lr)
    if cfg.optimizer == "sgd":
        optimiser = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay)
    else:
        optimiser = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "step":
        schedule = torch.optim.lr_scheduler.StepLR(optimiser, cfg.step_size, cfg.step_gamma)
        return optimiser, lambda: None, schedule.step
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[g["lr"] for g in optimiser.param_groups],
        total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15)
    return optimiser, schedule.step, lambda: None


def train(
    method: Method,
    dataset: Dataset,
    cfg: TrainConfig,
    seed: int,
    device: torch.device,
    progress: bool = True,
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train with the configured optimiser and schedule (AdamW + one-cycle by default; SGD +
    step decay for the real datasets, as OGM-GE); keep the best validation epoch's weights.
    `on_epoch(epoch, epochs, values)` hears each epoch's history entry (progress lines)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    order_rng = np.random.default_rng(seed)
    train_split, val_split = dataset.split("train"), dataset.split("val")
    for array in train_split.inputs.values():  # inputs drawn at random per epoch
        if hasattr(array, "reseed"):
            array.reseed(seed)
    kinds = modality_kinds(dataset)
    method.to(device)
    if cfg.compile:
        compile_method(method)
    steps_per_epoch = -(-len(train_split) // cfg.batch_size)
    optimiser, step_schedule, epoch_schedule = _optimiser(method, cfg, steps_per_epoch)
    best = (-1.0, 0, copy.deepcopy(method.state_dict()))
    history: list[dict[str, float]] = []
    bar = tqdm(range(cfg.epochs), desc=f"train {type(method).__name__}", unit="epoch",
               disable=None if progress else True, leave=False)
    batches = Batcher(train_split, kinds, device)
    # on the CPU reading a loss costs nothing: check every step, and name the step; on a GPU
    # the losses stay on the device, summed there, and are read once per epoch
    sync_each_step = device.type == "cpu"
    epoch = 0
    for epoch in bar:
        epoch_start = time.perf_counter()
        method.train()
        method.start_epoch(epoch, cfg.epochs)
        sums: dict[str, torch.Tensor] = {}
        finite = torch.ones((), dtype=torch.bool, device=device)
        order = order_rng.permutation(len(train_split))
        for step, start_i in enumerate(range(0, len(order), cfg.batch_size)):
            batch = batches(order[start_i:start_i + cfg.batch_size])
            with autocast(device):
                losses = method.training_loss(batch)
            values = {name: value.detach().double() for name, value in losses.items()}
            if sync_each_step and not math.isfinite(float(values["loss"])):
                raise TrainingError(
                    f"the loss is {float(values['loss'])} at epoch {epoch + 1}, step "
                    f"{step + 1} (terms: { {k: float(v) for k, v in values.items()} })")
            finite &= torch.isfinite(values["loss"])
            optimiser.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimiser.step()
            step_schedule()
            for name, value in values.items():
                sums[name] = sums[name] + value if name in sums else value
        if not bool(finite):
            raise TrainingError(f"the loss became non-finite during epoch {epoch + 1}")
        totals = {name: float(value) / steps_per_epoch for name, value in sums.items()}
        epoch_schedule()
        val_acc = accuracy(method, val_split, kinds, device, cfg.eval_batch_size)
        if not math.isfinite(val_acc):
            raise TrainingError(f"the outputs on the validation split became non-finite "
                                f"after epoch {epoch + 1} (the weights diverged)")
        history.append({"epoch": epoch, "val_accuracy": val_acc,
                        "lr": optimiser.param_groups[0]["lr"], **totals,
                        "seconds": time.perf_counter() - epoch_start})
        if on_epoch is not None:
            on_epoch(epoch, cfg.epochs, history[-1])
        if val_acc > best[0]:
            best = (val_acc, epoch, copy.deepcopy(method.state_dict()))
        bar.set_postfix(loss=f"{totals['loss']:.3f}", val=f"{val_acc:.3f}", best=f"{best[0]:.3f}")
        if epoch - best[1] >= cfg.patience:
            break
    method.load_state_dict(best[2])
    chance = chance_accuracy(val_split.y)
    at_chance = best[0] <= chance + 2 * math.sqrt(chance * (1 - chance) / len(val_split))
    return TrainResult(
        state_dict={k: v.detach().cpu() for k, v in best[2].items()},
        summary=TrainSummary(best[1], best[0], epoch + 1, time.perf_counter() - start,
                             history, "at_chance" if at_chance else "ok", chance),
    )


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent label."""
    return float(np.bincount(np.asarray(labels)).max() / len(labels))
