"""PDF: Predictive Dynamic Fusion (reimplementation from the paper).

B. Cao, Y. Xia, Y. Ding, C. Zhang, Q. Hu, "Predictive Dynamic Fusion", ICML 2024
(arXiv:2406.04802).

Each modality m has a linear classifier f_m on its feature z_m, with softmax p_m, and a small
confidence predictor g_m (MLP, sigmoid output) on the detached feature that regresses the
true-class probability TCP_m = p_m[y] (detached target) with a squared error. From the
predicted TCPs p^_m (clamped to [eps, 1 - eps]) the Collaborative Belief of modality m is

    Mono-Confidence   w_mono_m = p^_m
    Holo-Confidence   w_holo_m = log(prod_{j != m} p^_j) / log(prod_j p^_j)
                               = sum_{j != m} l_j / sum_j l_j,     l_j = -log p^_j
    Co-Belief         w_m = w_mono_m + w_holo_m

(the product and sums run over the modalities present for the sample). A modality's Co-Belief
grows with its own predicted confidence and with the other modalities' predicted losses.

Relative calibration (test time): with the distribution uniformity DU_m = sum_k |p_mk - 1/K|
(distance of p_m from the uniform distribution; low = uncertain), RC_m = DU_m / mean_{j != m}
DU_j, and the calibrated Co-Belief is w_m * min(1, RC_m): a modality whose prediction is less
certain than the others' gets its Co-Belief shrunk, a more certain one keeps it.

Fusion weights are the softmax of the (calibrated) Co-Beliefs over the present modalities;
the prediction is the weighted sum of logits  f = sum_m W_m f_m  (W_m = 0 where m is absent).

Loss:  CE(f, y) + sum_m CE(f_m, y) + sum_m mean (g_m(stopgrad z_m) - stopgrad p_m[y])^2.

Hyper-parameters (defaults): tcp_hidden = 64 (width of g_m), eps = 1e-6,
relative_calibration = True (applied in eval mode, i.e. at test time only, as in the paper).

Missing modalities: an absent modality is left out of the Holo-Confidence products, the
relative calibration and the softmax (weight exactly 0), so its input cannot influence the
prediction; its unimodal losses use the samples where it is present only. With one present
modality its weight is 1 (Holo-Confidence 0, no calibration).

Deviations and points I am not sure of (reconstructed from the paper as I remember it):
- the Co-Belief is fused at the decision level (weighted logits), as in QMF on which PDF
  builds; the authors' image-text models may fuse elsewhere;
- the Co-Beliefs are detached in the fusion: g_m is trained only by its TCP regression (its
  input is already detached in the paper, so the fusion loss would otherwise train g_m toward
  whatever weight minimises the fused CE, not toward the TCP);
- softmax normalisation of the Co-Beliefs and the min(1, RC) calibration form are my
  recollection of the paper; for more than two modalities RC compares with the mean DU of the
  other present modalities (the paper states the two-modality ratio);
- the TCP predictor is a 2-layer MLP (hidden 64); the paper's predictor size is dataset-specific.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods


@dataclass
class PDFParams:
    tcp_hidden: int = 64  # width of the TCP predictor
    eps: float = 1e-6  # predicted TCPs are clamped to [eps, 1 - eps]
    relative_calibration: bool = True  # rescale Co-Beliefs by min(1, RC) at test time

    def __post_init__(self) -> None:
        if not 0 < self.eps < 0.5:
            raise ValueError("pdf.eps must lie in (0, 0.5)")


def co_belief(tcp: Tensor, present: Tensor, eps: float = 1e-6) -> Tensor:
    """Co-Belief (B, M) = Mono + Holo from predicted TCPs (B, M); present bool (B, M).

    Absent entries are 0 and do not enter the other modalities' Holo-Confidence."""
    tcp = tcp.clamp(eps, 1 - eps)
    mask = present.to(tcp.dtype)
    losses = -torch.log(tcp) * mask  # l_j = -log p^_j, 0 for absent modalities
    total = losses.sum(dim=1, keepdim=True)
    holo = (total - losses) / total.clamp(min=1e-12)
    return (tcp + holo) * mask


