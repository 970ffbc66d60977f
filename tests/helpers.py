"""Small builders shared by tests: feature-level contexts and hand-made batches."""

from __future__ import annotations

import torch
from torch import nn

from rambench.batch import Batch
from rambench.methods import MethodContext


def identity_context(modalities=("audio", "visual"), dim=8, num_classes=3) -> MethodContext:
    """Encoders are identities: inputs are already (B, dim) features, so tests control z."""
    return MethodContext(tuple(modalities), num_classes, dim, lambda m: nn.Identity())


def linear_context(modalities=("audio", "visual"), dim=8, num_classes=3, in_dim=5):
    return MethodContext(tuple(modalities), num_classes, dim, lambda m: nn.Linear(in_dim, dim))


def make_batch(inputs: dict[str, torch.Tensor], y, present=None) -> Batch:
    n = len(y)
    present = present or {m: torch.ones(n, dtype=torch.bool) for m in inputs}
    return Batch(dict(inputs), dict(present), torch.as_tensor(y), torch.arange(n))
