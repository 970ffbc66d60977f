"""Late fusion by concatenation: the vanilla multimodal reference.

loss = CE(W [z_1; ...; z_M] + b, y), features of absent modalities set to zero.
No hyper-parameters.

Reference code: none (`reference = ""`). Concatenation late fusion is a generic baseline
with no authors' implementation to follow. For comparison, it is the model of OGM-GE's
code run without modulation (GeWu-Lab/OGM-GE_CVPR2022@343dc1d95c9bda88f105c0da8d24f185e0e98b54:
models/fusion_modules.py, ConcatFusion: fc_out on the concatenated features, with
main.py --modulation Normal --fusion_method concat), and `ogm_ge` here with alpha = 0 and
generalization_enhancement = False reduces to it. Deviation from that code: absent
modalities' features are zeroed (it has no missing modalities).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods
from rambench.models.fusion import ConcatFusion


@methods.register("late_fusion")
class LateFusion(Method):
    """Concatenate unimodal features, one linear classifier (the vanilla baseline)."""

    family = "vanilla"
    citation = "late fusion by concatenation (standard baseline)"

    def __init__(self, ctx: MethodContext, params=None):
        super().__init__(ctx, params)
        self.fusion = ConcatFusion(ctx.modalities, ctx.feature_dim, ctx.num_classes)

    def forward(self, batch: Batch) -> Tensor:
        return self.fusion(self.encode(batch), batch.present)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": F.cross_entropy(self(batch), batch.y)}
