"""PDF: Predictive Dynamic Fusion.

B. Cao, Y. Xia, Y. Ding, C. Zhang, Q. Hu, "Predictive Dynamic Fusion", ICML 2024
(arXiv:2406.04802). Follows the authors' code,
Yinan-Xia/PDF@864867426cde076fb3d0529d4df6b440d6963451:src/models/latefusion_pdf.py
(MultimodalLateFusionClf_pdf: predictors lines 24-35, training fusion 'pdf_train' lines
42-57, test fusion 'pdf_test' lines 59-81) with the loss of train_pdf.py
(model_forward, lines 174-214).

Each modality m has a linear classifier f_m on its feature z_m, with softmax p_m, and a
confidence predictor g_m on the detached feature (latefusion_pdf.py lines 43-46) that
regresses the true-class probability TCP_m = p_m[y] (detached target) with an L1 loss
(train_pdf.py lines 178-190). The reference predictor ("ConfidNet") is three Linear layers
without activations between them, d -> 2d -> d -> 1, then a sigmoid (lines 24-35). From the
predicted TCPs p^_m (clamped to [eps, 1 - eps]) the Collaborative Belief of modality m is

    Mono-Confidence   w_mono_m = p^_m
    Holo-Confidence   w_holo_m = log(prod_{j != m} p^_j) / (log(prod_j p^_j) + 1e-8)
                               = sum_{j != m} l_j / (sum_j l_j - 1e-8),   l_j = -log p^_j
    Co-Belief         w_m = w_mono_m + w_holo_m            (lines 47-50)

(products and sums over the modalities present for the sample).

Relative calibration (test time only, 'pdf_test', lines 66-74): with the distribution
uniformity DU_m = mean_k |p_mk - 1/K|, RC_m = DU_m / DU_other, and the calibrated Co-Belief
is w_m * min(1, RC_m) (the reference's torch.where on DU_txt > DU_img is exactly this min).

Fusion weights are the softmax of the (calibrated) Co-Beliefs, computed from detached
quantities; the prediction is the weighted sum of logits  f = sum_m W_m f_m  (lines 51-56,
75-80; W_m = 0 where m is absent).

Loss:  CE(f, y) + sum_m CE(f_m, y) + sum_m mean |g_m(stopgrad z_m) - stopgrad p_m[y]|
(train_pdf.py lines 190, 205-210).

Hyper-parameters (defaults): tcp_predictor = "reference", tcp_loss = "l1", eps = 1e-6,
relative_calibration = True (applied in eval mode, i.e. at test time only, as in the
reference), tcp_hidden = 64 (width of the "mlp" predictor only).

Switches back to rambench's previous form: tcp_loss = "mse" (squared error),
tcp_predictor = "mlp" (Linear(d, tcp_hidden) - ReLU - Linear(tcp_hidden, 1) - sigmoid) and
select_by = "calibrated" (the best epoch chosen by the calibrated test-time fusion).

Remaining deviations:
- missing modalities and M > 2 (not in the reference): an absent modality is left out of
  the Holo-Confidence sums, the relative calibration and the softmax (weight exactly 0), so
  its input cannot influence the prediction; its unimodal losses use the samples where it is
  present only; with one present modality its weight is 1. For more than two modalities RC
  compares with the mean DU of the other present modalities;
- predicted TCPs are clamped to [eps, 1 - eps] before the logarithms (the reference takes
  log of the raw sigmoid, which is -inf if it underflows); a Holo-Confidence whose
  denominator is not positive (only possible for eps < 5e-9) is set to 0;
- the reference applies (Adam's, coupled) weight decay, 1 in its shell scripts, to one weight
  matrix of each predictor only (train_pdf.py lines 102-110: ConfidNet_txt.0.weight and
  ConfidNet_img.1.weight); the harness owns the optimiser and decays all parameters alike;
- the reference's text and image encoders (BERT, ResNet-152 with 3 pooled embeddings) and
  their freezing schedule are replaced by the benchmark's encoders.

Model selection follows the reference: the best epoch is the one of best validation
accuracy of the training fusion, without relative calibration ('pdf_train': model_forward
line 179 serves model_eval, lines 120-124, in the loop at lines 255-266 of train_pdf.py);
the reference calibrates only in test_pdf.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods
from rambench.params import param

HOLO_EPS = 1e-8  # latefusion_pdf.py adds 1e-8 to the log of the product


@dataclass
class PDFParams:
    tcp_predictor: Literal["reference", "mlp"] = "reference"  # ConfidNet d-2d-d-1 | small MLP
    tcp_loss: Literal["l1", "mse"] = "l1"  # TCP regression loss
    tcp_hidden: int = param(64, ge=1)  # width of the "mlp" predictor
    eps: float = 1e-6  # predicted TCPs are clamped to [eps, 1 - eps]
    relative_calibration: bool = True  # rescale Co-Beliefs by min(1, RC) at test time
    # the fusion whose validation accuracy picks the best epoch: the reference's training
    # fusion, or the calibrated test-time fusion
    select_by: Literal["training_fusion", "calibrated"] = "training_fusion"

    def __post_init__(self) -> None:
        if not 0 < self.eps < 0.5:
            raise ValueError("pdf.eps must lie in (0, 0.5)")


def tcp_predictor(kind: str, dim: int, hidden: int) -> nn.Module:
    """The confidence predictor g_m: feature (B, dim) -> predicted TCP (B, 1) in (0, 1)."""
    if kind == "reference":  # ConfidNet of latefusion_pdf.py: no activation between layers
        return nn.Sequential(nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim),
                             nn.Linear(dim, 1), nn.Sigmoid())
    if kind == "mlp":
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1),
                             nn.Sigmoid())
    raise ValueError(f"unknown PDF predictor {kind!r}")


def co_belief(tcp: Tensor, present: Tensor, eps: float = 1e-6) -> Tensor:
    """Co-Belief (B, M) = Mono + Holo from predicted TCPs (B, M); present bool (B, M).

    Absent entries are 0 and do not enter the other modalities' Holo-Confidence."""
    tcp = tcp.clamp(eps, 1 - eps)
    mask = present.to(tcp.dtype)
    losses = -torch.log(tcp) * mask  # l_j = -log p^_j, 0 for absent modalities
    total = losses.sum(dim=1, keepdim=True)
    denominator = total - HOLO_EPS  # -(log prod_j p^_j + 1e-8)
    holo = torch.where(denominator > 0, (total - losses) / denominator.clamp(min=1e-12),
                       torch.zeros_like(losses))
    return (tcp + holo) * mask


