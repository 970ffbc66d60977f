"""Batched building blocks of the torch corruption backend: per-sample random draws,
separable filters with the reference libraries' border modes, linear resampling, shifts.

Everything works on tensors of any device. Random numbers come from one
`torch.Generator` per sample, seeded with that sample's seed, so a sample's corruption
depends on its seed alone, never on the batch it was processed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    """One generator per sample on `device`, seeded with the sample's seed."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def draw(gens: list[torch.Generator], fn: Callable[[torch.Generator], torch.Tensor]
         ) -> torch.Tensor:
    """Stack `fn(generator)` over the samples: (B, *shape)."""
    return torch.stack([fn(g) for g in gens])


def randn(gens: list[torch.Generator], *shape: int) -> torch.Tensor:
    return draw(gens, lambda g: torch.randn(shape, generator=g, device=g.device))


def rand(gens: list[torch.Generator], *shape: int) -> torch.Tensor:
    return draw(gens, lambda g: torch.rand(shape, generator=g, device=g.device))


def uniform(gens: list[torch.Generator], low: float, high: float) -> torch.Tensor:
    """One scalar per sample, U(low, high): (B,) float64."""
    u = torch.stack([torch.rand((), generator=g, device=g.device, dtype=torch.float64)
                     for g in gens])
    return low + (high - low) * u


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


def correlate1d(x: torch.Tensor, weights: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """Correlate x with a centred odd-length 1-D kernel along `dim` (scipy.ndimage
    convention: output[i] = sum_k weights[k] * x[i + k - r])."""
    k = weights.numel()
    r = k // 2
    x = x.movedim(dim, -1)
    shape = x.shape
    padded = x.index_select(-1, border_index(shape[-1], r, mode, x.device))
    out = F.conv1d(padded.reshape(-1, 1, padded.shape[-1]),
                   weights.to(x).reshape(1, 1, k))
    return out.reshape(shape).movedim(-1, dim)


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
    """cv2.filter2D (a correlation, border BORDER_REFLECT_101) of every (H, W) plane."""
    kh, kw = kernel.shape
    shape = x.shape
    planes = x.reshape(-1, 1, shape[-2], shape[-1])
    rows = border_index(shape[-2], kh // 2, mode, x.device)
    cols = border_index(shape[-1], kw // 2, mode, x.device)
    padded = planes.index_select(-2, rows).index_select(-1, cols)
    out = F.conv2d(padded, kernel.to(x).reshape(1, 1, kh, kw))
    return out.reshape(shape)


# ------------------------------------------------------------------------- resampling

def linear_resample(x: torch.Tensor, coords: torch.Tensor, dim: int) -> torch.Tensor:
    """Linear interpolation of x along `dim` at fractional positions `coords` (all within
    [0, n - 1]), as scipy.ndimage's order-1 spline."""
    n = x.shape[dim]
    i0 = coords.floor().clamp(0, n - 1).long()
    i1 = (i0 + 1).clamp(max=n - 1)
    frac = (coords - i0).to(x.dtype)
    shape = [1] * x.ndim
    shape[dim] = -1
    a, b = x.index_select(dim, i0), x.index_select(dim, i1)
    return a + (b - a) * frac.reshape(shape)


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """imagecorruptions' `clipped_zoom` on (..., H, W): crop the centre 1/zoom of the image
    and scale it back up with scipy.ndimage.zoom(order=1); output cropped to (H, W)."""
    for dim in (-2, -1):
        n = x.shape[dim]
        crop = int(math.ceil(n / float(zoom)))
        top = (n - crop) // 2
        out_n = int(round(crop * zoom))  # scipy.ndimage.zoom's output size
        # scipy (grid_mode=False): output o samples input o * (crop - 1) / (out_n - 1)
        scale = (crop - 1) / (out_n - 1) if out_n > 1 else 0.0
        coords = top + torch.arange(n, dtype=torch.float64, device=x.device) * scale
        x = linear_resample(x, coords, dim)
    return x


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
            acc += weight * padded[b, ..., pad - dy:pad - dy + h, pad - dx:pad - dx + w]
        out[b] = acc
    return out
