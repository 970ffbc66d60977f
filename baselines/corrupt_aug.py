"""Corruption augmentation: train on randomly corrupted inputs, with corruptions the
evaluation grid does not use.

Data augmentation as the generic robustness baseline, in the protocol of AugMix
(D. Hendrycks, N. Mu, E. D. Cubuk, B. Zoph, J. Gilmer, B. Lakshminarayanan, "AugMix: A
Simple Data Processing Method to Improve Robustness and Uncertainty", ICLR 2020): the
training-time operations must be disjoint from the test corruptions, otherwise the
benchmark measures memorisation of its own corruptions.

At training time each present modality of each sample is corrupted with probability p,
in torch on the batch, then
    loss = CE(W [z_1(x~_1); ...; z_M(x~_M)] + b, y)         (concat late fusion).
Nothing is corrupted at test time. The corruption depends on the modality's kind (from
the method context's specs, not the tensor's rank):
  images (B, C, H, W): an AugMix chain (depth 1-3) of AugMix's operations (autocontrast,
    equalize, posterize, solarize, rotate, shear, translate; baselines/_image_ops.py).
  clips (B, T, C, H, W): the same, frame by frame with one draw per clip (one chain,
    magnitude and choice for all T frames; `_image_ops.per_clip`): a corrupted clip stays
    temporally coherent, like the grid's, which keeps a corruption's kind and severity
    for the whole clip; per-frame draws would add flicker no test clip has.
  audio waveforms (B, T): one of gain U(-12, +6) dB (not clipped), a circular time shift
    of up to +-T/4, or a random EQ: a spectral tilt of U(-3, 3) dB/octave about 1/8 of
    the Nyquist frequency (1 kHz at 16 kHz), limited to +-12 dB, applied through rfft.
  anything else: left as is.
The grid uses the 19 ImageNet-C corruptions and, for audio, gaussian/pink/brown noise,
pitch shift, time stretch, clipping, mp3, low-pass, band-stop, time mask and reverb:
none of these. (The tilt is a filter, like low-pass and band-stop, but a gentle
broadband one that removes no band.)

seen = True instead trains on cheap torch re-implementations of a few of the grid's own
corruption kinds: additive Gaussian noise on images (std uniform over the grid's
gaussian_noise range at the severity scale of the image's size, `corruptions.scales`:
0.04-0.10 at the cifar scale of 32 px images, 0.08-0.38 at the imagenet scale; clipped
to [0, 1]) or a 3x3 / 5x5 box blur (a stand-in for the blur family), and additive white
Gaussian noise on audio at SNR U(-5, 20) dB (the grid's range). It is an upper bound ("the
test corruptions were seen"), not a fair baseline.

Hyper-parameters: p = 0.5 (per modality per sample), seen = False, severity = 3 (AugMix's
operation severity, 0-10 scale).

Deviation: AugMix itself mixes several chains and adds a Jensen-Shannon consistency loss
(that is the `augmix` baseline); here each corrupted input is one plain chain, which
is the "augment with disjoint corruptions" baseline the other methods are compared to.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from baselines._image_ops import RANK_KINDS, modality_kinds, per_clip, random_chain
from baselines.late_fusion import LateFusion
from corruptions.scales import TABLES, auto_scale
from rambench.batch import Batch
from rambench.methods import methods

AUDIO_OPS = ("gain", "time_shift", "eq_tilt")
GAIN_DB = (-12.0, 6.0)
MAX_SHIFT_FRACTION = 0.25
TILT_DB_PER_OCTAVE = 3.0
TILT_LIMIT_DB = 12.0
SEEN_AUDIO_SNR_DB = (-5.0, 20.0)


def _uniform(n: int, lo: float, hi: float, like: Tensor) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, device=like.device, dtype=like.dtype)


def gain(x: Tensor, db: Tensor) -> Tensor:
    """Scale each waveform (B, T) by `db` (B,) decibels."""
    return x * (10.0 ** (db / 20.0)).unsqueeze(1)


def circular_shift(x: Tensor, shift: Tensor) -> Tensor:
    """Roll each waveform (B, T) right by `shift` (long (B,)) samples, wrapping around."""
    t = x.shape[1]
    idx = (torch.arange(t, device=x.device).unsqueeze(0) - shift.unsqueeze(1)) % t
    return x.gather(1, idx)


def tilt_gains_db(num_bins: int, db_per_octave: Tensor) -> Tensor:
    """(B, F) gain in dB of an rfft bin k: slope * log2(k / k0), k0 = (F - 1) / 8, bins
    below k0 / 20 treated as k0 / 20, limited to +-TILT_LIMIT_DB."""
    k0 = (num_bins - 1) / 8.0
    k = torch.arange(num_bins, device=db_per_octave.device, dtype=db_per_octave.dtype)
    octaves = torch.log2(k.clamp_min(k0 / 20.0) / k0)
    return (db_per_octave.unsqueeze(1) * octaves).clamp(-TILT_LIMIT_DB, TILT_LIMIT_DB)


def spectral_tilt(x: Tensor, db_per_octave: Tensor) -> Tensor:
    """Filter each waveform (B, T) with a tilt of `db_per_octave` (B,)."""
    spec = torch.fft.rfft(x.float(), dim=1)
    g = 10.0 ** (tilt_gains_db(spec.shape[1], db_per_octave.float()) / 20.0)
    return torch.fft.irfft(spec * g, n=x.shape[1], dim=1).to(x.dtype)


@torch.no_grad()
def augment_audio(x: Tensor) -> Tensor:
    """One of AUDIO_OPS per waveform, uniformly, with a random magnitude."""
    n, t = x.shape
    op = torch.randint(len(AUDIO_OPS), (n,), device=x.device)
    db = torch.where(op == 0, _uniform(n, *GAIN_DB, x), torch.zeros(n, device=x.device))
    max_shift = int(MAX_SHIFT_FRACTION * t)
    shift = torch.randint(-max_shift, max_shift + 1, (n,), device=x.device)
    shift = torch.where(op == 1, shift, torch.zeros_like(shift))
    slope = _uniform(n, -TILT_DB_PER_OCTAVE, TILT_DB_PER_OCTAVE, x)
    out = circular_shift(gain(x, db), shift)
    tilt = op == 2
    if tilt.any():
        out[tilt] = spectral_tilt(out[tilt], slope[tilt])
    return out


@torch.no_grad()
def seen_image(x: Tensor) -> Tensor:
    """Additive Gaussian noise (clipped to [0, 1]) or a box blur, each w.p. 1/2."""
    n = x.shape[0]
    table = TABLES["gaussian_noise"][auto_scale(*x.shape[-2:])]  # the grid's range here
    lo, hi = table.at(1)[0], table.at(5)[0]
    std = _uniform(n, lo, hi, x).view(-1, 1, 1, 1)
    noisy = (x + std * torch.randn_like(x)).clamp(0.0, 1.0)
    big = (torch.rand(n, device=x.device) < 0.5).view(-1, 1, 1, 1)
    blur3 = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    blur5 = F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    blurred = torch.where(big, blur5, blur3)
    return torch.where((torch.rand(n, device=x.device) < 0.5).view(-1, 1, 1, 1), noisy, blurred)


@torch.no_grad()
def seen_audio(x: Tensor) -> Tensor:
    """Additive white Gaussian noise at an SNR of U(-5, 20) dB w.r.t. each clip's RMS."""
    snr_db = _uniform(x.shape[0], *SEEN_AUDIO_SNR_DB, x).unsqueeze(1)
    rms = x.square().mean(dim=1, keepdim=True).sqrt()
    return x + rms / 10.0 ** (snr_db / 20.0) * torch.randn_like(x)