def distribution_uniformity(probs: Tensor) -> Tensor:
    """DU (B,) = sum_k |p_k - 1/K|: 0 for the uniform distribution."""
    return (probs - 1.0 / probs.shape[1]).abs().sum(dim=1)


def relative_calibration(du: Tensor, present: Tensor) -> Tensor:
    """Calibration factors (B, M) = min(1, RC_m), RC_m = DU_m / mean_{j != m, present} DU_j.

    1 where a modality is absent or no other modality is present."""
    mask = present.to(du.dtype)
    du = du * mask
    others = mask.sum(dim=1, keepdim=True) - mask
    mean_others = (du.sum(dim=1, keepdim=True) - du) / others.clamp(min=1)
    rc = du / mean_others.clamp(min=1e-12)
    return torch.where(present & (others > 0), rc.clamp(max=1.0), torch.ones_like(rc))


def fusion_weights(belief: Tensor, present: Tensor) -> Tensor:
    """Softmax of the Co-Beliefs over the present modalities; 0 where absent (all 0 if none)."""
    masked = belief.masked_fill(~present, float("-inf"))
    weights = torch.softmax(masked, dim=1)
    return torch.nan_to_num(weights, nan=0.0)


@methods.register("pdf")
class PDF(Method):
    """PDF (Cao et al., ICML 2024): logits weighted by predicted Co-Belief, relative calibration."""

    family = "uncertainty"
    citation = "Cao et al., Predictive Dynamic Fusion, ICML 2024"
    Params = PDFParams

    def __init__(self, ctx: MethodContext, params: PDFParams | None = None):
        super().__init__(ctx, params)
        d, c, h = ctx.feature_dim, ctx.num_classes, self.params.tcp_hidden
        self.heads = nn.ModuleDict({m: nn.Linear(d, c) for m in ctx.modalities})
        self.tcp = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 1), nn.Sigmoid())
            for m in ctx.modalities
        })

    def unimodal(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Per-modality logits and predicted TCP (B,) from the detached features."""
        z = self.encode(batch)
        logits = {m: self.heads[m](z[m]) for m in self.ctx.modalities}
        tcp = {m: self.tcp[m](z[m].detach()).squeeze(1).float() for m in self.ctx.modalities}
        return logits, tcp

    def weights(self, logits: dict[str, Tensor], tcp: dict[str, Tensor], present: dict[str, Tensor],
                calibrate: bool) -> Tensor:
        """Fusion weights (B, M), detached."""
        mods = self.ctx.modalities
        mask = torch.stack([present[m] for m in mods], dim=1)
        with torch.no_grad():
            belief = co_belief(torch.stack([tcp[m] for m in mods], dim=1), mask, self.params.eps)
            if calibrate:
                du = torch.stack(
                    [distribution_uniformity(logits[m].float().softmax(dim=1)) for m in mods], 1
                )
                belief = belief * relative_calibration(du, mask)
            return fusion_weights(belief, mask)

    def fuse(self, logits: dict[str, Tensor], weights: Tensor) -> Tensor:
        return sum(weights[:, i:i + 1].to(logits[m].dtype) * logits[m]
                   for i, m in enumerate(self.ctx.modalities))

    def forward(self, batch: Batch) -> Tensor:
        logits, tcp = self.unimodal(batch)
        calibrate = self.params.relative_calibration and not self.training
        return self.fuse(logits, self.weights(logits, tcp, batch.present, calibrate))

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        logits, tcp = self.unimodal(batch)
        fused = self.fuse(logits, self.weights(logits, tcp, batch.present, calibrate=False))
        out = {"ce": F.cross_entropy(fused, batch.y)}
        unimodal = regression = out["ce"].new_zeros(())
        for m in self.ctx.modalities:
            keep = batch.present[m]
            if not keep.any():
                continue
            unimodal = unimodal + F.cross_entropy(logits[m][keep], batch.y[keep])
            with torch.no_grad():
                target = logits[m].float().softmax(dim=1).gather(1, batch.y.unsqueeze(1))
            regression = regression + F.mse_loss(tcp[m][keep], target.squeeze(1)[keep])
        out["unimodal"], out["tcp"] = unimodal, regression
        out["loss"] = out["ce"] + unimodal + regression
        return out
