"""AugMix on the image modalities, with concat late fusion.

D. Hendrycks, N. Mu, E. D. Cubuk, B. Zoph, J. Gilmer, B. Lakshminarayanan, "AugMix: A
Simple Data Processing Method to Improve Robustness and Uncertainty", ICLR 2020.

For each image x two augmented views are made, each
    x_aug = (1 - b) x + b sum_{i=1..width} w_i chain_i(x),
    w ~ Dirichlet(alpha, ..., alpha), b ~ Beta(alpha, alpha),
with width = 3 chains, each of depth U{1, 2, 3}, of AugMix's operations
(baselines/_image_ops.py). Non-image modalities stay clean in every view. Then
    loss = CE(p_clean, y) + lambda JS(p_clean, p_aug1, p_aug2),
    JS(p_1, p_2, p_3) = 1/3 sum_k KL(p_k || M),  M = (p_1 + p_2 + p_3) / 3,
where p are the fused classifier's softmax outputs, averaged over the batch. As in the
paper's code, the three views go through the image encoders as one batch (batch-norm
statistics are shared), and M is clamped to [1e-7, 1] before the log.

Hyper-parameters: lam = 12, width = 3, depth = 3 (maximum chain depth; depths drawn from
1..depth), severity = 3 (0-10), alpha = 1.

Image modalities are those of kind "image" in the method context (not guessed from the
tensor's rank). A multi-frame clip (B, T, C, H, W) is augmented frame by frame with ONE
draw per clip (`_image_ops.per_clip`): the same chains, magnitudes and mixing weights
for all T frames, so a view is a temporally coherent clip, as the grid's corruptions
are (a per-frame draw would add flicker no clean or corrupted clip has).

Deviations: AugMix augments the single image input of an image classifier; here it acts
on every image modality of a multimodal sample and only there, while the other
modalities' features are computed once and shared by the three views. Image modalities
absent from a sample (zero-filled) are not augmented. Without any image modality the
method is late fusion.

Deviations from the reference's Pillow ops (augmentations.py at the same commit; the full
list, with the figures, in `_image_ops`'s docstring, pinned by tests/test_augmix_parity.py):
the operations are torch re-implementations on real values, never rounded to 8 bits
between operations (Pillow truncates to uint8 after each: up to 1 grey level); rotate and
translate use real-valued degrees and pixels where the reference truncates them to whole
ones (and never draw the reference's 0-degree / 0-px copies); shear is about the image
centre, not the top-left corner (the reference's shear shifted by k H/2 px); the borders
of the geometric ops are zero-padded bilinear (grid_sample) rather than Pillow's edge
clamp with a hard cut; solarize's threshold 255 (1 - m) inverts at most one grey level more than the
reference's 256 - int(256 m); equalize is the textbook histogram map, not Pillow's
integer-step LUT (up to 61 grey levels apart on a 32x32 image). autocontrast, posterize
and the operation set (the default list, without --all-ops' color, contrast, brightness
and sharpness) match.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from baselines._image_ops import image_modalities, per_clip, random_chain
from baselines.late_fusion import LateFusion
from rambench.batch import Batch
from rambench.methods import methods


def js_divergence(logits: list[Tensor], eps: float = 1e-7) -> Tensor:
    """Batch mean of 1/K sum_k KL(p_k || M), M = mean_k p_k, p_k = softmax(logits[k])."""
    probs = [F.softmax(z.float(), dim=1) for z in logits]
    log_mixture = (sum(probs) / len(probs)).clamp(eps, 1.0).log()
    kls = [F.kl_div(log_mixture, p, reduction="batchmean") for p in probs]
    return sum(kls) / len(kls)


def mix(x: Tensor, chains: list[Tensor], w: Tensor, b: Tensor) -> Tensor:
    """(1 - b) x + b sum_i w_i chains[i]: w (B, width) rows summing to 1, b (B,)."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    mixed = sum(w[:, i].view(shape) * c for i, c in enumerate(chains))
    return (1.0 - b.view(shape)) * x + b.view(shape) * mixed


def mixing_weights(n: int, width: int, alpha: float, device) -> tuple[Tensor, Tensor]:
    """w ~ Dirichlet(alpha 1_width) (n, width) and b ~ Beta(alpha, alpha) (n,)."""
    conc = torch.full((width,), float(alpha), device=device)
    w = torch.distributions.Dirichlet(conc).sample((n,))
    a = torch.tensor(float(alpha), device=device)
    b = torch.distributions.Beta(a, a).sample((n,))
    return w, b


@torch.no_grad()
def augmix_view(x: Tensor, width: int = 3, depth: int = 3, severity: float = 3.0,
                alpha: float = 1.0) -> Tensor:
    """One AugMix view of each image of x (B, C, H, W) in [0, 1], or of each clip of
    x (B, T, C, H, W) with one draw per clip (see `_image_ops.per_clip`)."""
    if x.dim() == 5:
        return per_clip(augmix_view, x, width, depth, severity, alpha)
    chains = [random_chain(x, depth, severity) for _ in range(width)]
    w, b = mixing_weights(x.shape[0], width, alpha, x.device)
    return mix(x, chains, w.to(x.dtype), b.to(x.dtype))


@dataclass
class AugMixParams:
    lam: float = 12.0  # weight of the Jensen-Shannon consistency term
    width: int = 3  # chains per view
    depth: int = 3  # maximum chain depth (each chain's depth is drawn from 1..depth)
    severity: float = 3.0  # operation severity, 0-10
    alpha: float = 1.0  # Dirichlet and Beta concentration

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1:
            raise ValueError("augmix.width and augmix.depth must be at least 1")
        if self.alpha <= 0 or self.lam < 0:
            raise ValueError("augmix.alpha must be positive and augmix.lam non-negative")
        if not 0.1 <= self.severity <= 10.0:
            raise ValueError(f"augmix.severity must lie in [0.1, 10]; got {self.severity}")


@methods.register("augmix")
class AugMix(LateFusion):
    """AugMix (Hendrycks et al., ICLR 2020) on image modalities, JS consistency, late fusion."""

    family = "augmentation"
    citation = ("Hendrycks et al., AugMix: A Simple Data Processing Method to Improve "
                "Robustness and Uncertainty, ICLR 2020")
    # aug() (width 3, depth U{1,2,3}, severity 3, Dirichlet(1) / Beta(1, 1) mixing) and the
    # JS loss (weight 12, mixture clamped to [1e-7, 1]) of train()
    reference = "google-research/augmix@a43b785668b38f5a1fef90793d8b23f43729aeaf:cifar.py"
    Params = AugMixParams

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        p = self.params
        images = [m for m in image_modalities(self.ctx, batch) if m in self.encoders]
        if not images:
            return {"loss": F.cross_entropy(self(batch), batch.y)}
        z = {}
        for m, encoder in self.encoders.items():
            x = batch.inputs[m]
            if m in images:
                keep = batch.present[m].view(-1, *([1] * (x.dim() - 1)))
                views = [torch.where(keep, augmix_view(x, p.width, p.depth, p.severity,
                                                       p.alpha), x) for _ in range(2)]
                z[m] = encoder(torch.cat([x, *views]))
            else:
                z[m] = encoder(x).repeat(3, 1)
        present = {m: v.repeat(3) for m, v in batch.present.items()}
        clean, aug1, aug2 = self.fusion(z, present).chunk(3)
        out = {"ce": F.cross_entropy(clean, batch.y), "js": js_divergence([clean, aug1, aug2])}
        out["loss"] = out["ce"] + p.lam * out["js"]
        return out
