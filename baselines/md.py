"""MD: Multimodal Dynamics.

Z. Han, F. Yang, J. Huang, C. Zhang, J. Yao, "Multimodal Dynamics: Dynamical Fusion for
Trustworthy Multimodal Classification", CVPR 2022. Follows the authors' code,
TencentAILabHealthcare/mmdynamics@06a2bb8a66953be77c53e6a027bc04193c5bdca4:model.py
(LinearLayer with Xavier-normal weights and zero biases lines 7-21, MMDynamic layers lines
30-44, forward lines 50-61, loss lines 64-70) with the settings of train_test.py at the same
commit (hidden_dim = [1000] lines 93 and 99, dropout = 0.5 line 111, Adam line 113).

Each modality m has, on its feature z_m (B, d):

    feature informativeness  w_m = sigmoid(G_m z_m + g_m)              (B, d)   line 51
    gated feature            x_m = z_m * w_m                                    line 52
    hidden feature           h_m = dropout(relu(E_m x_m + e_m))        (B, H)   lines 53-55
    unimodal logits          f_m = C_m h_m + c_m                       (B, K)   line 56
    TCP confidence           t_m = T_m h_m + t0_m                      (B,)     line 57

(t_m is the raw output of a Linear layer: no sigmoid, so it is not bounded to [0, 1]). The
fused prediction concatenates the confidence-weighted hidden features (lines 58-61)

    f = W [t_1 h_1; ...; t_M h_M] + b,

W a single Linear layer (MMClasifier with hidden_dim of length 1, lines 35-44). Loss
(lines 64-70), every term a batch mean and every weight 1:

    L = CE(f, y) + sum_m [ mean_{i,j} w_m[i, j] + mean_i (t_m[i] - p_m[i, y_i])^2
                           + mean_i CE(f_m[i], y_i) ],     p_m = softmax(f_m),

i.e. the fused cross-entropy, the feature-sparsity term (the L1 norm of the positive gate,
divided by B d: torch.mean at line 66), the TCP regression (MSE against the true-class
probability, lines 67-69) and the unimodal cross-entropy (line 69). The reference detaches
nothing: the TCP target p_m[y] is not detached (lines 67-68), so the regression also trains
the unimodal classifier and the hidden layer through the target, and the fused
cross-entropy trains the confidence layer through the weighting t_m h_m (line 58).

Hyper-parameters (defaults = the reference, but one): hidden = 1000 (H), dropout = 0.5,
confidence_weight = unimodal_weight = 1 (the weights of two per-modality terms),
detach_target = False, and sparsity_weight = 0.1 where the reference has 1 (see below).

Switch (not in the reference): detach_target = True stops the gradient of the TCP target, as
in ConfidNet (Corbiere et al., NeurIPS 2019), whose TCP criterion MD adopts: the regression
then trains only the confidence layer and what lies below h_m.

Missing modalities (not in the reference): an absent modality gets confidence t_m = 0 and its
block t_m h_m of the concatenation is 0 (`mask_absent`, which replaces rows, so non-finite
values of an absent input give 0 too), so its input cannot influence the prediction. Its
sparsity, TCP and unimodal terms average over the samples where it is present only (no term
if it is absent from the whole batch); the fused cross-entropy averages over every sample.

Remaining deviations:
- sparsity_weight = 0.1 by default (the reference: 1). On raw omics vectors the penalty can
  only close the gates of uninformative inputs; on features that an encoder learns at the
  same time it closes every gate before any feature is informative (the gates' mean falls
  to 0.01 in 4 epochs on avdigits), and learning stalls: clean validation accuracy on
  avdigits (30 epochs, seeds 0-2, results/md-sparsity-avdigits) 70.2 +- 4.1 % at weight 1,
  92.4 +- 1.1 % at 0.1, 92.7 +- 2.2 % at 0.01, 91.9 +- 1.5 % at 0. 0.1 is the largest
  weight within noise of the best: the most of the reference's pressure that still trains;
  md[sparsity_weight=1] is the reference's setting;
- the informativeness gate and everything above it sit on rambench's encoder output z_m (the
  feature width d, `train.feature_dim`), not on the raw omics vectors (the reference's
  in_dim, e.g. 1000, 1000 and 503 features for BRCA): the gate is a d x d layer on learned
  features, and the encoders below it are trained jointly through the gate;
- the modality count M is arbitrary (the reference reads exactly its three omics views);
- the fused classifier is one Linear layer: the reference's deeper MMClasifier (hidden_dim
  with more than one entry, Linear-ReLU-Dropout blocks, lines 36-41) is not offered, as
  train_test.py never uses it; hidden is one width shared by every modality, as there;
- MD's own layers get the reference's Xavier-normal weights and zero biases; the encoders keep
  rambench's initialisation;
- the harness owns the optimiser, its schedule and the mini-batches (the reference: Adam lr
  1e-4, weight decay 1e-4, StepLR step 500 gamma 0.2, the whole training set as one batch for
  2500 (BRCA) or 1000 (ROSMAP) epochs, train_test.py lines 92-114 and 128-130);
- the losses are computed in float32 (also under bf16 autocast).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods
from rambench.params import param


@dataclass
class MDParams:
    hidden: int = param(1000, ge=1)  # H, width of h_m (train_test.py hidden_dim = [1000])
    dropout: float = param(0.5, ge=0)  # dropout on h_m (train_test.py line 111)
    # weight of mean(w_m) (model.py line 66: 1; 0.1 here, see the deviations)
    sparsity_weight: float = param(0.1, ge=0)
    confidence_weight: float = param(1.0, ge=0)  # weight of the TCP MSE (model.py line 69)
    unimodal_weight: float = param(1.0, ge=0)  # weight of CE(f_m, y) (model.py line 69)
    detach_target: bool = False  # stop the gradient of the TCP target (not in the reference)

    def __post_init__(self) -> None:
        if not 0 <= self.dropout < 1:
            raise ValueError("md.dropout must lie in [0, 1)")


class MDOutputs(NamedTuple):
    """What one pass computes: per-modality gates w_m (B, d), logits f_m (B, K), TCP
    confidences t_m (B,) (0 where absent), and the fused logits f (B, K)."""

    gates: dict[str, Tensor]
    logits: dict[str, Tensor]
    confidence: dict[str, Tensor]
    fused: Tensor


def xavier_linear(d_in: int, d_out: int) -> nn.Linear:
    """A Linear layer initialised as the reference's LinearLayer: Xavier-normal, zero bias."""
    layer = nn.Linear(d_in, d_out)
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def true_class_probability(logits: Tensor, y: Tensor) -> Tensor:
    """TCP (B,): softmax(logits)[i, y_i]."""
    return logits.softmax(dim=1).gather(1, y.unsqueeze(1)).squeeze(1)


