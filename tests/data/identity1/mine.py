"""A plug-in method whose results were stored by identity 1 (tests/test_identity.py)."""

import torch.nn.functional as F
from torch import nn

from rambench.methods import Method


class MeanFusion(Method):
    """Average of per-modality linear classifiers."""

    def __init__(self, ctx, params=None):
        super().__init__(ctx, params)
        self.heads = nn.ModuleDict(
            {m: nn.Linear(ctx.feature_dim, ctx.num_classes) for m in ctx.modalities})

    def forward(self, batch):
        logits = [self.heads[m](z) for m, z in self.encode(batch).items()]
        return sum(logits) / len(logits)

    def training_loss(self, batch):
        return {"loss": F.cross_entropy(self(batch), batch.y)}