@torch.no_grad()
def corrupt(x: Tensor, where: Tensor, seen: bool = False, severity: float = 3.0,
            kind: str | None = None) -> Tensor:
    """x with rows `where` (bool (B,)) corrupted according to the modality's `kind`
    ("image": still images (B, C, H, W) or clips (B, T, C, H, W); "audio": waveforms
    (B, T); see the module). kind None: the legacy guess from the rank (RANK_KINDS)."""
    if kind is None:
        kind = RANK_KINDS.get(x.dim())
    if not where.any() or kind not in ("image", "audio"):
        return x
    out = x.clone()
    sub = x[where]
    if kind == "image":
        out[where] = per_clip(seen_image, sub) if seen else per_clip(random_chain, sub, 3,
                                                                      severity)
    else:
        out[where] = seen_audio(sub) if seen else augment_audio(sub)
    return out


def corrupt_inputs(batch: Batch, where: dict[str, Tensor], seen: bool = False,
                   severity: float = 3.0, kinds: dict[str, str | None] | None = None
                   ) -> Batch:
    """A copy of `batch` whose modality m is corrupted on the rows where[m] & present[m];
    `kinds` (modality -> "image" / "audio", e.g. `_image_ops.modality_kinds`) says how;
    a modality missing from it falls back to the legacy rank rule."""
    kinds = kinds or {}
    inputs = dict(batch.inputs)
    for m, rows in where.items():
        inputs[m] = corrupt(inputs[m], rows & batch.present[m], seen, severity, kinds.get(m))
    return Batch(inputs, dict(batch.present), batch.y, batch.index)


@dataclass
class CorruptAugParams:
    p: float = 0.5  # probability of corrupting each present modality of each sample
    seen: bool = False  # True: train on the grid's own corruption kinds (an upper bound)
    severity: float = 3.0  # AugMix operation severity, 0-10

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"corrupt_aug.p must lie in [0, 1]; got {self.p}")
        if not 0.1 <= self.severity <= 10.0:
            raise ValueError(f"corrupt_aug.severity must lie in [0.1, 10]; got {self.severity}")


@methods.register("corrupt_aug")
class CorruptAug(LateFusion):
    """Corruption augmentation with operations disjoint from the grid, concat late fusion."""

    family = "augmentation"
    citation = ("training on corruptions disjoint from the test set, with AugMix's operations "
                "(Hendrycks et al., ICLR 2020)")
    Params = CorruptAugParams

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        p = self.params
        where = {m: torch.rand(len(batch), device=batch.y.device) < p.p for m in batch.inputs}
        corrupted = corrupt_inputs(batch, where, p.seen, p.severity,
                                   modality_kinds(self.ctx, batch))
        return {"loss": F.cross_entropy(self(corrupted), batch.y)}
