"""TMC: Trusted Multi-view Classification.

Z. Han, C. Zhang, H. Fu, J. T. Zhou, "Trusted Multi-View Classification", ICLR 2021.
Follows the authors' code for the RGB-D setting,
hanmenghan/TMC@08d0ca4c4461b6de1cf73514d8c621598bc2b504:ETMC TPAMI/models/TMC.py
(KL lines 8-17, ce_loss lines 19-28, DS_Combin_two lines 55-91, forward lines 93-108) with the
training step of ETMC TPAMI/train_TMC_nyud2.py (model_forward lines 51-60, annealing_epoch
= 10 at line 37). The same repository's "TMC ICLR/model.py" has the same loss and
combination (it averages the summed per-sample loss instead of summing per-view means,
equal with every modality present) but a 1-based epoch counter and lambda_epochs = 50.

Each modality m has an evidential head on its feature z_m: evidence e_m = softplus(W_m z_m +
c_m) >= 0 (TMC.py lines 106-107), a Dirichlet alpha_m = e_m + 1 with strength S_m = sum_k
alpha_mk, and the subjective-logic opinion b_m = e_m / S_m (belief per class), u_m = K / S_m
(uncertainty), sum_k b_mk + u_m = 1. Two opinions are fused with the reduced Dempster-Shafer
rule

    C = sum_{i != j} b1_i b2_j,   b = (b1 b2 + b1 u2 + b2 u1) / (1 - C),   u = u1 u2 / (1 - C),

folded left over the modalities (the rule is associative and commutative, so the order does
not matter). The fused opinion is turned back into a Dirichlet with S = K / u, alpha = b S + 1.

Loss, summed over the opinions o in {each modality, the combination}, each averaged over the
batch:

    L(alpha) = sum_j y_j (psi(S) - psi(alpha_j)) + lambda_t KL(Dir(alpha~) || Dir(1)),
    alpha~ = y + (1 - y) * alpha,   lambda_t = min(1, t / annealing_epochs),

with psi the digamma function and t the 0-based epoch (as i_epoch in train_TMC_nyud2.py),
set by the harness via start_epoch.

Hyper-parameters (defaults): annealing_epochs = 10 (the reference's --annealing_epoch; the
KL weight is 0 in the first epoch and reaches 1 at epoch 10; 0 means a constant weight of 1).

Missing modalities (not in the reference): an absent modality contributes the vacuous
opinion (e = 0, so b = 0 and u = 1), which is the identity of the combination rule, so its
input cannot influence the fused opinion; its own loss term averages over the samples where
it is present only. A sample with every modality absent gets the vacuous fused Dirichlet
alpha = 1 (uniform).

Prediction: forward returns log(alpha) of the fused Dirichlet. Its softmax is exactly the
expected class probability alpha / S, and its argmax is the argmax of the fused belief and
of the fused evidence the reference's evaluation uses (alpha_k = b_k S + 1 with one S per
sample).

Remaining deviations:
- the per-view networks are the benchmark's encoders plus one linear evidence layer each
  (the reference: ImageNet-pretrained ResNet-18s plus optional hidden layers, --hidden
  empty by default, i.e. also one Linear), trained with the harness's optimiser (the
  reference: Adam lr 1e-4, weight decay 1e-5);
- the Dirichlet arithmetic runs in float32 even under bf16 autocast (digamma and log-gamma
  of large arguments are too coarse in bf16).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods


@dataclass
class TMCParams:
    annealing_epochs: int = 10  # lambda_t = min(1, epoch / annealing_epochs)

    def __post_init__(self) -> None:
        if self.annealing_epochs < 0:
            raise ValueError("tmc.annealing_epochs must be >= 0")


def opinion(evidence: Tensor) -> tuple[Tensor, Tensor]:
    """Subjective-logic opinion of non-negative evidence (B, K): belief (B, K), uncertainty
    (B, 1), with S = sum(evidence) + K, b = e / S, u = K / S."""
    k = evidence.shape[1]
    s = evidence.sum(dim=1, keepdim=True) + k
    return evidence / s, k / s


def combine(b1: Tensor, u1: Tensor, b2: Tensor, u2: Tensor) -> tuple[Tensor, Tensor]:
    """Reduced Dempster-Shafer combination of two opinions (b (B, K), u (B, 1))."""
    # conflict C = sum_{i != j} b1_i b2_j = sum_i b1_i * sum_j b2_j - sum_i b1_i b2_i
    conflict = b1.sum(1, keepdim=True) * b2.sum(1, keepdim=True) - (b1 * b2).sum(1, keepdim=True)
    scale = 1.0 / (1.0 - conflict)
    return (b1 * b2 + b1 * u2 + b2 * u1) * scale, u1 * u2 * scale


def to_alpha(b: Tensor, u: Tensor) -> Tensor:
    """Dirichlet parameters of an opinion: S = K / u, alpha = b S + 1."""
    return b * (b.shape[1] / u) + 1.0


def combine_evidence(evidences: list[Tensor]) -> Tensor:
    """Fused Dirichlet alpha (B, K) of several modalities' evidence by folding `combine`."""
    b, u = opinion(evidences[0])
    for e in evidences[1:]:
        b, u = combine(b, u, *opinion(e))
    return to_alpha(b, u)


