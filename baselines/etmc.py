"""ETMC: Enhanced Trusted Multi-view Classification.

Z. Han, C. Zhang, H. Fu, J. T. Zhou, "Trusted Multi-View Classification With Dynamic
Evidential Fusion", IEEE TPAMI 45(2), 2023 (online 2022). Follows the authors' code for the
RGB-D setting,
hanmenghan/TMC@08d0ca4c4461b6de1cf73514d8c621598bc2b504:ETMC TPAMI/models/TMC.py
(class ETMC lines 111-142: the pseudo-view classifier lines 114-121, forward lines 123-142;
inherited from TMC: KL lines 8-17, ce_loss lines 19-28, DS_Combin_two lines 55-91), with the
training step of ETMC TPAMI/train_ETMC_nyud2.py (model_forward lines 51-61, annealing_epoch
= 10 at line 37, the 0-based epoch i_epoch of the loop at line 137). train_ETMC_sunrgbd.py
has the same model_forward (lines 51-61) and annealing_epoch (line 37). This is TMC
(`baselines.tmc`, the same pin) plus one more view; the opinion, combination and loss
functions are those of `baselines.tmc`.

Views. Each modality m has an evidential head on its feature z_m, e_m = softplus(W_m z_m +
c_m) (TMC.py lines 128-133, 139). The pseudo view is one more evidential head on the
concatenation of the modalities' features (TMC.py lines 135-137, 139):

    e_p = softplus(W_p [z_1; ...; z_M] + c_p),

each turned into a Dirichlet alpha = e + 1 (line 140) and an opinion b = e / S, u = K / S
(S = sum_k alpha_k; DS_Combin_two lines 60-64). The reference concatenates [rgb, depth];
here the features are concatenated in the context's modality order.

Combination (TMC.py line 141): the reduced Dempster-Shafer rule of TMC,

    C = sum_{i != j} b1_i b2_j,   b = (b1 b2 + b1 u2 + b2 u1) / (1 - C),   u = u1 u2 / (1 - C),

applied as ((depth + rgb) + pseudo): the modalities first, the pseudo view last. Here the
fold is (((z_1 + z_2) + ...) + z_M) + pseudo, in modality order; the rule is associative
and commutative, so the order changes float rounding only. The fused opinion becomes the
Dirichlet S = K / u, alpha = b S + 1.

Loss (train_ETMC_nyud2.py lines 57-60): the evidential loss of TMC summed over the M
modality views, the pseudo view and the combination, each averaged over the batch (ce_loss
line 28 takes the mean):

    L(alpha) = sum_j y_j (psi(S) - psi(alpha_j)) + lambda_t KL(Dir(alpha~) || Dir(1)),
    alpha~ = y + (1 - y) * alpha,   lambda_t = min(1, t / annealing_epochs)   (line 25),

    loss = sum_m mean L(alpha_m) + mean L(alpha_p) + mean L(alpha_fused),

with psi the digamma function and t the 0-based epoch (i_epoch, line 137), set by the
harness via start_epoch exactly as in TMC. There is no stop-gradient anywhere in the
reference: the pseudo view's head reads the encoders' features as they are (line 135), so
the pseudo and fused losses train every encoder, and the fused loss trains every head.

Hyper-parameters (defaults): annealing_epochs = 10 (the reference's --annealing_epoch,
train_ETMC_nyud2.py line 37; the KL weight is 0 in the first epoch and reaches 1 at epoch
10; 0 means a constant weight of 1).

Missing modalities (not in the reference; TMC's convention): an absent modality's feature
is set to 0 (`mask_absent`) and its evidence to 0, i.e. the vacuous opinion (b = 0, u = 1),
the identity of the combination rule; its own loss term averages over the samples where it
is present only. The pseudo view is a view of the JOINT input, so it exists only for a
sample with every modality present: for any other sample its evidence is 0 (vacuous), and
its loss term averages over the complete samples only (0 if there are none). The other
choice, a pseudo view on the zero-filled concatenation, would also ignore the absent
input's values, but it would put evidence into the fused opinion that no observed input
backs: the pseudo head's bias and its response to the zero block, on an input it is never
trained on when training data are complete (and, for a sample with every modality absent,
non-vacuous evidence from no input at all). With the vacuous pseudo view, the fused opinion
of a partial sample is exactly TMC's combination of its present modalities, and a sample
with every modality absent gets alpha = 1 (uniform).

Prediction: forward returns log(alpha) of the fused Dirichlet (the modality views and the
pseudo view combined). Its softmax is the expected class probability alpha / S, and its
argmax is that of the fused alpha the reference evaluates (train_ETMC_nyud2.py line 74).

Remaining deviations:
- the per-view networks are the benchmark's encoders plus one linear evidence layer each,
  and the pseudo view one linear layer on their concatenation (the reference:
  ImageNet-pretrained ResNet-18s, flattened, plus optional hidden layers with ReLU and
  dropout; --hidden is empty by default, i.e. also one Linear per view and for the pseudo
  view), trained with the harness's optimiser and schedule (the reference: Adam lr 1e-4,
  weight decay 1e-5, batch 32, gradient accumulation over 3 batches with the loss divided
  by 3, ReduceLROnPlateau on the validation accuracy, early stopping after 20 epochs
  without improvement; train_ETMC_nyud2.py lines 15-48 and 137-189);
- more than two modalities: the reference has exactly two (rgb, depth); here every
  modality is a view, the pseudo view reads all of them, and the fold runs over all;
- the Dirichlet arithmetic runs in float32 even under bf16 autocast (as in TMC).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.tmc import combine_evidence, evidential_loss
from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods


@dataclass
class ETMCParams:
    annealing_epochs: int = 10  # lambda_t = min(1, epoch / annealing_epochs)

    def __post_init__(self) -> None:
        if self.annealing_epochs < 0:
            raise ValueError("etmc.annealing_epochs must be >= 0")


@methods.register("etmc")
class ETMC(Method):
    """ETMC (Han et al., TPAMI 2022): TMC plus a pseudo view on the concatenated features."""

    family = "dynamic fusion"
    citation = ("Han et al., Trusted Multi-View Classification With Dynamic Evidential "
                "Fusion, TPAMI 2022")
    reference = ("hanmenghan/TMC@08d0ca4c4461b6de1cf73514d8c621598bc2b504:"
                 "ETMC TPAMI/models/TMC.py")
    Params = ETMCParams

    def __init__(self, ctx: MethodContext, params: ETMCParams | None = None):
        super().__init__(ctx, params)
        self.heads = nn.ModuleDict(
            {m: nn.Linear(ctx.feature_dim, ctx.num_classes) for m in ctx.modalities}
        )
        self.pseudo_head = nn.Linear(len(ctx.modalities) * ctx.feature_dim, ctx.num_classes)
        self.kl_weight = 0.0 if self.params.annealing_epochs > 0 else 1.0

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        t = self.params.annealing_epochs
        self.kl_weight = min(1.0, epoch / t) if t > 0 else 1.0

    def complete(self, batch: Batch) -> Tensor:
        """bool (B,): the samples with every modality present (those with a pseudo view)."""
        return torch.stack([batch.present[m].to(torch.bool)
                            for m in self.ctx.modalities]).all(dim=0)

    def evidence(self, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        """Per-modality evidence (B, K) and the pseudo view's evidence (B, K), in float32;
        zero (vacuous) where a modality is absent, and the pseudo view's zero for every sample
        with an absent modality."""
        z = self.mask_absent(self.encode(batch), batch)
        views = self.mask_absent(
            {m: F.softplus(self.heads[m](z[m]).float()) for m in self.ctx.modalities}, batch)
        joint = torch.cat([z[m] for m in self.ctx.modalities], dim=1)
        pseudo = F.softplus(self.pseudo_head(joint).float())
        keep = self.complete(batch).to(pseudo.device).unsqueeze(1)
        return views, torch.where(keep, pseudo, pseudo.new_zeros(()))

    def fused_alpha(self, views: dict[str, Tensor], pseudo: Tensor) -> Tensor:
        """The fused Dirichlet: the modalities folded in order, then the pseudo view."""
        return combine_evidence([views[m] for m in self.ctx.modalities] + [pseudo])

    def forward(self, batch: Batch) -> Tensor:
        return self.fused_alpha(*self.evidence(batch)).log()

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        views, pseudo = self.evidence(batch)
        combined = evidential_loss(self.fused_alpha(views, pseudo), batch.y,
                                   self.kl_weight).mean()
        view_loss = combined.new_zeros(())
        for m in self.ctx.modalities:
            keep = batch.present[m].to(device=batch.y.device, dtype=torch.bool)
            if keep.any():
                view_loss = view_loss + evidential_loss(
                    views[m][keep] + 1.0, batch.y[keep], self.kl_weight).mean()
        pseudo_loss = combined.new_zeros(())
        keep = self.complete(batch).to(batch.y.device)
        if keep.any():
            pseudo_loss = evidential_loss(pseudo[keep] + 1.0, batch.y[keep],
                                          self.kl_weight).mean()
        return {"views": view_loss, "pseudo": pseudo_loss, "combined": combined,
                "loss": view_loss + pseudo_loss + combined}
