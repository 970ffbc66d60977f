"""Cross-modal feature reconstruction ("imagination") of absent modalities.

In the style of MMIN (J. Zhao, R. Li, Q. Jin, "Missing Modality Imagination Network for
Emotion Recognition with Uncertain Missing Modalities", ACL 2021) and ActionMAE (S. Woo,
S. Lee, Y. Park, M. A. Nugroho, C. Kim, "Towards Good Practices for Missing Modality
Robust Action Recognition", AAAI 2023): a missing modality's feature is predicted from
the available ones and fused in its place.

For each modality m an MLP g_m (Linear-ReLU-Linear) predicts
    z^_m = g_m([ z~_o ; a_o ]_{o != m}),   z~_o = a_o z_o,  a_o = 1 if o is present else 0,
from the other modalities' features and presence flags. The fusion (concat, one linear
classifier) takes u_m = z_m where m is present and u_m = z^_m where it is absent, at
training and at test time (driven by `batch.present`). Training drops modalities at
random (each w.p. p, never all of a sample's present ones: `moddrop.drop_mask`) and
    loss = CE(W [u_1; ...; u_M] + b, y)
           + lambda mean_m mean_{i in S_m} |z^_m,i - sg(z_m,i)|^2 / d,
S_m = samples where m is present in the batch (dropped or not: its real feature is the
target) and at least one other modality survives the drop; sg = stop-gradient.

Stop-gradient (default on, switch `stopgrad`): the target feature is detached, so the
reconstruction loss trains g_m and the *source* encoders but does not pull the target
encoder towards features that are easy to predict; without it the cheapest way to lower
the MSE is to shrink or collapse every encoder's features (MMIN likewise regresses onto
features of a separately trained, fixed encoder). The classification loss still reaches
g_m wherever m was dropped, so the reconstruction is trained to be discriminative too.

Hyper-parameters: p = 0.3, lam = 1.0, hidden = 256 (MLP width), stopgrad = True.

Deviations: MMIN uses cascaded residual autoencoders over the joint representation plus a
backward (cycle) imagination; ActionMAE a transformer over masked modality tokens. Both
are replaced by one MLP per modality on the benchmark's shared encoders' features, and the
drop scheme is the one of `moddrop`. The real features of dropped modalities serve as
targets (the inputs are there at training time; only the fusion is denied them). Needs at
least two modalities.

Reference code: none (`reference = ""`). This is rambench's own simplified design "in the
style of" MMIN and ActionMAE, not a reimplementation of either; their authors' code
(AIM3-RUC/MMIN@afeb523b86ec9ee6770ae19672b5718912ade1f8:models/mmin_model.py,
sangminwoo/ActionMAE@0b257bd682e696d6788fce63e9854e1bee12402c:lib/modeling/actionmae.py)
implements the architectures named above, which this file does not follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.moddrop import drop_mask
from rambench.batch import Batch, mask_absent
from rambench.methods import Method, MethodContext, methods
from rambench.models.fusion import ConcatFusion


@dataclass
class ReconstructParams:
    p: float = 0.3  # training-time drop probability per modality per sample
    lam: float = 1.0  # weight of the reconstruction MSE
    hidden: int = 256  # width of each reconstruction MLP
    stopgrad: bool = True  # detach the target features in the MSE

    def __post_init__(self) -> None:
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"reconstruct.p must lie in [0, 1); got {self.p}")
        if self.lam < 0 or self.hidden < 1:
            raise ValueError("reconstruct.lam must be >= 0 and reconstruct.hidden >= 1")


@methods.register("reconstruct")
class Reconstruct(Method):
    """Cross-modal feature imagination (MMIN / ActionMAE style) fills absent modalities."""

    family = "imputation"
    citation = ("Zhao et al., Missing Modality Imagination Network, ACL 2021; Woo et al., "
                "ActionMAE, AAAI 2023")
    Params = ReconstructParams

    def __init__(self, ctx: MethodContext, params: ReconstructParams | None = None):
        if len(ctx.modalities) < 2:
            raise ValueError("reconstruct needs at least two modalities")
        super().__init__(ctx, params)
        d, h, k = ctx.feature_dim, self.params.hidden, len(ctx.modalities) - 1
        self.imagine = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(k * (d + 1), h), nn.ReLU(), nn.Linear(h, d))
            for m in ctx.modalities
        })
        self.fusion = ConcatFusion(ctx.modalities, d, ctx.num_classes)

    def reconstruct(self, z: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality m -> z^_m (B, d), predicted from the other modalities' present features."""
        zm = mask_absent(z, present)
        flags = {m: present[m].to(f.dtype).unsqueeze(1) for m, f in zm.items()}
        rec = {}
        for m in self.ctx.modalities:
            source = [torch.cat([zm[o], flags[o]], 1) for o in self.ctx.modalities if o != m]
            rec[m] = self.imagine[m](torch.cat(source, 1))
        return rec

    @staticmethod
    def fill(z: dict[str, Tensor], rec: dict[str, Tensor], present: dict[str, Tensor]
             ) -> dict[str, Tensor]:
        """The real feature where a modality is present, its reconstruction where absent."""
        return {m: torch.where(present[m].unsqueeze(1), z[m], rec[m]) for m in z}

    def logits(self, z: dict[str, Tensor], present: dict[str, Tensor]
               ) -> tuple[Tensor, dict[str, Tensor]]:
        rec = self.reconstruct(z, present)
        filled = self.fill(z, rec, present)
        everywhere = {m: torch.ones_like(v) for m, v in present.items()}
        return self.fusion(filled, everywhere), rec

    def forward(self, batch: Batch) -> Tensor:
        return self.logits(self.encode(batch), batch.present)[0]

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        p = self.params
        z = self.encode(batch)
        drop = drop_mask(batch.present, p.p)
        kept = {m: batch.present[m] & ~drop[m] for m in z}
        logits, rec = self.logits(z, kept)
        out = {"ce": F.cross_entropy(logits, batch.y)}
        terms = []
        for m in self.ctx.modalities:
            has_source = torch.stack([kept[o] for o in z if o != m], 1).any(dim=1)
            rows = batch.present[m] & has_source
            if rows.any():
                target = z[m].detach() if p.stopgrad else z[m]
                terms.append(F.mse_loss(rec[m][rows], target[rows]))
        out["mse"] = torch.stack(terms).mean() if terms else logits.new_zeros(())
        out["loss"] = out["ce"] + p.lam * out["mse"]
        return out
