"""ShaSpec: Shared-Specific Feature Modelling.

H. Wang, Y. Chen, C. Ma, J. Avery, L. Hull, G. Carneiro, "Multi-modal Learning with Missing
Modality via Shared-Specific Feature Modelling", CVPR 2023. Follows the authors' code,
billhhh/ShaSpec@081fe7a1e40d6bbc0736dc93e779a0a5a439d091:DualNet_SS.py (CompositionalLayer
lines 312-338, DualNet_SS.__init__ lines 341-363, forward lines 369-496), with the training
step of train_SS.py at the same commit (alpha = 0.1 line 25, beta = 0.02 line 26, the
distribution loss nn.L1Loss line 250, term_shared lines 285-288, the domain labels lines
294-298, term_spec line 299, the total line 301), loss_Dual.py DomainClsLoss (lines 244-252,
nn.CrossEntropyLoss with its mean reduction) and the schedule of run.sh (lines 9, 11, 34,
45-47).

rambench picks ShaSpec over MMANet (Wei et al., CVPR 2023) as its missing-modality imputation
baseline because ShaSpec trains in one stage: MMANet distils from a multimodal teacher
trained separately beforehand, which rambench's one-training-per-job pipeline cannot host.

Features. Each modality m has a specific feature z_m = E_m(x_m) (rambench's encoder, the
reference's flair_enc / t1_enc / t1ce_enc / t2_enc, lines 359-362 and 417-420) and a shared
feature s_m = P(H_m(x_m)): H_m a second encoder of modality m, P one Linear(d, d) applied to
every modality (the reference: ONE shared encoder, shared_enc, run on every modality,
lines 345 and 399-409; see the deviations). With the set A of the modalities available to a
sample, the fused feature of each modality is (lines 450-466)

    f_m = s_m + C [s_m; z_m]                 m in A  (residual composition, lines 332-336)
    f_m = g = (1 / |A|) sum_{j in A} s_j     m not in A  (missing-modality feature),

with C one bias-free Linear(2d, d) shared by every modality (the "shared compos layer",
line 356; conv3x3x3(512, 256, bias=False), line 319; normalization_sign False by default,
lines 314 and 327-332). A missing modality's specific feature is not used: its slot is the
generated shared feature itself, not passed through C (lines 453-454 and the like). The
prediction is one Linear layer on the concatenation in modality order (the reference
concatenates the fused features along channels for its segmentation decoder, lines 468-472,
487 and 490):

    logits = W [f_1; ...; f_M] + b.

The generated feature g (switch `fill`). The pinned code takes the shared feature of the
FIRST available modality, general_shared_ft = shared_ft[mode_split[0]::C] (line 411), with
the mean over the available modalities commented out just below it (lines 412-414). The mean
is the rule of the paper's method description; it is the default here (fill = "mean"), and
fill = "first" restores line 411 (the first available modality in the context's modality
order). With two modalities the two rules are the same.

Loss (train_SS.py line 301, the segmentation terms replaced by the cross-entropy):

    L = CE(logits, y) + alpha L_dist + beta L_dom,

    L_dist = sum_{(a, b)} mean |s_a - s_b|     (nn.L1Loss: a mean over samples and channels)
    L_dom  = CE(D z_m, m) over every (sample, modality) pair, one mean over all of them,

the distribution-alignment term over the consecutive pairs of a cycle through the modalities
(the reference: (flair, t1), (t1, t2ce), (t1ce, t2), (t2, flair), lines 285-288, the two
diagonals commented out at lines 289-290; here (m_1, m_2), ..., (m_{M-1}, m_M), (m_M, m_1),
and for M = 2 the one pair (m_1, m_2), each distinct pair once), and the domain
classification term with D one Linear(d, M) with bias (dom_classifier, line 357: Linear(256,
4, bias=True)) reading the specific features, labelled with the modality's index (lines
294-299). Neither term detaches anything: L_dist trains both shared features of every pair
(line 250 nn.L1Loss on two live tensors; MSE and KL are commented-out alternatives, lines
251-252), and L_dom trains the specific encoders and D.

Training schedule (random mode). run.sh trains first with every modality (line 11: 80000
steps, no --mode, so train_SS.py line 74's '0,1,2,3') and then resumes that run (lines 45-46:
the checkpoint's iteration counter, optimiser and poly learning rate, train_SS.py lines
238-241, 266 and 271) with --mode=random (line 47) up to step 180000 (line 34; train_SS.py
line 314), i.e. one schedule of 180000 steps whose first 80000 see every modality. In random
mode each step keeps a uniformly random number k in {1, ..., M} of modalities (DualNet_SS.py
line 380) and a uniformly random subset of that size (line 386); the others are missing for
the fusion. Here: the first round(warmup x epochs) epochs train with the modalities as
given, the rest in random mode, and the draw is made per sample (the reference draws per step
at a batch size of 1, run.sh line 9, i.e. per sample) among the sample's present modalities
(k uniform in 1..|present|). The harness sets the epoch via start_epoch; before it is called
the method is in epoch 0. Prediction (forward) never drops anything.

Hyper-parameters (defaults): alpha = 0.1 (weight of L_dist, train_SS.py line 25), beta =
0.02 (weight of L_dom, line 26), warmup = 80000 / 180000 (the fraction of the training with
every modality, run.sh lines 11 and 34), fill = "mean" (the paper's rule, kept commented out
at DualNet_SS.py lines 412-414; NOT what the pinned code runs: its line 411 is fill =
"first").

Missing modalities (ShaSpec's purpose): a modality absent from a sample (batch.present[m]
False) is missing exactly as in random mode: its fused feature is g. Its shared and specific
features are replaced by 0 before anything reads them (`mask_absent`, which replaces rows, so
even non-finite values of an absent input give 0), and g averages the present modalities'
shared features only, so an absent input cannot influence the prediction. A sample with
every modality absent gets f_m = 0 for every m (logits = b). The auxiliary terms read the
modalities present in the data, including those random mode drops for the fusion (the
reference computes them over every modality, dropped or not, lines 285-299): L_dist averages
each pair over the samples where both are present (no term for a pair never present
together), L_dom over the present (sample, modality) pairs (0 if there are none).

Remaining deviations:
- the shared encoder: the reference runs ONE network on every modality (its four MRI
  sequences have the same shape, lines 399-400); rambench's modalities are different kinds
  of input (images, audio), so no single network can read them all. Each modality gets a
  second rambench encoder H_m (the architecture of its specific encoder, as in the
  reference, where shared and specific encoders are both U_Res3D_enc), and the last layer,
  P, is shared by every modality: the shared parameters are P, and L_dist aligns the shared
  features in P's output space;
- in random mode the reference zero-fills a dropped modality's input for both encoders, so
  its L_dist and L_dom read the features of a zero input for it (lines 388-392, 285-299);
  here they read the real input of a modality that random mode drops for the fusion, and
  nothing of a modality absent from the data (its input is no observation at all);
- the reference's decoder also reads skip connections from every modality's shared encoder
  (lines 401-403 and 490), and its domain classifier the globally pooled specific feature
  before the ASPP block (lines 158-159, 221, 422-426, 493-494); rambench's encoders give one
  (B, d) feature per modality, which both the composition and D read, and the classifier
  is one Linear layer;
- the reference's convolutions use weight standardisation (train_SS.py line 61, Conv3d_wd
  lines 46-60), also in C; here C is a plain bias-free Linear (rambench's encoders have no
  weight standardisation either) with PyTorch's default initialisation (the reference's
  Kaiming init of lines 205-212 and 276-283 covers the encoder and decoder, not C);
- more than four or fewer than four modalities: L_dist runs over the cycle through the
  context's modalities, D has M outputs; ShaSpec needs at least two modalities;
- the cross-entropy replaces the segmentation loss (Dice + BCE, train_SS.py lines 279-280),
  the harness owns the optimiser and its schedule (the reference: SGD lr 1e-2, momentum
  0.99, Nesterov, poly decay with power 0.9, train_SS.py lines 223 and 271, run.sh line 13)
  and the mini-batches (the reference: batch size 1);
- the losses are computed in float32 (also under bf16 autocast).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods
from rambench.params import param


@dataclass
class ShaSpecParams:
    alpha: float = param(0.1, ge=0)  # weight of the L1 alignment (train_SS.py line 25)
    beta: float = param(0.02, ge=0)  # weight of the domain classification (line 26)
    # the fraction of the epochs trained with every modality before random mode (run.sh:
    # 80000 steps with mode 0,1,2,3 (line 11), then random mode up to step 180000 (line 34))
    warmup: float = param(80_000 / 180_000, ge=0, le=1)
    # the generated feature of a missing modality: the mean of the available modalities'
    # shared features (the paper; DualNet_SS.py lines 412-414, commented out) or the shared
    # feature of the first available one (DualNet_SS.py line 411)
    fill: Literal["mean", "first"] = "mean"

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup <= 1.0:
            raise ValueError(f"shaspec.warmup must lie in [0, 1]; got {self.warmup}")
        if self.alpha < 0 or self.beta < 0:
            raise ValueError("shaspec.alpha and shaspec.beta must be >= 0")
        if self.fill not in ("mean", "first"):
            raise ValueError(f"shaspec.fill must be 'mean' or 'first'; got {self.fill!r}")


class ShaSpecOutputs(NamedTuple):
    """What one pass computes, modality -> (B, d) each: shared features s_m and specific
    features z_m (both 0 where the modality is absent from the data), the generated feature
    g (B, d) of a missing modality, the fused features f_m, and the logits (B, K)."""

    shared: dict[str, Tensor]
    specific: dict[str, Tensor]
    generated: Tensor
    fused: dict[str, Tensor]
    logits: Tensor


def random_mode_keep(present: dict[str, Tensor]) -> dict[str, Tensor]:
    """modality -> bool (B,): the modalities random mode keeps. Per sample, k is uniform in
    1..n (n = its present modalities) and the kept set a uniformly random k-subset of the
    present ones (DualNet_SS.py lines 380 and 386); a sample with none keeps none."""
    mods = list(present)
    avail = torch.stack([present[m].to(torch.bool) for m in mods], dim=1)  # (B, M)
    n = avail.sum(dim=1)
    k = 1 + (torch.rand(n.shape, device=avail.device) * n).long()  # uniform in 1..n
    k = torch.minimum(k, n.clamp(min=1))  # (float rounding of rand * n)
    scores = torch.rand(avail.shape, device=avail.device).masked_fill(~avail, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)  # 0 = the lowest score; absent ones last
    keep = (rank < k.unsqueeze(1)) & avail
    return {m: keep[:, i] for i, m in enumerate(mods)}


@methods.register("shaspec")
class ShaSpec(Method):
    """ShaSpec (Wang et al., CVPR 2023): shared and specific features, missing ones generated."""

    family = "imputation"
    citation = ("Wang et al., Multi-modal Learning with Missing Modality via Shared-Specific "
                "Feature Modelling, CVPR 2023")
    reference = "billhhh/ShaSpec@081fe7a1e40d6bbc0736dc93e779a0a5a439d091:DualNet_SS.py"
    Params = ShaSpecParams

    @classmethod
    def supports(cls, ctx: MethodContext) -> str | None:
        if len(ctx.modalities) < 2:
            return (f"needs at least two modalities (shared features to align, specific "
                    f"ones to tell apart); the dataset has {', '.join(ctx.modalities)}")
        return None

    def __init__(self, ctx: MethodContext, params: ShaSpecParams | None = None):
        reason = self.supports(ctx)
        if reason is not None:
            raise ValueError(f"shaspec {reason}")
        super().__init__(ctx, params)  # self.encoders: the specific encoders E_m
        d, mods = ctx.feature_dim, ctx.modalities
        self.shared_encoders = nn.ModuleDict({m: ctx.make_encoder(m) for m in mods})  # H_m
        self.shared_projection = nn.Linear(d, d)  # P, one for every modality
        self.compose = nn.Linear(2 * d, d, bias=False)  # C, the shared compos layer
        self.domain_classifier = nn.Linear(d, len(mods))  # D
        self.classifier = nn.Linear(len(mods) * d, ctx.num_classes)
        self.random_mode = self.params.warmup == 0.0

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        self.random_mode = epoch >= int(self.params.warmup * total_epochs + 0.5)

    def features(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Shared s_m and specific z_m features (B, d), 0 where m is absent from the data."""
        specific = self.encode(batch)
        shared = {m: self.shared_projection(self.shared_encoders[m](batch.inputs[m]))
                  for m in self.ctx.modalities}
        return self.mask_absent(shared, batch), self.mask_absent(specific, batch)

    def generate(self, shared: dict[str, Tensor], available: dict[str, Tensor]) -> Tensor:
        """g (B, d): the feature of a missing modality from the available ones' shared
        features (0 for a sample with none available)."""
        mods = self.ctx.modalities
        keep = {m: available[m].to(device=shared[m].device, dtype=torch.bool).unsqueeze(1)
                for m in mods}
        zero = shared[mods[0]].new_zeros(())
        if self.params.fill == "first":  # line 411: the first available modality's
            out = torch.zeros_like(shared[mods[0]])
            for m in reversed(mods):
                out = torch.where(keep[m], shared[m], out)
            return out
        total = sum(torch.where(keep[m], shared[m], zero) for m in mods)
        count = sum(keep[m].to(total.dtype) for m in mods)
        return total / count.clamp(min=1.0)

    def fuse(self, shared: dict[str, Tensor], specific: dict[str, Tensor],
             available: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """(g, fused features f_m, logits) for the modalities `available` to each sample."""
        generated = self.generate(shared, available)
        fused = {}
        for m in self.ctx.modalities:
            keep = available[m].to(device=shared[m].device, dtype=torch.bool).unsqueeze(1)
            composed = shared[m] + self.compose(torch.cat([shared[m], specific[m]], dim=1))
            fused[m] = torch.where(keep, composed, generated)
        logits = self.classifier(torch.cat([fused[m] for m in self.ctx.modalities], dim=1))
        return generated, fused, logits

    def outputs(self, batch: Batch, available: dict[str, Tensor] | None = None
                ) -> ShaSpecOutputs:
        """Everything one pass computes; `available` (default batch.present) are the
        modalities the fusion may read, a subset of the present ones."""
        shared, specific = self.features(batch)
        present = {m: batch.present[m].to(torch.bool) for m in self.ctx.modalities}
        if available is not None:
            present = {m: present[m] & available[m].to(present[m].device, torch.bool)
                       for m in present}
        generated, fused, logits = self.fuse(shared, specific, present)
        return ShaSpecOutputs(shared, specific, generated, fused, logits)

    def forward(self, batch: Batch) -> Tensor:
        return self.outputs(batch).logits

    def alignment_loss(self, shared: dict[str, Tensor], present: dict[str, Tensor]) -> Tensor:
        """L_dist: sum over the cycle's distinct pairs of the mean |s_a - s_b| over the
        samples where both are present (train_SS.py lines 250 and 285-288)."""
        mods = self.ctx.modalities
        pairs = [(mods[i], mods[(i + 1) % len(mods)]) for i in range(len(mods))]
        if len(mods) == 2:
            pairs = pairs[:1]
        total = shared[mods[0]].new_zeros((), dtype=torch.float32)
        for a, b in pairs:
            rows = present[a] & present[b]
            if rows.any():
                total = total + F.l1_loss(shared[a][rows].float(), shared[b][rows].float())
        return total

    def domain_loss(self, specific: dict[str, Tensor], present: dict[str, Tensor]) -> Tensor:
        """L_dom: cross-entropy of D z_m against m's index, one mean over every present
        (sample, modality) pair (train_SS.py lines 294-299, loss_Dual.py lines 244-252)."""
        feats, labels = [], []
        for i, m in enumerate(self.ctx.modalities):
            rows = present[m]
            feats.append(specific[m][rows])
            labels.append(torch.full((int(rows.sum()),), i, dtype=torch.long,
                                     device=specific[m].device))
        z, y = torch.cat(feats), torch.cat(labels)
        if len(y) == 0:
            return specific[self.ctx.modalities[0]].new_zeros((), dtype=torch.float32)
        return F.cross_entropy(self.domain_classifier(z).float(), y)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        p = self.params
        present = {m: batch.present[m].to(torch.bool) for m in self.ctx.modalities}
        available = random_mode_keep(present) if self.random_mode else present
        out = self.outputs(batch, available)
        ce = F.cross_entropy(out.logits.float(), batch.y)
        dist = self.alignment_loss(out.shared, present)
        dom = self.domain_loss(out.specific, present)
        loss = ce + p.alpha * dist + p.beta * dom
        result = {"ce": ce, "dist": dist, "dom": dom, "loss": loss}
        with torch.no_grad():  # the share of present modalities random mode drops
            kept = sum(available[m].float().sum() for m in self.ctx.modalities)
            total = sum(present[m].float().sum() for m in self.ctx.modalities)
            result["dropped_fraction"] = 1.0 - kept / total.clamp(min=1.0)
        return result
