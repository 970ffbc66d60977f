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


def plugin_source(class_name: str, loss: str) -> str:
    """A method file a user could write: per-modality linear heads summed, with `loss` (an
    expression of `self`, `batch` and `F`) as what `training_loss` returns."""
    return f'''
import torch.nn.functional as F
from torch import nn
from rambench.methods import Method


class {class_name}(Method):
    def __init__(self, ctx, params=None):
        super().__init__(ctx, params)
        self.head = nn.Linear(ctx.feature_dim, ctx.num_classes)

    def forward(self, batch):
        return sum(self.head(z) for z in self.encode(batch).values())

    def training_loss(self, batch):
        return {loss}
'''
