"""Checking a method against the method contract before any work is done.

`probe(spec, dataset)` builds the method and runs `training_loss` and `forward` once on a
few training samples (on the CPU, without a backward pass). A method that cannot be built
with its settings, that raises, whose `training_loss` does not return a dict holding a
finite scalar `loss`, or whose logits are not (batch, classes), is reported in one line
naming the method, before any training starts.
"""

from __future__ import annotations

import numpy as np
import torch

from rambench.datasets import Dataset, to_batch
from rambench.errors import UsageError
from rambench.train import TrainConfig, build_method, modality_kinds

PROBE_SAMPLES = 4


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def probe(spec, dataset: Dataset, cfg: TrainConfig) -> None:
    """Raise UsageError if the method (`rambench.config.MethodSpec`) breaks the contract."""
    label = spec.label
    try:
        method = build_method(spec.cls, dataset, spec.params, cfg, seed=0)
    except Exception as err:  # noqa: BLE001 - any construction error is the method's
        raise UsageError(f"could not build method {label}: {_one_line(err)}") from err
    split = dataset.split("train")
    idx = np.arange(min(PROBE_SAMPLES, len(split)))
    batch = to_batch(split, modality_kinds(dataset), idx)
    rng_state = torch.get_rng_state()
    try:
        method.train()
        try:
            losses = method.training_loss(batch)
        except Exception as err:  # noqa: BLE001
            raise UsageError(f"method {label} failed in training_loss: {_one_line(err)}") \
                from err
        if not isinstance(losses, dict) or "loss" not in losses:
            got = f"a dict with keys {sorted(losses)}" if isinstance(losses, dict) else \
                type(losses).__name__
            raise UsageError(f"method {label}: training_loss must return a dict holding "
                             f"'loss' (the value to minimise); got {got}")
        loss = losses["loss"]
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
            raise UsageError(f"method {label}: training_loss()['loss'] must be a scalar tensor "
                             "that depends on the parameters")
        method.eval()
        with torch.no_grad():
            try:
                logits = method(batch)
            except Exception as err:  # noqa: BLE001
                raise UsageError(f"method {label} failed in forward: {_one_line(err)}") \
                    from err
        expected = (len(idx), dataset.num_classes)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else \
                type(logits).__name__
            raise UsageError(f"method {label}: forward must return logits of shape "
                             f"(batch, classes) = {expected}; got {shape}")
    finally:
        torch.set_rng_state(rng_state)
