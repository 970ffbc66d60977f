"""ModDrop: modality dropout during training, with concat late fusion.

N. Neverova, C. Wolf, G. Taylor, F. Nebout, "ModDrop: Adaptive Multi-Modal Gesture
Recognition", IEEE TPAMI 38(8), 2016; used as a missing-modality robustness baseline by
M. Ma, J. Ren, L. Zhao, D. Testuggine, X. Peng, "Are Multimodal Transformers Robust to
Missing Modality?", CVPR 2022.

At training time each modality of each sample is dropped with probability p (its input
zero-filled and its presence flag cleared, as the harness does for a missing modality),
conditioned on at least one present modality remaining; then
    loss = CE(W [z~_1; ...; z~_M] + b, y),  z~_m = 0 where m is absent (dropped or missing).
At test time nothing is dropped: it is exactly late fusion.

Hyper-parameters: p = 0.3 (per-modality drop probability, in [0, 1)).

Deviations from the paper: Neverova et al. drop modality-specific input channels inside a
network whose fusion layers were initialised from separately pre-trained unimodal paths
(a staged schedule); here dropping acts on whole modalities of the benchmark's shared
encoders, trained end to end in one stage, because the harness owns the schedule and the
encoders. "Never all": the drop pattern is redrawn for a sample that would lose every
present modality (a sample with nothing to classify teaches nothing), the same
conditional distribution as the grid's random missing pattern; the realised drop rate is
therefore p (1 - p^(M-1)) / (1 - p^M) (0.23 for p = 0.3, M = 2). Features are not
rescaled by 1 / (1 - p) (the fusion sees zeros, exactly as for a missing modality).

Reference code: none (`reference = ""`). Neverova et al. released no implementation of
ModDrop, and Ma et al. (CVPR 2022) none of their modality-dropout training; the ModDrop code
on GitHub is third-party. This file follows the papers' descriptions only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from baselines.late_fusion import LateFusion
from rambench.batch import Batch
from rambench.methods import methods


@dataclass
class ModDropParams:
    p: float = 0.3  # probability of dropping each modality of each sample

    def __post_init__(self) -> None:
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"moddrop.p must lie in [0, 1); got {self.p}")


def drop_mask(present: dict[str, Tensor], p: float) -> dict[str, Tensor]:
    """modality -> bool (B,), True where the modality is to be dropped.

    Each present modality of each sample is dropped independently with probability p;
    a sample whose every present modality would be dropped is redrawn (rejection), so at
    least one stays. Absent modalities are never marked; a sample with nothing present
    keeps nothing either way.
    """
    mods = list(present)
    avail = torch.stack([present[m] for m in mods], dim=1)  # (B, M)
    drop = (torch.rand(avail.shape, device=avail.device) < p) & avail
    while True:
        bad = avail.any(dim=1) & ~(avail & ~drop).any(dim=1)
        if not bad.any():
            break
        redraw = (torch.rand(avail.shape, device=avail.device) < p) & avail
        drop = torch.where(bad.unsqueeze(1), redraw, drop)
    return {m: drop[:, i] for i, m in enumerate(mods)}


@methods.register("moddrop")
class ModDrop(LateFusion):
    """ModDrop (Neverova et al., TPAMI 2016): random modality dropout, concat late fusion."""

    family = "augmentation"
    citation = ("Neverova et al., ModDrop: Adaptive Multi-Modal Gesture Recognition, "
                "TPAMI 2016")
    Params = ModDropParams

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        dropped = batch.with_missing(drop_mask(batch.present, self.params.p))
        out = {"loss": F.cross_entropy(self(dropped), batch.y)}
        with torch.no_grad():
            kept = torch.stack([dropped.present[m] for m in dropped.modalities], 1).float()
            out["dropped_fraction"] = 1.0 - kept.mean()
        return out
