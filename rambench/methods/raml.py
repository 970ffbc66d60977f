"""RAML: Redundancy-Adaptive Multimodal Learning (reimplementation).

M. Chen, J. Yao, L. Xing, Y. Wang, Y. Zhang, Y. Wang, "Redundancy-Adaptive Multimodal
Learning for Imperfect Data", Neural Networks 191 (2025) 107821 (arXiv:2310.14496).

This is a reimplementation from the published description, not the authors' code
(github.com/mxchen-mc/RAML). Every component can be switched off to ablate it:

1. unimodal heads g_m with  L_uni = sum_m CE(g_m(z_m), y)               (weight alpha)
2. a norm constraint on each feature z_m:  soft  L_norm = mean_m E[(|z_m| - r)^2] / r^2
   (weight beta), hard  z_m <- r z_m / |z_m|, or none; r defaults to sqrt(d)
3. token fusion: z_m cut into K tokens, projected to the transformer width (a deviation:
   the paper does not give the width; default 64), plus modality and position
   embeddings, fused by a transformer; an absent modality uses learned missing tokens.
   Training adds a corrupted view: with probability p_c a sample gets one modality's
   tokens (a fraction rho ~ U(rho_min, 1)) replaced, and
   L_cons = |h(corrupted) - stopgrad(h(clean))|^2 / width on the pooled representation h.

Two deviations from the written description, both rescalings that keep a term's size
independent of the feature dimension d and the width: the soft norm penalty is divided by
r^2 = d, and L_cons is averaged (not summed) over the width. Unscaled, with the published
defaults (beta = 0.1, gamma = 1), the norm term is about 0.1 d at initialisation and
dominates Adam's step sizes, and the summed consistency term is minimised by collapsing h
to a constant: on avdigits either one alone kept RAML at chance accuracy (10-12 %) after
15 epochs, while late fusion reached 96 %.
Total:  CE(clean) + CE(corrupted) + alpha L_uni + beta L_norm + gamma L_cons.
At test time only the clean path runs. With every switch off RAML is concat late fusion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods.base import Method, MethodContext, methods
from rambench.models.fusion import ConcatFusion, TokenFusion
from rambench.params import param


@dataclass
class RAMLParams:
    unimodal_heads: bool = True
    alpha: float = param(1.0, ge=0)  # weight of the unimodal losses
    norm: Literal["soft", "hard", "none"] = "soft"
    beta: float = param(0.1, ge=0)  # weight of the soft norm penalty
    radius: float = param(0.0, ge=0)  # target feature norm r; 0 means sqrt(d)
    fusion: Literal["tokens", "concat"] = "tokens"
    num_tokens: int = param(8, ge=1)  # K
    width: int = param(64, ge=1)  # transformer width
    layers: int = param(2, ge=1)
    heads: int = param(4, ge=1)
    token_corruption: float = param(0.5, ge=0, le=1)  # p_c; 0 disables the corrupted view
    rho_min: float = param(0.25, ge=0, le=1)
    token_fill: Literal["noise", "zeros", "swap", "missing"] = "noise"
    gamma: float = param(1.0, ge=0)  # weight of the consistency term

    def __post_init__(self) -> None:
        if self.token_corruption > 0 and self.fusion != "tokens":
            raise ValueError("raml.token_corruption > 0 needs raml.fusion=tokens")


@methods.register("raml")
class RAML(Method):
    """RAML (Chen et al., Neural Networks 2025): unimodal heads, norm constraint, token fusion."""

    family = "reference"
    citation = "Chen et al., Redundancy-Adaptive Multimodal Learning for Imperfect Data, NN 2025"
    Params = RAMLParams

    def __init__(self, ctx: MethodContext, params: RAMLParams | None = None):
        super().__init__(ctx, params)
        p, mods, d, c = self.params, ctx.modalities, ctx.feature_dim, ctx.num_classes
        if p.fusion == "concat":
            self.fusion: nn.Module = ConcatFusion(mods, d, c)
        else:
            self.fusion = TokenFusion(mods, d, c, p.num_tokens, p.width, p.layers, p.heads)
        if p.unimodal_heads:
            self.heads = nn.ModuleDict({m: nn.Linear(d, c) for m in mods})
        self.radius = p.radius or math.sqrt(d)

    def features(self, batch: Batch) -> dict[str, Tensor]:
        z = self.encode(batch)
        if self.params.norm == "hard":
            z = {m: self.radius * F.normalize(f, dim=1) for m, f in z.items()}
        return z

    def norm_penalty(self, z: dict[str, Tensor], present: dict[str, Tensor]) -> Tensor:
        """mean over modalities of E[(|z_m| - r)^2] / r^2, over samples where m is present."""
        terms = [
            (f[present[m]].norm(dim=1) / self.radius - 1.0).square().mean()
            for m, f in z.items()
            if present[m].any()
        ]
        return torch.stack(terms).mean()

    def unimodal_loss(self, z: dict[str, Tensor], batch: Batch) -> Tensor:
        terms = [
            F.cross_entropy(self.heads[m](f[batch.present[m]]), batch.y[batch.present[m]])
            for m, f in z.items()
            if batch.present[m].any()
        ]
        return torch.stack(terms).sum()

    def corrupt_tokens(self, tokens: Tensor, missing: Tensor) -> tuple[Tensor, Tensor]:
        """The corrupted view: per sample, w.p. p_c, replace a fraction of one modality's
        tokens. Returns the new (tokens, missing) pair; everything else is untouched."""
        p = self.params
        b, m, k, _ = tokens.shape
        dev = tokens.device
        hit = torch.rand(b, device=dev) < p.token_corruption
        modality = torch.randint(0, m, (b,), device=dev)
        rho = p.rho_min + (1.0 - p.rho_min) * torch.rand(b, device=dev)
        chosen = torch.rand(b, k, device=dev).argsort(dim=1) < torch.ceil(rho * k).unsqueeze(1)
        select = torch.zeros(b, m, k, dtype=torch.bool, device=dev)
        select[torch.arange(b, device=dev), modality] = chosen
        select &= hit.view(b, 1, 1)
        if p.token_fill == "missing":
            return tokens, missing | select
        if p.token_fill == "zeros":
            fill = torch.zeros_like(tokens)
        elif p.token_fill == "swap":
            fill = tokens.roll(1, dims=0)
        else:  # Gaussian noise with each token's own mean and standard deviation
            mean = tokens.mean(dim=-1, keepdim=True)
            std = tokens.std(dim=-1, keepdim=True)
            fill = mean + std * torch.randn_like(tokens)
        return torch.where(select.unsqueeze(-1), fill, tokens), missing

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        p = self.params
        z = self.features(batch)
        out: dict[str, Tensor] = {}
        if isinstance(self.fusion, ConcatFusion):
            out["ce"] = F.cross_entropy(self.fusion(z, batch.present), batch.y)
        else:
            tokens, missing = self.fusion.split(z), self.fusion.absent_mask(batch.present)
            logits, h = self.fusion.fuse(tokens, missing)
            out["ce"] = F.cross_entropy(logits, batch.y)
            if p.token_corruption > 0:
                logits_c, h_c = self.fusion.fuse(*self.corrupt_tokens(tokens, missing))
                out["ce_corrupted"] = F.cross_entropy(logits_c, batch.y)
                out["consistency"] = F.mse_loss(h_c, h.detach())
        if p.unimodal_heads:
            out["unimodal"] = self.unimodal_loss(z, batch)
        if p.norm == "soft":
            out["norm"] = self.norm_penalty(z, batch.present)
        weights = {"unimodal": p.alpha, "norm": p.beta, "consistency": p.gamma}
        out["loss"] = sum(weights.get(name, 1.0) * value for name, value in out.items())
        return out

    def forward(self, batch: Batch) -> Tensor:
        z = self.features(batch)
        if isinstance(self.fusion, ConcatFusion):
            return self.fusion(z, batch.present)
        return self.fusion.fuse(self.fusion.split(z), self.fusion.absent_mask(batch.present))[0]
