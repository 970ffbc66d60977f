"""Unimodal references: one encoder and a linear classifier on a single modality.

loss = CE(W z_m + b, y). They show how much each modality carries alone, and are the
floor that fusion must beat. The other modalities are ignored entirely; a sample whose
modality is absent gets all-zero logits (a uniform prediction: there is nothing to go on).
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods


class Unimodal(Method):
    modality: ClassVar[str]
    family = "vanilla"

    def __init__(self, ctx: MethodContext, params=None):
        if self.modality not in ctx.modalities:
            raise ValueError(
                f"{type(self).__name__} needs a {self.modality!r} modality; "
                f"this dataset has {', '.join(ctx.modalities)}"
            )
        super().__init__(ctx, params)
        self.classifier = nn.Linear(ctx.feature_dim, ctx.num_classes)

    def used_modalities(self) -> tuple[str, ...]:
        return (self.modality,)

    def forward(self, batch: Batch) -> Tensor:
        logits = self.classifier(self.encode(batch)[self.modality])
        return logits * batch.present[self.modality].unsqueeze(1).to(logits.dtype)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": F.cross_entropy(self(batch), batch.y)}


@methods.register("audio_only")
class AudioOnly(Unimodal):
    """Audio encoder and a linear classifier; ignores every other modality."""

    modality = "audio"
    citation = "unimodal reference"


@methods.register("visual_only")
class VisualOnly(Unimodal):
    """Visual encoder and a linear classifier; ignores every other modality."""

    modality = "visual"
    citation = "unimodal reference"
