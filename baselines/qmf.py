"""QMF: Quality-aware Multimodal Fusion (reimplementation from the paper).

Q. Zhang, H. Wu, C. Zhang, Q. Hu, H. Fu, J. T. Zhou, X. Peng, "Provable Dynamic Fusion for
Low-Quality Multimodal Data", ICML 2023 (arXiv:2306.02050).

Each modality m has a linear classifier f_m on its feature z_m. Its sample-wise confidence is
the negative energy score of its logits,

    E_m(x) = -T logsumexp(f_m(x) / T),   conf_m(x) = -s E_m(x)   (s = confidence_scale),

and the decision-level fusion weights each modality's logits by its detached confidence:

    f(x) = sum_m w_m(x) f_m(x),   w_m = stopgrad(conf_m(x))   (w_m = 0 where m is absent).

The paper's theory asks the weights to be negatively correlated with each modality's loss; the
energy is trained towards that with a ranking regulariser on pairs of samples (i, j) that uses
each sample's historical loss h (per modality, the mean of its past per-sample cross-entropies,
kept in a buffer indexed by `batch.index` and updated after every step):

    R_m = mean_{(i,j)} max(0, -sign(h_j - h_i) (conf_m(x_i) - conf_m(x_j)) + |h_i - h_j|),

i.e. a sample with a lower historical loss should be more confident, by a margin equal to the
loss gap (the correctness-ranking form of Moon et al., ICML 2020, with loss in place of
correctness). Pairs are each sample and the next one in the batch (i, i+1 mod B), among the
samples where m is present and that have history.

Loss:  CE(f(x), y) + sum_m CE(f_m(x), y) + lambda sum_m R_m.

Hyper-parameters (defaults): lambda = 0.1 (ranking weight), temperature T = 1,
confidence_scale s = 0.1.

Missing modalities: an absent modality gets weight 0, so its input cannot reach the fused
logits; its unimodal CE, ranking term and history use the samples where it is present only.

Deviations and uncertain points:
- the paper writes the weight as the (negative) energy; the scale s = 0.1 (negative energy
  divided by 10) is my recollection of the authors' setting, not something I could confirm
  from the paper text, so it is a parameter. A common positive scale only rescales the fused
  logits (a softmax temperature the classifiers can absorb);
- weights are not clipped: the negative energy is >= max_k f_mk, so it can turn negative for
  a modality whose logits are all negative (the paper does not clip either);
- the ranking targets use the running mean of past per-sample losses (unnormalised); the
  paper states the regulariser with historical training loss but I could not confirm how the
  history is aggregated or normalised;
- the history buffer is not part of the state dict (it is training bookkeeping).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods


@dataclass
class QMFParams:
    lam: float = 0.1  # weight of the ranking regulariser
    temperature: float = 1.0  # T of the energy score
    confidence_scale: float = 0.1  # s: conf = -s * energy

    def __post_init__(self) -> None:
        if self.temperature <= 0 or self.confidence_scale <= 0:
            raise ValueError("qmf.temperature and qmf.confidence_scale must be > 0")


def energy_confidence(logits: Tensor, temperature: float = 1.0, scale: float = 1.0) -> Tensor:
    """Negative energy score (B,): scale * T * logsumexp(logits / T)."""
    return scale * temperature * torch.logsumexp(logits / temperature, dim=1)


def fuse(logits: dict[str, Tensor], conf: dict[str, Tensor], present: dict[str, Tensor]):
    """Fused logits sum_m w_m f_m with w_m = stopgrad(conf_m), 0 where m is absent.

    Returns (fused logits (B, K), weights dict m -> (B,))."""
    weights = {m: conf[m].detach() * present[m].to(conf[m].dtype) for m in logits}
    fused = sum(weights[m].unsqueeze(1) * logits[m] for m in logits)
    return fused, weights


def ranking_loss(conf: Tensor, history: Tensor, valid: Tensor) -> Tensor:
    """Margin ranking of confidence against historical loss over pairs (i, i+1 mod B).

    conf (B,) confidences, history (B,) historical losses, valid (B,) bool: which samples may
    take part. Pairs with equal history or an invalid member are skipped; 0 if none remain."""
    j = torch.roll(torch.arange(conf.shape[0], device=conf.device), -1)
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
    Params = QMFParams

    def __init__(self, ctx: MethodContext, params: QMFParams | None = None):
        super().__init__(ctx, params)
        self.heads = nn.ModuleDict(
            {m: nn.Linear(ctx.feature_dim, ctx.num_classes) for m in ctx.modalities}
        )
        n = len(ctx.modalities)
        # per-modality running sum and count of each training sample's loss (not saved)
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
        return fuse(logits, conf, batch.present)[0]

    def _grow(self, size: int) -> None:
        if size > self.loss_sum.shape[1]:
            extra = size - self.loss_sum.shape[1]
            pad = self.loss_sum.new_zeros(self.loss_sum.shape[0], extra)
            self.loss_sum = torch.cat([self.loss_sum, pad], dim=1)
            self.loss_count = torch.cat([self.loss_count, pad.clone()], dim=1)

    def history(self, modality: int, index: Tensor) -> tuple[Tensor, Tensor]:
        """(mean past loss, has-history mask) of samples `index` for one modality."""
        count = self.loss_count[modality, index]
        return self.loss_sum[modality, index] / count.clamp(min=1), count > 0

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        logits, conf = self.unimodal(batch)
        fused, _ = fuse(logits, conf, batch.present)
        self._grow(int(batch.index.max()) + 1)
        out = {"ce": F.cross_entropy(fused, batch.y)}
        unimodal = rank = fused.new_zeros(())
        for i, m in enumerate(self.ctx.modalities):
            keep = batch.present[m]
            if not keep.any():
                continue
            per_sample = F.cross_entropy(logits[m], batch.y, reduction="none")
            unimodal = unimodal + per_sample[keep].mean()
            hist, seen = self.history(i, batch.index)
            rank = rank + ranking_loss(conf[m], hist, keep & seen)
            with torch.no_grad():
                idx = batch.index[keep]
                self.loss_sum[i].index_add_(0, idx, per_sample.detach()[keep].float())
                self.loss_count[i].index_add_(0, idx, torch.ones_like(idx, dtype=torch.float))
        out["unimodal"], out["ranking"] = unimodal, rank
        out["loss"] = out["ce"] + unimodal + self.params.lam * rank
        return out
