"""OGM-GE: On-the-fly Gradient Modulation with Generalisation Enhancement.

X. Peng, Y. Wei, A. Deng, D. Wang, D. Hu, "Balanced Multimodal Learning via On-the-fly
Gradient Modulation", CVPR 2022 (arXiv:2203.15332). Follows the authors' code,
GeWu-Lab/OGM-GE_CVPR2022@343dc1d95c9bda88f105c0da8d24f185e0e98b54:main.py
(train_epoch, lines 80-153; optimiser lines 246-247; README "Tips" for alpha).

The model is concatenation late fusion, logits = W [z_1; ...; z_M] + b (features of absent
modalities zeroed), trained with  loss = CE(logits, y). Its logits split into per-modality
contributions  f_m = W_m z_m + b / M  (W_m the columns of W that read z_m; sum_m f_m = logits;
main.py lines 88-93 use the same halves of fc_out and bias / 2). At every training step:

    s_m   = mean_i softmax(f_m(x_i))[y_i]      over the samples where m is present
    rho_m = s_m / mean_{j != m} s_j             (two modalities: s_v / s_a, main.py 105-109)
    k_m   = 1 - tanh(alpha * rho_m)  if rho_m > 1,  else 1          (main.py 119-124)

and, while modulation_starts <= epoch <= modulation_ends (main.py 132), the gradient of every
modulated parameter theta of encoder m is replaced by  k_m g + h,  h ~ N(0, (std(g) + 1e-8)^2)
(GE; g the unmodulated gradient of that tensor, drawn afresh every step, main.py 136-148).
The noise is added to every modality's encoder, also where k_m = 1, as in the reference.
The fusion classifier is never modulated. Only a dominant modality (rho > 1) is slowed
down; note the jump at rho = 1: k falls from 1 to 1 - tanh(alpha) there, which is what the
reference computes (relu(rho) = rho for rho > 0 in its `1 - tanh(alpha * relu(ratio))`).

Which parameters are modulated (`modulate`): "conv" (default) = the weights of the
encoder's convolution layers, as in the reference, which modulates the 4-D gradients of
audio_net / visual_net (its ResNet-18s: conv weights only; BatchNorm affine parameters and
everything else keep their plain gradient). rambench's encoders (SmallCNN, AudioCNN,
ResNet-18, rambench/models/encoders.py and resnet.py) are convolutional too, so this
selects exactly their Conv weights; their BatchNorm parameters and the final Linear
projection `proj` (which the reference's encoders do not have: their projection is part
of fc_out) are left unmodulated. An encoder with no convolution at all (a feature-level
encoder, e.g. in tests) falls back to its weight matrices (parameters with ndim >= 2), so
that OGM-GE does not silently become late fusion. "all" = every parameter of the encoder
(rambench's previous behaviour).

The modulation uses one-shot hooks on the encoder parameters: each multiplies the
gradient it receives by k_m and adds the GE noise, fires at most once (on the backward of
the loss it was registered for), and all are removed at the start of the next
training_loss, so hooks never accumulate across steps and a later backward is left alone.
For a parameter used several times in the graph the hook sees the summed gradient.

Hyper-parameters (defaults): alpha = 0.8 (the reference README recommends 0.8 for CREMA-D,
rambench's OGM-GE setting, and 0.1 for VGGSound; its "default modulation setting" line
quotes 0.1), modulation_starts = 0, modulation_ends = 50 (main.py's defaults; epochs,
0-based, inclusive: with the reference's 100 epochs modulation is on for the first 51),
generalization_enhancement = True (--modulation OGM_GE), coefficient = "reference",
modulate = "conv".

Switches back to rambench's previous form: coefficient = "shifted" gives
k_m = 1 - tanh(alpha * relu(rho_m - 1)) (continuous at rho = 1, much weaker: for alpha = 0.1
and rho = 1.5, 0.95 instead of 0.85); modulate = "all" modulates every encoder parameter;
alpha = 0.1 was the previous default.

Optimiser: the reference trains with SGD, lr 1e-3, momentum 0.9, weight decay 1e-4, x0.1
step decay at epoch 70, 100 epochs (main.py 34-39, 246-247). The harness owns the
optimiser; the real audio-visual datasets (cremad, ks, ave) default to exactly these
settings (rambench/datasets/defaults/*.yaml); avdigits and avmnist use their own defaults
(AdamW + one-cycle for avdigits), set `--set train.optimizer=sgd ...` to match. Under Adam
the factor k_m is largely normalised away (Adam divides each step by a running RMS of the
gradient), while the GE noise still changes the updates.

Remaining deviations:
- missing modalities (not in the reference): absent features are zeroed before the
  classifier; the scores s_m average over present samples only (with every modality
  present this is the reference's ratio of batch sums); a modality absent from the whole
  batch is left unmodulated and out of the others' reference mean;
- more than two modalities (not in the reference): rho_m compares with the mean score of
  the other modalities; for two it is the reference's ratio;
- a tie rho_a = rho_v = 1 (measure zero) leaves both unmodulated, as the paper's Eq. 10
  says; main.py's else-branch would modulate audio with 1 - tanh(alpha);
- a tensor with a single element gets no GE noise (its std is undefined); conv weights
  always have more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method, MethodContext, methods
from rambench.models.fusion import ConcatFusion
from rambench.params import param

GE_EPS = 1e-8  # main.py adds 1e-8 to the standard deviation of the GE noise


@dataclass
class OGMGEParams:
    alpha: float = param(0.8, ge=0)  # modulation strength (README: 0.8 CREMA-D, 0.1 VGGSound)
    modulation_starts: int = param(0, ge=0)  # first epoch with modulation (0-based)
    modulation_ends: int = param(50, ge=0)  # last epoch with modulation (inclusive)
    generalization_enhancement: bool = True  # GE: add gradient-scaled Gaussian noise
    # k for rho > 1: "reference" 1 - tanh(alpha rho); "shifted" 1 - tanh(alpha relu(rho - 1))
    coefficient: Literal["reference", "shifted"] = "reference"
    # which encoder parameters: "conv" weights (reference) or "all"
    modulate: Literal["conv", "all"] = "conv"

    def __post_init__(self) -> None:
        if self.alpha < 0:
            raise ValueError("ogm_ge.alpha must be >= 0")


def ogm_ratios(scores: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(rho (M,), usable (M,) bool): rho_m = s_m / mean_{j != m, valid} s_j.

    usable is False for a modality that is not valid or has no valid other modality."""
    valid = torch.ones_like(scores, dtype=torch.bool) if valid is None else valid
    s = torch.where(valid, scores, torch.zeros_like(scores))
    others = valid.sum() - valid.to(scores.dtype)
    mean_others = (s.sum() - s) / others.clamp(min=1)
    return s / mean_others.clamp(min=1e-12), valid & (others > 0)