@methods.register("md")
class MD(Method):
    """MD (Han et al., CVPR 2022): sparse feature gates, TCP-confidence-weighted concat fusion."""

    family = "dynamic fusion"
    citation = ("Han et al., Multimodal Dynamics: Dynamical Fusion for Trustworthy "
                "Multimodal Classification, CVPR 2022")
    reference = ("TencentAILabHealthcare/mmdynamics@06a2bb8a66953be77c53e6a027bc04193c5bdca4:"
                 "model.py")
    Params = MDParams

    def __init__(self, ctx: MethodContext, params: MDParams | None = None):
        super().__init__(ctx, params)
        d, h, c = ctx.feature_dim, self.params.hidden, ctx.num_classes
        mods = ctx.modalities
        self.gates = nn.ModuleDict({m: xavier_linear(d, d) for m in mods})  # FeatureInforEncoder
        self.hidden = nn.ModuleDict({m: xavier_linear(d, h) for m in mods})  # FeatureEncoder
        self.heads = nn.ModuleDict({m: xavier_linear(h, c) for m in mods})  # TCPClassifierLayer
        self.tcp = nn.ModuleDict({m: xavier_linear(h, 1) for m in mods})  # TCPConfidenceLayer
        self.classifier = xavier_linear(len(mods) * h, c)  # MMClasifier
        self.dropout = nn.Dropout(self.params.dropout)

    def outputs(self, batch: Batch) -> MDOutputs:
        """Gates, unimodal logits, confidences and fused logits of a batch."""
        z = self.encode(batch)
        gates, logits, confidence, hidden = {}, {}, {}, {}
        for m in self.ctx.modalities:
            gates[m] = torch.sigmoid(self.gates[m](z[m]))
            hidden[m] = self.dropout(F.relu(self.hidden[m](z[m] * gates[m])))
            logits[m] = self.heads[m](hidden[m])
            confidence[m] = self.tcp[m](hidden[m]).squeeze(1)
        confidence = self.mask_absent(confidence, batch)  # absent: weight 0
        weighted = self.mask_absent(
            {m: hidden[m] * confidence[m].unsqueeze(1) for m in self.ctx.modalities}, batch)
        fused = self.classifier(torch.cat([weighted[m] for m in self.ctx.modalities], dim=1))
        return MDOutputs(gates, logits, confidence, fused)

    def forward(self, batch: Batch) -> Tensor:
        return self.outputs(batch).fused

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        out = self.outputs(batch)
        p = self.params
        ce = F.cross_entropy(out.fused.float(), batch.y)
        sparsity = confidence = unimodal = ce.new_zeros(())
        for m in self.ctx.modalities:
            keep = batch.present[m]
            if not keep.any():
                continue
            y = batch.y[keep]
            logits = out.logits[m][keep].float()
            target = true_class_probability(logits, y)
            if p.detach_target:
                target = target.detach()
            sparsity = sparsity + out.gates[m][keep].float().mean()
            confidence = confidence + F.mse_loss(out.confidence[m][keep].float(), target)
            unimodal = unimodal + F.cross_entropy(logits, y)
        loss = (ce + p.sparsity_weight * sparsity + p.confidence_weight * confidence
                + p.unimodal_weight * unimodal)
        return {"ce": ce, "sparsity": sparsity, "confidence": confidence, "unimodal": unimodal,
                "loss": loss}
