"""Unimodal references: one encoder and a linear classifier on a single modality.

loss = CE(W z_m + b, y). They show how much each modality carries alone, and are the
floor that fusion must beat. The other modalities are ignored entirely; a sample whose
modality is absent gets all-zero logits (a uniform prediction: there is nothing to go on).
A dataset without the modality is declined (`supports`): `--method all` skips it.
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

    @classmethod
    def supports(cls, ctx: MethodContext) -> str | None:
        if cls.modality not in ctx.modalities:
            return (f"needs the {cls.modality!r} modality; the dataset has "
                    f"{', '.join(ctx.modalities)}")
        return None

    def __init__(self, ctx: MethodContext, params=None):
        reason = self.supports(ctx)
        if reason is not None:
            raise ValueError(f"{type(self).__name__} {reason}")
        super().__init__(ctx, params)
        self.classifier = nn.Linear(ctx.feature_dim, ctx.num_classes)

    def used_modalities(self) -> tuple[str, ...]:
        return (self.modality,)

    def forward(self, batch: Batch) -> Tensor:
        logits = {self.modality: self.classifier(self.encode(batch)[self.modality])}
        return self.mask_absent(logits, batch)[self.modality]

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
