"""OGM-GE: On-the-fly Gradient Modulation with Generalisation Enhancement (reimplementation).

X. Peng, Y. Wei, A. Deng, D. Wang, D. Hu, "Balanced Multimodal Learning via On-the-fly
Gradient Modulation", CVPR 2022 (arXiv:2203.15332).

The model is concatenation late fusion, logits = W [z_1; ...; z_M] + b (features of absent
modalities zeroed), trained with  loss = CE(logits, y). Its logits split into per-modality
contributions  f_m = W_m z_m + b / M  (W_m the columns of W that read z_m; sum_m f_m = logits).
At every training step, from the batch:

    s_m   = mean_i softmax(f_m(x_i))[y_i]        over the samples where m is present
    rho_m = s_m / mean_{j != m} s_j               (two modalities: s_1 / s_2, as in the paper)
    k_m   = 1 - tanh(alpha * relu(rho_m - 1))     (< 1 only for the dominant modality)

and, while modulation_starts <= epoch <= modulation_ends, the gradient of every parameter of
encoder m is replaced by  k_m g + h,  h ~ N(0, std(g)^2)  (GE: Gaussian noise whose standard
deviation is that of the unmodulated gradient tensor g, drawn afresh every step).
The fusion classifier is never modulated.

How the modulation is done without touching the optimiser: training_loss registers a hook on
each encoder output z_m that multiplies the incoming gradient dL/dz_m by k_m. Encoder m's
parameters theta_m reach the loss only through z_m, and backpropagation is linear in the
upstream gradient, dL/dtheta_m = (dz_m/dtheta_m)^T dL/dz_m, so every parameter gradient of
encoder m is scaled by exactly k_m. The GE noise needs the parameter gradient itself, so it is
added by one-shot hooks on the encoder parameters: each fires at most once (on the backward of
the loss it was registered for) and all are removed at the start of the next training_loss,
so hooks never accumulate across steps and a later backward is left alone.

Hyper-parameters (defaults): alpha = 0.1 (the value quoted for CREMA-D, the audio-visual setting
closest to avdigits; the paper tunes it per dataset), modulation_starts = 0 and
modulation_ends = 50 (epochs, inclusive: with the benchmark's schedules of at most 50 epochs
OGM-GE is on for the whole run), generalization_enhancement = True.

Missing modalities: absent features are zeroed before the classifier, so an absent input has
no influence on the prediction; the scores s_m average over present samples only (with every
modality present this is the paper's ratio of batch sums), and a modality absent from the
whole batch is left unmodulated and out of the others' reference mean.

Deviations:
- the benchmark trains with AdamW. Adam divides each update by a running root-mean-square of
  the gradient, so a slowly varying factor k_m is largely normalised away (the paper uses SGD,
  where k_m directly scales the step). The gradients are modulated exactly as in the paper,
  but the effect on the updates is weaker; the GE noise, by contrast, does change them;
- every parameter of the modulated encoder is modulated (the authors modulate the encoder's
  convolution weights); the GE noise uses the per-tensor standard deviation of the minibatch
  gradient as the paper's stand-in for the SGD-noise covariance, and is added to every
  modality's encoder while modulation is on (k_m = 1 for the non-dominant ones);
- for more than two modalities, rho_m compares with the mean score of the other modalities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods
from rambench.models.fusion import ConcatFusion, masked_features


@dataclass
class OGMGEParams:
    alpha: float = 0.1  # modulation strength
    modulation_starts: int = 0  # first epoch with modulation (0-based)
    modulation_ends: int = 50  # last epoch with modulation (inclusive)
    generalization_enhancement: bool = True  # GE: add gradient-scaled Gaussian noise

    def __post_init__(self) -> None:
        if self.alpha < 0:
            raise ValueError("ogm_ge.alpha must be >= 0")


def ogm_coefficients(scores: Tensor, alpha: float, valid: Tensor | None = None) -> Tensor:
    """k (M,) = 1 - tanh(alpha relu(rho - 1)), rho_m = s_m / mean_{j != m, valid} s_j.

    Modalities that are not `valid`, or that have no valid other modality, get k = 1."""
    valid = torch.ones_like(scores, dtype=torch.bool) if valid is None else valid
    s = torch.where(valid, scores, torch.zeros_like(scores))
    others = valid.sum() - valid.to(scores.dtype)
    mean_others = (s.sum() - s) / others.clamp(min=1)
    rho = s / mean_others.clamp(min=1e-12)
    k = 1.0 - torch.tanh(alpha * F.relu(rho - 1.0))
    return torch.where(valid & (others > 0), k, torch.ones_like(k))


def _scale_hook(k: float):
    return lambda grad: grad * k


def _noise_hook(k: float):
    """Adds N(0, std(g)^2) to the modulated gradient k g it receives; fires at most once."""
    fired = False

    def hook(grad: Tensor) -> Tensor | None:
        nonlocal fired
        if fired:
            return None
        fired = True
        if grad.numel() < 2:
            return None
        std = grad.float().std() / k  # the std of the unmodulated gradient g
        return grad + torch.randn_like(grad) * std.to(grad.dtype)

    return hook


@methods.register("ogm_ge")
class OGMGE(Method):
    """OGM-GE (Peng et al., CVPR 2022): slow down the dominant encoder's gradient, add noise."""

    family = "imbalance"
    citation = (
        "Peng et al., Balanced Multimodal Learning via On-the-fly Gradient Modulation, CVPR 2022"
    )
    Params = OGMGEParams

    def __init__(self, ctx: MethodContext, params: OGMGEParams | None = None):
        super().__init__(ctx, params)
        self.fusion = ConcatFusion(ctx.modalities, ctx.feature_dim, ctx.num_classes)
        self.epoch = 0
        self._handles: list = []

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        self.epoch = epoch

    @property
    def modulating(self) -> bool:
        p = self.params
        return p.modulation_starts <= self.epoch <= p.modulation_ends

    def forward(self, batch: Batch) -> Tensor:
        return self.fusion(self.encode(batch), batch.present)

    def contributions(self, z: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-modality logits f_m = W_m z_m + b / M of the (already masked) features."""
        w, b = self.fusion.classifier.weight, self.fusion.classifier.bias
        d, n = self.ctx.feature_dim, len(self.ctx.modalities)
        return {m: z[m] @ w[:, i * d:(i + 1) * d].T + b / n
                for i, m in enumerate(self.ctx.modalities)}

    def coefficients(self, z: dict[str, Tensor], batch: Batch) -> Tensor:
        """k (M,) from this batch's per-modality scores (no gradient)."""
        mods = self.ctx.modalities
        with torch.no_grad():
            contrib = self.contributions(masked_features(z, batch.present))
            scores, valid = [], []
            for m in mods:
                keep = batch.present[m]
                p_true = contrib[m].float().softmax(dim=1).gather(1, batch.y.unsqueeze(1))
                valid.append(bool(keep.any()))
                scores.append(p_true.squeeze(1)[keep].mean() if keep.any() else p_true.sum() * 0)
            return ogm_coefficients(torch.stack(scores), self.params.alpha,
                                    torch.tensor(valid, device=scores[0].device))

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        self.remove_hooks()  # the previous step's one-shot hooks
        z = self.encode(batch)
        out = {"ce": F.cross_entropy(self.fusion(z, batch.present), batch.y)}
        k = self.coefficients(z, batch)
        for i, m in enumerate(self.ctx.modalities):
            out[f"k_{m}"] = k[i]
        out["loss"] = out["ce"]
        if self.modulating and torch.is_grad_enabled():
            for i, m in enumerate(self.ctx.modalities):
                k_m = float(k[i])
                if k_m != 1.0 and z[m].requires_grad:
                    self._handles.append(z[m].register_hook(_scale_hook(k_m)))
                if self.params.generalization_enhancement:
                    for param in self.encoders[m].parameters():
                        if param.requires_grad:
                            self._handles.append(param.register_hook(_noise_hook(k_m)))
        return out
