"""Batched building blocks of the torch corruption backend: per-sample random draws,
separable filters with the reference libraries' border modes, linear resampling, shifts.

Everything works on tensors of any device. Random numbers come from one
`torch.Generator` per sample, seeded with that sample's seed, so a sample's corruption
depends on its seed alone, never on the batch it was processed in.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F


def generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    """One generator per sample on `device`, seeded with the sample's seed."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def draw(gens: list[torch.Generator], fn: Callable[[torch.Generator], torch.Tensor]
         ) -> torch.Tensor:
    """Stack `fn(generator)` over the samples: (B, *shape)."""
    return torch.stack([fn(g) for g in gens])


def randn(gens: list[torch.Generator], *shape: int,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal draws, (B, *shape)."""
    return draw(gens, lambda g: torch.randn(shape, generator=g, device=g.device, dtype=dtype))


def rand(gens: list[torch.Generator], *shape: int,
         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U[0, 1) draws, (B, *shape)."""
    return draw(gens, lambda g: torch.rand(shape, generator=g, device=g.device, dtype=dtype))


def uniform(gens: list[torch.Generator], low: float, high: float) -> torch.Tensor:
    """One scalar per sample, U(low, high): (B,) float64."""
    u = torch.stack([torch.rand((), generator=g, device=g.device, dtype=torch.float64)
                     for g in gens])
    return low + (high - low) * u


# bins of the uniform draw in `poisson_of_levels`' lookup table (per intensity level)
POISSON_BINS = 4096


@functools.lru_cache(maxsize=16)
def _poisson_tables(rate: float) -> tuple[int, np.ndarray, np.ndarray]:
    """For lam = rate * level / 255, level 0..255: the CDF F(level, k), k < K (the tail
    beyond K, far under 1e-15, folded into k = K - 1), as `level + F` flattened (sorted);
    and per (level, bin j) of u in [j / B, (j + 1) / B) the count it inverts to, or -1
    when a CDF value falls inside the bin."""
    k = int(rate + 12 * math.sqrt(rate) + 20)
    lam = np.arange(256)[:, None] / 255 * rate
    cdf = scipy.stats.poisson.cdf(np.arange(k)[None, :], lam)
    cdf[:, -1] = 1.0
    edges = np.arange(POISSON_BINS + 1) / POISSON_BINS
    counts = np.stack([np.searchsorted(row, edges, side="right") for row in cdf])
    counts = np.minimum(counts, k - 1)
    bins = np.where(counts[:, :-1] == counts[:, 1:], counts[:, :-1], -1)
    return k, bins.astype(np.int16).ravel(), (np.arange(256)[:, None] + cdf).ravel()


def poisson_of_levels(levels: torch.Tensor, rate: float, u: torch.Tensor) -> torch.Tensor:
    """Poisson counts with mean rate * levels / 255, for integer `levels` 0..255 (floats)
    and uniforms `u` of the same shape, by inverting the CDF: the count is the number of
    k with F(k) <= u (Poisson to the resolution of u: 2^-24 for float32). A uint8 image
    has 256 means only, so the inversion is a table lookup by (level, bin of u); the few
    draws whose bin holds a CDF value (~0.5 %) are resolved by a binary search. Several
    times faster than `torch.poisson`, whose per-value rejection sampler dominates shot
    noise on the CPU."""
    k, bins, cdf = _poisson_tables(float(rate))
    bins = torch.from_numpy(bins).to(levels.device)
    index = (levels * POISSON_BINS).add_((u * POISSON_BINS).floor_()).long()
    counts = bins.take(index)
    pending = (counts < 0).nonzero(as_tuple=True)
    if pending[0].numel():
        level = levels[pending].double()
        found = torch.searchsorted(torch.from_numpy(cdf).to(levels.device),
                                   level + u[pending].double(), right=True)
        counts[pending] = (found - level.long() * k).to(counts.dtype)
    return counts


def fft_size(n: int) -> int:
    """The FFT length for at least n values: the least 2^a, 3 * 2^a or 9 * 2^a (torch's CPU
    FFTs of these are the fastest; 5-smooth sizes such as scipy's `next_fast_len` picks ran
    up to 2x slower, a prime size 20x)."""
    return min(f << max(0, (-(-n // f) - 1).bit_length()) for f in (1, 3, 9))


# ---------------------------------------------------------------------------- borders

def border_index(n: int, pad: int, mode: str, device: torch.device) -> torch.Tensor:
    """Indices into an axis of length n, padded by `pad` on both sides.

    mode (scipy.ndimage names): "nearest" (replicate edge), "reflect" (scipy's
    half-sample symmetric: d c b a | a b c d | d c b a), "mirror" (cv2's default
    BORDER_REFLECT_101: d c b | a b c d | c b a)."""
    i = torch.arange(-pad, n + pad, device=device)
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if mode == "reflect":
        period = 2 * n
        i = i % period
        return torch.where(i < n, i, period - 1 - i)
    if mode == "mirror":
        if n == 1:
            return torch.zeros_like(i)
        period = 2 * n - 2
        i = i % period
        return torch.where(i < n, i, period - i)
    raise ValueError(f"unknown border mode {mode!r}")


# a kernel shorter than this fraction of the axis is applied as shifted copies, a longer
# one as a matrix product (which costs the axis length per output, whatever the kernel)
SHORT_KERNEL_FRACTION = 8


def filter_matrix(n: int, weights: torch.Tensor, mode: str) -> torch.Tensor:
    """The (n, n) matrix M of a centred 1-D correlation with `weights` and border `mode`
    (scipy.ndimage convention: out[i] = sum_k weights[k] * x[i + k - r]), so that the
    filtered axis is x @ M.T: one matrix product instead of a single-channel convolution,
    which CPU convolution kernels handle slowly."""
    k = weights.numel()
    index = border_index(n, k // 2, mode, weights.device)
    rows = torch.arange(n, device=weights.device)
    m = torch.zeros((n, n), dtype=weights.dtype, device=weights.device)
    for tap in range(k):
        m.index_put_((rows, index[rows + tap]), weights[tap].expand(n), accumulate=True)
    return m


def correlate1d(x: torch.Tensor, weights: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """Correlate x with a centred odd-length 1-D kernel along `dim`, border `mode`: a
    short kernel as a sum of shifted copies of the padded axis (moved next to last, so
    that a shift moves whole rows), a long one as a matrix product (`filter_matrix`)."""
    k, n = weights.numel(), x.shape[dim]
    if k * SHORT_KERNEL_FRACTION > n:
        m = filter_matrix(n, weights, mode).to(x)
        return (x.movedim(dim, -1) @ m.T).movedim(-1, dim)
    rows = x.movedim(dim, -2)
    padded = rows.index_select(-2, border_index(n, k // 2, mode, x.device))
    out = padded[..., :n, :] * float(weights[0])
    for tap in range(1, k):
        out.add_(padded[..., tap:tap + n, :], alpha=float(weights[tap]))
    return out.movedim(-2, dim)


def gaussian_kernel1d(sigma: float, truncate: float, device: torch.device) -> torch.Tensor:
    """scipy.ndimage's Gaussian weights: radius int(truncate * sigma + 0.5), sum 1."""
    radius = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    w = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return w / w.sum()


def gaussian_filter(x: torch.Tensor, sigma: float | tuple[float, float], mode: str = "nearest",
                    truncate: float = 4.0) -> torch.Tensor:
    """skimage.filters.gaussian / scipy.ndimage.gaussian_filter over the last two axes
    (H, W); other axes are not blurred (skimage's channel_axis)."""
    sh, sw = (sigma, sigma) if not isinstance(sigma, tuple) else sigma
    x = correlate1d(x, gaussian_kernel1d(sh, truncate, x.device), -2, mode)
    return correlate1d(x, gaussian_kernel1d(sw, truncate, x.device), -1, mode)


def filter2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "mirror") -> torch.Tensor:
    """cv2.filter2D (a correlation, border BORDER_REFLECT_101) of every (H, W) plane of x,
    by FFT: one odd-sized kernel (kh, kw) for every plane, or one per sample (B, kh, kw)
    for x (B, ..., H, W). The planes are padded by the kernel radius (then with zeros to a
    fast FFT size), so the circular product never wraps into the output."""
    kh, kw = kernel.shape[-2:]
    h, w = x.shape[-2:]
    rows = border_index(h, kh // 2, mode, x.device)
    cols = border_index(w, kw // 2, mode, x.device)
    padded = x.index_select(-2, rows).index_select(-1, cols)
    size = (fft_size(len(rows)), fft_size(len(cols)))
    # correlation: tap (dy, dx) reads x[i + dy, j + dx], i.e. lands at (-dy, -dx) mod size
    taps = torch.zeros((*kernel.shape[:-2], *size), dtype=torch.float64, device=x.device)
    dy = (-(torch.arange(kh, device=x.device) - kh // 2)) % size[0]
    dx = (-(torch.arange(kw, device=x.device) - kw // 2)) % size[1]
    taps[..., dy[:, None], dx[None, :]] = kernel.to(x.device, torch.float64)
    spectrum = torch.fft.rfft2(taps).to(torch.complex64 if x.dtype == torch.float32
                                        else torch.complex128)
    if kernel.dim() == 3:  # per sample: broadcast over the axes between B and (H, W)
        spectrum = spectrum.view(len(kernel), *[1] * (x.dim() - 3), *spectrum.shape[-2:])
    out = torch.fft.irfft2(torch.fft.rfft2(padded, s=size) * spectrum, s=size)
    return out[..., kh // 2:kh // 2 + h, kw // 2:kw // 2 + w].to(x.dtype)


# ------------------------------------------------------------------------- resampling

def clipped_zoom(x: torch.Tensor, zoom: float, centred: bool = False) -> torch.Tensor:
    """imagecorruptions' `clipped_zoom` on (B, C, H, W): crop the centre 1/zoom of the image,
    scale it up with scipy.ndimage.zoom(order=1) and keep the top-left (H, W) (`centred`:
    the centred (H, W), as CIFAR-10-C and Tiny-ImageNet-C).

    scipy's zoom (grid_mode=False) maps output o to input o * (n - 1) / (n_out - 1) with
    n_out = round(n * zoom): the corner-aligned bilinear interpolation of torch."""
    h, w = x.shape[-2:]
    crop_h, crop_w = int(math.ceil(h / float(zoom))), int(math.ceil(w / float(zoom)))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    size = (int(round(crop_h * zoom)), int(round(crop_w * zoom)))
    crop = x[..., top:top + crop_h, left:left + crop_w]
    zoomed = F.interpolate(crop, size=size, mode="bilinear", align_corners=True)
    trim_h, trim_w = ((size[0] - h) // 2, (size[1] - w) // 2) if centred else (0, 0)
    return zoomed[..., trim_h:trim_h + h, trim_w:trim_w + w]


# ------------------------------------------------------------------------ motion blur

def motion_kernel(radius: int, sigma: float) -> list[float]:
    """imagecorruptions' 1-D motion-blur weights (a half Gaussian of width 2 radius + 1)."""
    width = radius * 2 + 1
    k = [math.exp(-(i ** 2) / (2 * sigma ** 2)) / (math.sqrt(2 * math.pi) * sigma)
         for i in range(width)]
    total = sum(k)
    return [v / total for v in k]


def motion_offsets(width: int, angle_deg: float) -> list[tuple[int, int]]:
    """The reference's per-step (dy, dx) shifts of a motion blur at one angle."""
    point = (width * math.sin(math.radians(angle_deg)), width * math.cos(math.radians(angle_deg)))
    hypot = math.hypot(*point)
    return [(-math.ceil(i * point[0] / hypot - 0.5), -math.ceil(i * point[1] / hypot - 0.5))
            for i in range(width)]


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angles: torch.Tensor
                ) -> torch.Tensor:
    """imagecorruptions' `_motion_blur` of each sample of x (B, ..., H, W) at its own angle
    (degrees): a weighted sum of copies shifted along a line, edges replicated; like the
    reference, it stops at the first shift that leaves the image and does not renormalise."""
    weights = motion_kernel(radius, sigma)
    width = len(weights)
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    pad = width
    rows = border_index(h, pad, "nearest", x.device)
    cols = border_index(w, pad, "nearest", x.device)
    padded = x.index_select(-2, rows).index_select(-1, cols)
    for b, angle in enumerate(angles.tolist()):
        acc = torch.zeros_like(x[b])
        for weight, (dy, dx) in zip(weights, motion_offsets(width, angle), strict=True):
            if abs(dy) >= h or abs(dx) >= w:
                break
            # shift(image, dx, dy): output[i, j] = image[clamp(i - dy), clamp(j - dx)]
            acc.add_(padded[b, ..., pad - dy:pad - dy + h, pad - dx:pad - dx + w], alpha=weight)
        out[b] = acc
    return out