def evidential_loss(alpha: Tensor, y: Tensor, kl_weight: float) -> Tensor:
    """Per-sample loss (B,): sum_j y_j (psi(S) - psi(alpha_j)) + kl_weight KL(Dir(a~)||Dir(1))."""
    k = alpha.shape[1]
    onehot = F.one_hot(y, k).to(alpha.dtype)
    s = alpha.sum(dim=1)
    expected_ce = torch.digamma(s) - torch.digamma(alpha.gather(1, y.unsqueeze(1)).squeeze(1))
    if kl_weight == 0:
        return expected_ce
    a = onehot + (1 - onehot) * alpha
    sa = a.sum(dim=1)
    # KL(Dir(a) || Dir(1))
    #   = lnG(sum a) - lnG(K) - sum lnG(a_k) + sum (a_k - 1)(psi(a_k) - psi(sum a))
    kl = (
        torch.lgamma(sa)
        - torch.lgamma(torch.tensor(float(k), dtype=a.dtype, device=a.device))
        - torch.lgamma(a).sum(dim=1)
        + ((a - 1) * (torch.digamma(a) - torch.digamma(sa).unsqueeze(1))).sum(dim=1)
    )
    return expected_ce + kl_weight * kl


@methods.register("tmc")
class TMC(Method):
    """TMC (Han et al., ICLR 2021): evidential heads fused by Dempster-Shafer combination."""

    family = "uncertainty"
    citation = "Han et al., Trusted Multi-View Classification, ICLR 2021"
    reference = ("hanmenghan/TMC@08d0ca4c4461b6de1cf73514d8c621598bc2b504:"
                 "ETMC TPAMI/models/TMC.py")
    Params = TMCParams

    def __init__(self, ctx: MethodContext, params: TMCParams | None = None):
        super().__init__(ctx, params)
        self.heads = nn.ModuleDict(
            {m: nn.Linear(ctx.feature_dim, ctx.num_classes) for m in ctx.modalities}
        )
        self.kl_weight = 0.0 if self.params.annealing_epochs > 0 else 1.0

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        t = self.params.annealing_epochs
        self.kl_weight = min(1.0, epoch / t) if t > 0 else 1.0

    def evidence(self, batch: Batch) -> dict[str, Tensor]:
        """Per-modality evidence (B, K) in float32; zero (vacuous) where a modality is absent."""
        z = self.encode(batch)
        return self.mask_absent(
            {m: F.softplus(self.heads[m](z[m]).float()) for m in self.ctx.modalities}, batch)

    def fused_alpha(self, evidence: dict[str, Tensor]) -> Tensor:
        return combine_evidence([evidence[m] for m in self.ctx.modalities])

    def forward(self, batch: Batch) -> Tensor:
        return self.fused_alpha(self.evidence(batch)).log()

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        evidence = self.evidence(batch)
        alpha = self.fused_alpha(evidence)
        combined = evidential_loss(alpha, batch.y, self.kl_weight).mean()
        views = combined.new_zeros(())
        for m in self.ctx.modalities:
            keep = batch.present[m]
            if keep.any():
                view_alpha = evidence[m][keep] + 1.0
                views = views + evidential_loss(view_alpha, batch.y[keep], self.kl_weight).mean()
        return {"views": views, "combined": combined, "loss": views + combined}
