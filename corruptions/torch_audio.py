"""The 11 audio corruptions as batched torch functions on (B, T) float32 waveforms, any
device, with the severity tables of `corruptions.audio` (same audiomentations transforms).

How each one relates to the reference:

* same algorithm, torch's random numbers: gaussian_noise (AddGaussianSNR), pink_noise and
  brown_noise (AddColorNoise: white noise shaped by an n_fft-point random-phase FIR,
  scaled to the SNR), time_mask (one mask per quarter, same lengths and fades);
* exact ports: clipping (the same percentiles, linear interpolation as numpy);
  low_pass, band_stop and reverb, which are linear and time-invariant: the reference
  transform's response to a unit impulse of the clip's length is measured once (per
  severity, sample rate and length) and applied as an FFT convolution, which is exactly
  the reference's causal filtering / convolution truncated to the clip;
* run by the reference on the CPU, clip by clip, on the numpy batch and shared with
  worker processes (`corruptions.reference_pool`): pitch_shift, time_stretch
  (signalsmith-stretch) and mp3_compression (LAME): their specs' fidelity class says so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from audiomentations.core.utils import get_crossfade_mask_pair

from corruptions import _torch_ops as ops
from corruptions import audio as _audio
from corruptions.reference_pool import reference_map

TorchAudioFn = Callable[[torch.Tensor, int, Sequence[int], int], torch.Tensor]


def _value(name: str, severity: int):
    return _audio.CORRUPTIONS[name].value(severity)


def _noise_scale(x: torch.Tensor, snr_db: float) -> torch.Tensor:
    """audiomentations' desired noise RMS: RMS(clip) / 10^(snr / 20), per clip (B, 1)."""
    rms = x.double().pow(2).mean(-1, keepdim=True).sqrt()
    return (rms / 10 ** (snr_db / 20)).to(x.dtype)


def gaussian_noise(x, severity, seeds, sample_rate):
    gens = ops.generators(seeds, x.device)
    return x + _noise_scale(x, _value("gaussian_noise", severity)) * ops.randn(gens, x.shape[-1])


def _color_noise(name: str, beta: float):
    n_fft = _audio.COLOR_NOISE_N_FFT[name]

    def apply(x, severity, seeds, sample_rate):
        gens = ops.generators(seeds, x.device)
        t = x.shape[-1]
        white = ops.randn(gens, t).double()  # float32 draws: 5x faster than float64's
        phases = ops.rand(gens, n_fft // 2 + 1, dtype=torch.float64)
        f = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64, device=x.device)
        f[0] = 1
        spectrum = torch.sqrt(1 / f ** beta) * torch.exp(2j * math.pi * phases)
        ir = torch.fft.irfft(spectrum, n=n_fft)  # (B, n_fft)
        noise = _convolve(white, ir)[..., (n_fft - 1) // 2:(n_fft - 1) // 2 + t]  # "same"
        noise = noise / noise.pow(2).mean(-1, keepdim=True).sqrt()
        return x + noise.to(x.dtype) * _noise_scale(x, _value(name, severity))

    return apply


def _convolve(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Full linear convolution along the last axis by FFT: length len(x) + len(h) - 1."""
    n = x.shape[-1] + h.shape[-1] - 1
    size = ops.fft_size(n)
    y = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(h, size), size)
    return y[..., :n]


def clipping(x, severity, seeds, sample_rate):
    """Clipped to the lower / 2 and 100 - lower / 2 percentiles, numpy's "linear" method:
    the order statistics k and k + 1 (from 0) around q (n - 1), interpolated. Statistic k
    is selected (not sorted); k + 1 is the same value if more than k + 1 samples are at
    most it, else the smallest sample above it."""
    lower = int(_value("clipping", severity) / 2)
    n = x.shape[-1]
    bounds = []
    for q in (lower / 100, 1 - lower / 100):
        position = q * (n - 1)
        k = int(position)
        below = x.kthvalue(k + 1, dim=-1, keepdim=True).values
        above = torch.where(x > below, x, torch.inf).amin(-1, keepdim=True)
        above = torch.where((x <= below).sum(-1, keepdim=True) > k + 1, below,
                            torch.minimum(above, x.amax(-1, keepdim=True)))
        bounds.append(torch.lerp(below.double(), above.double(), position - k).to(x.dtype))
    return torch.minimum(torch.maximum(x, bounds[0]), bounds[1])


def time_mask(x, severity, seeds, sample_rate):
    part = _value("time_mask", severity)
    gens = ops.generators(seeds, x.device)
    b, t = x.shape
    bounds = np.linspace(0, t, _audio.TIME_MASK_COUNT + 1).round().astype(int)
    envelope = torch.ones_like(x)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        n = stop - start
        if n <= 0:
            continue
        length = int(n * part)
        t0 = torch.stack([torch.randint(0, n - length + 1, (), generator=g, device=g.device)
                          for g in gens])[:, None]
        if length == 0:
            continue
        mask = torch.zeros(length, dtype=x.dtype, device=x.device)  # silence, faded in/out
        fade = min(int(round(sample_rate * _audio.TIME_MASK_FADE_S)), length // 2)
        if fade >= 2:
            fade_in, fade_out = (torch.from_numpy(f).to(x) for f in
                                 get_crossfade_mask_pair(fade, equal_energy=False))
            mask[:fade], mask[length - fade:] = fade_out, fade_in
        where = start + t0 + torch.arange(length, device=x.device)
        envelope.scatter_(1, where, mask.expand(b, -1))
    return x * envelope


@functools.lru_cache(maxsize=64)
def _linear_response(name: str, severity: int, sample_rate: int, length: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(h, z) such that the reference maps a clip x to conv(x, h)[:T] + x[0] * z.

    The filters start in the steady state of a constant x[0] (audiomentations passes
    `zi = sosfilt_zi(sos) * x[0]`), so they are linear in (x, x[0]) rather than plain
    convolutions: h is read from an impulse at t = 1 (where x[0] = 0), z from the one at
    t = 0 minus h. Reverb has no initial state, and its z comes out 0."""
    corruption = _audio.CORRUPTIONS[name]

    def response(at: int, n: int) -> np.ndarray:
        impulse = np.zeros(n, dtype=np.float32)
        impulse[at] = 1.0
        return corruption(impulse, severity, 0, sample_rate=sample_rate).astype(np.float64)

    h = response(1, length + 1)[1:]
    z = response(0, length) - h
    return h, z


def _linear_filter(name: str):
    def apply(x, severity, seeds, sample_rate):
        t = x.shape[-1]
        h, z = (torch.from_numpy(a).to(x.device)
                for a in _linear_response(name, severity, sample_rate, t))
        y = _convolve(x.double(), h)[..., :t] + x[:, :1].double() * z
        return y.to(x.dtype)

    return apply


def _reference(name: str):
    def apply(clips: np.ndarray, severity, seeds, sample_rate) -> np.ndarray:
        """The reference on the numpy batch, shared with worker processes."""
        return reference_map(_audio.CORRUPTIONS[name].reference, clips, severity, seeds,
                             sample_rate=sample_rate)

    return apply


# the functions each corruption's spec (`corruptions.audio`) names
pink_noise = _color_noise("pink_noise", 1.0)
brown_noise = _color_noise("brown_noise", 2.0)
pitch_shift = _reference("pitch_shift")
time_stretch = _reference("time_stretch")
mp3_compression = _reference("mp3_compression")
low_pass = _linear_filter("low_pass")
band_stop = _linear_filter("band_stop")
reverb = _linear_filter("reverb")