def distribution_uniformity(probs: Tensor) -> Tensor:
    """DU (B,) = mean_k |p_k - 1/K|: 0 for the uniform distribution."""
    return (probs - 1.0 / probs.shape[1]).abs().mean(dim=1)


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
    reference = ("Yinan-Xia/PDF@864867426cde076fb3d0529d4df6b440d6963451:"
                 "src/models/latefusion_pdf.py")
    Params = PDFParams

    def __init__(self, ctx: MethodContext, params: PDFParams | None = None):
        super().__init__(ctx, params)
        d, c, h = ctx.feature_dim, ctx.num_classes, self.params.tcp_hidden
        self.heads = nn.ModuleDict({m: nn.Linear(d, c) for m in ctx.modalities})
        kind = self.params.tcp_predictor
        self.tcp = nn.ModuleDict({m: tcp_predictor(kind, d, h) for m in ctx.modalities})

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

    def validation_logits(self, batch: Batch) -> Tensor:
        logits, tcp = self.unimodal(batch)
        calibrate = self.params.relative_calibration and self.params.select_by == "calibrated"
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
            regress = F.l1_loss if self.params.tcp_loss == "l1" else F.mse_loss
            regression = regression + regress(tcp[m][keep], target.squeeze(1)[keep])
        out["unimodal"], out["tcp"] = unimodal, regression
        out["loss"] = out["ce"] + unimodal + regression
        return out
