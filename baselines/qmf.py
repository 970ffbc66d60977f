"""QMF: Quality-aware Multimodal Fusion.

Q. Zhang, H. Wu, C. Zhang, Q. Hu, H. Fu, J. T. Zhou, X. Peng, "Provable Dynamic Fusion for
Low-Quality Multimodal Data", ICML 2023 (arXiv:2306.02050). Follows the authors' RGB-D code,
QingyangZhang/QMF@fe6c4c6ef7cb23f0a89594ee413d485f1854268b:RGBD-scene-recognition/models/QMF.py
(forward, lines 53-76), with the training step of RGBD-scene-recognition/train_QMF_nyud2.py
(rank_loss lines 57-76, model_forward_train lines 79-109) and the loss history of
RGBD-scene-recognition/utils/crl_utils.py (History, lines 19-69).

Each modality m has a linear classifier f_m on its feature z_m. Its sample-wise confidence is
the negative energy score of its logits, scaled (QMF.py lines 67-71):

    E_m(x) = -T logsumexp(f_m(x) / T),   w_m(x) = -s E_m(x)   (s = confidence_scale = 0.1),

and the fused logits weight each modality's logits by it, NOT detached (QMF.py line 74):

    f(x) = sum_m w_m(x) f_m(x)            (w_m = 0 where m is absent),

so the fused cross-entropy also trains each classifier through its weight.

Ranking regulariser (train_QMF_nyud2.py rank_loss; crl_utils.History): every training
sample keeps, per modality, the cumulative sum H of its past per-sample cross-entropies
(updated after each step, History.correctness_update). For a batch, the histories are
min-max normalised over the whole history buffer, n = (H - min H) / (max H - min H)
(History.correctness_normalize; samples never seen count as H = 0), and each sample i is
paired with the next one j = i + 1 mod B:

    t_ij = sign(n_i - n_j),   R_m = mean_(i,j) max(0, t_ij (w_m(x_i) - w_m(x_j)) - |n_i - n_j|).

This is what nn.MarginRankingLoss(margin=0)(w_i, w_j + |n_i - n_j| / t_ij, -t_ij) computes
(with t = 0 replaced by 1 in the division): a sample with the higher loss history is
penalised when it is the more confident one by more than the normalised history gap. (The
gap enters as a slack, not as a required separation as in CRL's correctness ranking, of
which this is the loss-history form; this is the reference's sign convention.) Pairs with
equal histories contribute 0 and are counted in the mean.

Loss:  CE(f(x), y) + sum_m CE(f_m(x), y) + lambda sum_m R_m,  lambda = 0.1 (--lamb).

Hyper-parameters (defaults): lam = 0.1, temperature T = 1 (the reference has no
temperature), confidence_scale s = 0.1 (the reference's -0.1 * energy), detach_weights =
False, ranking = "reference".

Switches back to rambench's previous form: detach_weights = True stops the gradient of the
fused CE at the weights (as the repository's text-image version does,
text-image-classification/src/models/late_fusion.py line 39 at the same commit);
ranking = "mean_gap" ranks on the unnormalised running mean of each sample's past losses h,
with the loss gap as a required margin, max(0, -sign(h_j - h_i)(w_i - w_j) + |h_i - h_j|),
averaged over the pairs with unequal history only and skipping samples with no history.

Remaining deviations:
- missing modalities (not in the reference): an absent modality gets weight 0, so its
  input cannot reach the fused logits; its unimodal CE, ranking pairs (both members
  present) and history updates use the samples where it is present only;
- when every history entry is equal (the very first step, max H = min H) the reference
  divides 0 by 0: its ranking term is NaN with a zero gradient; here it is 0 (the harness
  stops on a non-finite loss), the same gradient;
- the history buffer grows to the largest sample index seen (the reference allocates one
  entry per training sample up front). Both count unseen samples as 0, so min H = 0 while
  any sample is unseen; they can differ only within the first epoch, when every sample up
  to the largest index seen so far has been seen but some higher index has not;
- the reference's backbone heads are optional MLPs (--hidden, empty by default: one Linear),
  on ImageNet-pretrained ResNet-18s trained with Adam lr 1e-4 and gradient accumulation;
  here one Linear head on the benchmark's encoders, optimiser owned by the harness;
- the history buffers are not part of the state dict (training bookkeeping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch, mask_absent
from rambench.methods import Method, MethodContext, methods
from rambench.params import param


@dataclass
class QMFParams:
    lam: float = param(0.1, ge=0)  # weight of the ranking regulariser
    temperature: float = 1.0  # T of the energy score
    confidence_scale: float = 0.1  # s: w = -s * energy
    detach_weights: bool = False  # True: stop-gradient on the fusion weights (old form)
    # "reference": min-max normalised cumulative loss history, gap as slack (crl_utils);
    # "mean_gap": running mean of past losses, gap as required margin (old form)
    ranking: Literal["reference", "mean_gap"] = "reference"

    def __post_init__(self) -> None:
        if self.temperature <= 0 or self.confidence_scale <= 0:
            raise ValueError("qmf.temperature and qmf.confidence_scale must be > 0")


def energy_confidence(logits: Tensor, temperature: float = 1.0, scale: float = 1.0) -> Tensor:
    """Negative energy score (B,): scale * T * logsumexp(logits / T)."""
    return scale * temperature * torch.logsumexp(logits / temperature, dim=1)


def fuse(logits: dict[str, Tensor], conf: dict[str, Tensor], present: dict[str, Tensor],
         detach: bool = False):
    """Fused logits sum_m w_m f_m with w_m = conf_m (stop-gradient if `detach`), 0 where m
    is absent.

    Returns (fused logits (B, K), weights dict m -> (B,))."""
    weights = mask_absent({m: conf[m].detach() if detach else conf[m] for m in logits},
                          present)
    fused = sum(weights[m].unsqueeze(1) * logits[m] for m in logits)
    return fused, weights


def _next_pairs(conf: Tensor) -> Tensor:
    return torch.roll(torch.arange(conf.shape[0], device=conf.device), -1)


def reference_ranking_loss(conf: Tensor, cumulative: Tensor, everything: Tensor,
                           valid: Tensor) -> Tensor:
    """QMF's ranking loss over pairs (i, i+1 mod B).

    conf (B,) confidences; cumulative (B,) these samples' cumulative past losses;
    everything: the whole history buffer (for the min-max normalisation); valid (B,) bool:
    which samples may take part (pairs with an invalid member are left out of the mean).
    0 when the buffer is constant (the reference's 0 / 0) or no pair remains."""
    lo, hi = everything.min(), everything.max()
    j = _next_pairs(conf)
    pair = valid & valid[j]
    if not pair.any() or not bool(hi > lo):
        return conf.sum() * 0.0
    n = (cumulative - lo) / (hi - lo)
    target = torch.sign(n - n[j])  # +1: sample i has the larger loss history
    gap = (n - n[j]).abs()
    per_pair = F.relu(target * (conf - conf[j]) - gap)
    return per_pair[pair].mean()


def ranking_loss(conf: Tensor, history: Tensor, valid: Tensor) -> Tensor:
    """rambench's previous ranking (ranking = "mean_gap") over pairs (i, i+1 mod B).

    conf (B,) confidences, history (B,) mean historical losses, valid (B,) bool: which
    samples may take part. Pairs with equal history or an invalid member are skipped; 0 if
    none remain."""
    j = _next_pairs(conf)
    target = torch.sign(history[j] - history)  # +1: sample i has the lower loss
    pair = valid & valid[j] & (target != 0)
    if not pair.any():
        return conf.sum() * 0.0
    margin = (history - history[j]).abs()
    per_pair = F.relu(-target * (conf - conf[j]) + margin)
    return per_pair[pair].mean()


@methods.register("qmf")
class QMF(Method):
    """QMF (Zhang et al., ICML 2023): logits weighted by energy-based confidence, ranking reg."""

    family = "uncertainty"
    citation = "Zhang et al., Provable Dynamic Fusion for Low-Quality Multimodal Data, ICML 2023"
    reference = ("QingyangZhang/QMF@fe6c4c6ef7cb23f0a89594ee413d485f1854268b:"
                 "RGBD-scene-recognition/models/QMF.py")
    Params = QMFParams

    def __init__(self, ctx: MethodContext, params: QMFParams | None = None):
        super().__init__(ctx, params)
        self.heads = nn.ModuleDict(
            {m: nn.Linear(ctx.feature_dim, ctx.num_classes) for m in ctx.modalities}
        )
        n = len(ctx.modalities)
        # per-modality cumulative sum and count of each training sample's loss (not saved)
        self.register_buffer("loss_sum", torch.zeros(n, 0), persistent=False)
        self.register_buffer("loss_count", torch.zeros(n, 0), persistent=False)

    def unimodal(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        z = self.encode(batch)
        logits = {m: self.heads[m](z[m]) for m in self.ctx.modalities}
        p = self.params
        conf = {m: energy_confidence(v.float(), p.temperature, p.confidence_scale)
                for m, v in logits.items()}
        return logits, conf

    def forward(self, batch: Batch) -> Tensor:
        logits, conf = self.unimodal(batch)
        return fuse(logits, conf, batch.present, self.params.detach_weights)[0]

    def _grow(self, size: int) -> None:
        if size > self.loss_sum.shape[1]:
            extra = size - self.loss_sum.shape[1]
            pad = self.loss_sum.new_zeros(self.loss_sum.shape[0], extra)
            self.loss_sum = torch.cat([self.loss_sum, pad], dim=1)
            self.loss_count = torch.cat([self.loss_count, pad.clone()], dim=1)

    def history(self, modality: int, index: Tensor) -> tuple[Tensor, Tensor]:
        """(mean past loss, has-history mask) of samples `index` for one modality
        (ranking = "mean_gap")."""
        count = self.loss_count[modality, index]
        return self.loss_sum[modality, index] / count.clamp(min=1), count > 0

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        logits, conf = self.unimodal(batch)
        p = self.params
        fused, _ = fuse(logits, conf, batch.present, p.detach_weights)
        self._grow(int(batch.index.max()) + 1)
        out = {"ce": F.cross_entropy(fused, batch.y)}
        unimodal = rank = fused.new_zeros(())
        for i, m in enumerate(self.ctx.modalities):
            keep = batch.present[m]
            if not keep.any():
                continue
            per_sample = F.cross_entropy(logits[m], batch.y, reduction="none")
            unimodal = unimodal + per_sample[keep].mean()
            if p.ranking == "reference":
                rank = rank + reference_ranking_loss(
                    conf[m], self.loss_sum[i, batch.index], self.loss_sum[i], keep)
            else:
                hist, seen = self.history(i, batch.index)
                rank = rank + ranking_loss(conf[m], hist, keep & seen)
            with torch.no_grad():
                idx = batch.index[keep]
                self.loss_sum[i].index_add_(0, idx, per_sample.detach()[keep].float())
                self.loss_count[i].index_add_(0, idx, torch.ones_like(idx, dtype=torch.float))
        out["unimodal"], out["ranking"] = unimodal, rank
        out["loss"] = out["ce"] + unimodal + p.lam * rank
        return out