def ogm_coefficients(scores: Tensor, alpha: float, valid: Tensor | None = None,
                     form: str = "reference") -> Tensor:
    """k (M,) from per-modality scores s (M,).

    form "reference": k = 1 - tanh(alpha rho) where rho > 1, else 1 (OGM-GE main.py);
    form "shifted":   k = 1 - tanh(alpha relu(rho - 1)).
    Modalities that are not `valid`, or that have no valid other modality, get k = 1."""
    rho, usable = ogm_ratios(scores, valid)
    if form == "reference":
        k = torch.where(rho > 1, 1.0 - torch.tanh(alpha * rho), torch.ones_like(rho))
    elif form == "shifted":
        k = 1.0 - torch.tanh(alpha * F.relu(rho - 1.0))
    else:
        raise ValueError(f"unknown OGM-GE coefficient form {form!r}")
    return torch.where(usable, k, torch.ones_like(k))


def modulated_parameters(encoder: nn.Module, modulate: str) -> list[nn.Parameter]:
    """The parameters of `encoder` whose gradients OGM-GE modulates.

    "all": every trainable parameter. "conv": the weights of its convolution layers (the
    reference modulates the 4-D conv-weight gradients of its ResNet encoders); an encoder
    without convolutions falls back to its weight matrices (ndim >= 2)."""
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    if modulate == "all":
        return trainable
    conv = [mod.weight for mod in encoder.modules()
            if isinstance(mod, nn.modules.conv._ConvNd) and mod.weight.requires_grad]
    return conv or [p for p in trainable if p.ndim >= 2]


def _modulation_hook(k: float, noise: bool):
    """Replaces the gradient g it receives by k g (+ N(0, (std(g) + 1e-8)^2) if `noise`);
    fires at most once."""
    fired = False

    def hook(grad: Tensor) -> Tensor | None:
        nonlocal fired
        if fired:
            return None
        fired = True
        out = grad * k if k != 1.0 else grad
        if noise and grad.numel() > 1:
            std = grad.float().std() + GE_EPS  # std of the unmodulated gradient g
            out = out + torch.randn_like(grad) * std.to(grad.dtype)
        return out

    return hook


@methods.register("ogm_ge")
class OGMGE(Method):
    """OGM-GE (Peng et al., CVPR 2022): slow down the dominant encoder's gradient, add noise."""

    family = "imbalance"
    citation = (
        "Peng et al., Balanced Multimodal Learning via On-the-fly Gradient Modulation, CVPR 2022"
    )
    reference = "GeWu-Lab/OGM-GE_CVPR2022@343dc1d95c9bda88f105c0da8d24f185e0e98b54:main.py"
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

    def scores(self, z: dict[str, Tensor], batch: Batch) -> tuple[Tensor, Tensor]:
        """(s (M,), valid (M,) bool): mean true-class probability of each modality's
        contribution over the samples where it is present (no gradient)."""
        with torch.no_grad():
            contrib = self.contributions(self.mask_absent(z, batch))
            scores, valid = [], []
            for m in self.ctx.modalities:
                keep = batch.present[m]
                p_true = contrib[m].float().softmax(dim=1).gather(1, batch.y.unsqueeze(1))
                valid.append(bool(keep.any()))
                scores.append(p_true.squeeze(1)[keep].mean() if keep.any() else p_true.sum() * 0)
            return torch.stack(scores), torch.tensor(valid, device=scores[0].device)

    def coefficients(self, z: dict[str, Tensor], batch: Batch) -> Tensor:
        """k (M,) from this batch's per-modality scores (no gradient)."""
        scores, valid = self.scores(z, batch)
        return ogm_coefficients(scores, self.params.alpha, valid, self.params.coefficient)

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
            noise = self.params.generalization_enhancement
            for i, m in enumerate(self.ctx.modalities):
                k_m = float(k[i])
                if k_m == 1.0 and not noise:
                    continue
                for p in modulated_parameters(self.encoders[m], self.params.modulate):
                    self._handles.append(p.register_hook(_modulation_hook(k_m, noise)))
        return out
