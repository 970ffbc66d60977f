"""The 19 image corruptions as batched torch functions: same formulas and severity
constants as imagecorruptions 1.1.2 (`corruptions.scales`), on a batch
(B, 3, H, W) of floats in [0, 1] on any device, returning floats on the reference's
[0, 255] scale before its final uint8 cast.

How each one relates to the reference:

* exact ports (same arithmetic, float32 instead of float64; only a truncation to uint8
  at an integer boundary can differ): gaussian_blur, defocus_blur, zoom_blur,
  motion_blur (given the angle), brightness, saturate, contrast, pixelate (Pillow's
  fixed-point BOX and NEAREST arithmetic, equal to Pillow's output but on some images
  taller than wide; see `pixelate`), frost (given which photo and crop);
* same algorithm, torch's random numbers instead of numpy's: gaussian_noise, shot_noise,
  impulse_noise, speckle_noise, snow, fog (diamond-square plasma fractal), elastic_transform,
  spatter's liquid layer, motion_blur's angle, frost's photo and crop. One
  small difference: snow motion-blurs its snow layer after cropping it to the image, the
  reference before (its zoomed layer is up to `zoom` pixels larger), which only changes how
  the blur replicates the last rows and columns;
* glass_blur: the reference moves pixels one at a time, each move reading pixels that
  earlier moves of the same pass may already have overwritten. Here every pass follows
  those chains for all pixels at once, which gives the reference's result for the same
  random offsets, vectorised;
* spatter's water (severities 1-3) shades its liquid mask with the reference's own OpenCV
  calls (Canny edges, distance transform, histogram equalisation), sample by sample on
  the CPU; the liquid layer before and the colouring after are batched;
* the reference's own calls, image by image on the CPU: jpeg_compression (the libjpeg
  codec in Pillow) and, on the CPU, pixelate (Pillow's resampling; other devices run its
  exact tensor port).

Each corruption's spec (`corruptions.image`) names its function here and its fidelity class.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from corruptions import _imagecorruptions_compat as _compat
from corruptions import _torch_ops as ops
from corruptions import image as image_specs
from corruptions import small_images
from corruptions.protocols import qmf_epsilon
from corruptions.reference_pool import reference_map
from corruptions.scales import NOMINAL_SIZE, constants
from corruptions.spec import check_images

TorchImageFn = Callable[[torch.Tensor, int, Sequence[int]], torch.Tensor]


def _c(name: str, severity: int, scale: str):
    """A corruption's constants at a severity and scale; one number for one-number tables."""
    row = constants(name, severity, scale)
    return row[0] if len(row) == 1 else row


def _clip255(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1) * 255


# ------------------------------------------------------------------------------ noise

def gaussian_noise(x, severity, seeds, scale):
    gens = ops.generators(seeds, x.device)
    return _clip255(x + _c("gaussian_noise", severity, scale) * ops.randn(gens, *x.shape[1:]))


def shot_noise(x, severity, seeds, scale):
    """Poisson(c x) / c of the uint8 image x * 255 (`ops.poisson_of_levels`)."""
    c = _c("shot_noise", severity, scale)
    u = ops.rand(ops.generators(seeds, x.device), *x.shape[1:])
    counts = ops.poisson_of_levels((x * 255).round_(), c, u)
    return _clip255(counts.to(x.dtype) / c)


def impulse_noise(x, severity, seeds, scale):
    """skimage's s&p: each value flipped with probability `amount`, to 1 or 0 equally
    (one uniform u per value: salt when u < amount / 2, pepper when amount / 2 <= u <
    amount, the same distribution as skimage's two draws)."""
    amount = _c("impulse_noise", severity, scale)
    u = ops.rand(ops.generators(seeds, x.device), *x.shape[1:])
    out = torch.where(u < amount / 2, torch.ones_like(x), x)
    return _clip255(torch.where((u >= amount / 2) & (u < amount), torch.zeros_like(x), out))


def speckle_noise(x, severity, seeds, scale):
    gens = ops.generators(seeds, x.device)
    return _clip255(x + x * _c("speckle_noise", severity, scale) * ops.randn(gens, *x.shape[1:]))


# ------------------------------------------------------------------------------- blur

def gaussian_blur(x, severity, seeds, scale):
    return _clip255(ops.gaussian_filter(x, _c("gaussian_blur", severity, scale)))


@functools.lru_cache(maxsize=8)
def _disk(radius: float, alias_blur: float) -> np.ndarray:
    return _compat._ref.disk(radius=radius, alias_blur=alias_blur)


def defocus_blur(x, severity, seeds, scale):
    radius, alias_blur = _c("defocus_blur", severity, scale)
    kernel = torch.from_numpy(_disk(radius, alias_blur))
    return _clip255(ops.filter2d(x, kernel.to(x.device)))


def glass_blur(x, severity, seeds, scale):
    sigma, delta, iterations = _c("glass_blur", severity, scale)
    b, ch, h, w = x.shape
    # the reference blurs, then truncates to uint8
    blurred = (ops.gaussian_filter(x, sigma) * 255).to(torch.uint8)
    gens = ops.generators(seeds, x.device)
    # ImageNet-C shuffles over the image; CIFAR-10-C / Tiny-ImageNet-C over a fixed 32 / 64
    size = NOMINAL_SIZE[scale]
    range_h, range_w = (h, w) if scale == "imagenet" else (min(size, h), min(size, w))
    # the moved pixels: rows range_h - delta down to delta + 1, each from right to left
    rows, cols = range_h - 2 * delta, range_w - 2 * delta
    flat = blurred.reshape(b, ch, h * w)
    if rows > 0 and cols > 0:
        for _ in range(iterations):
            offsets = ops.draw(gens, lambda g: torch.randint(
                -delta, delta, (rows * cols, 2), generator=g, device=g.device))
            source = _resolve_moves(*_moves(offsets, (h, w), (delta + 1, delta + 1),
                                            (rows, cols)))
            flat = flat.gather(2, source[:, None, :].expand(b, ch, -1))
    shuffled = flat.reshape(b, ch, h, w).to(x.dtype) / 255
    return _clip255(ops.gaussian_filter(shuffled, sigma))


def _moves(offsets: torch.Tensor, shape: tuple[int, int], corner: tuple[int, int],
           block: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's pass over the pixels of a block (top-left `corner`, `block` rows and
    columns of an image of `shape`), bottom row first, each row right to left: pixel
    (r, c) := pixel (r + dy, c + dx), with (dx, dy) = offsets (B, n, 2) in that order.

    Returns, per sample and pixel (B, H * W), the index it copies from (itself if not
    moved) and whether that source was overwritten earlier in the pass: the source lies in
    the block, below the pixel or right of it on its row."""
    b = len(offsets)
    (h, w), (top, left), (rows, cols) = shape, corner, block
    # processing order -> raster order of the block
    dx, dy = offsets.view(b, rows, cols, 2).flip(1, 2).unbind(-1)
    r = torch.arange(top, top + rows, device=offsets.device)[:, None] + dy
    c = torch.arange(left, left + cols, device=offsets.device)[None, :] + dx
    source = torch.arange(h * w, device=offsets.device).repeat(b, 1).view(b, h, w)
    source[:, top:top + rows, left:left + cols] = r * w + c
    inside = (r >= top) & (r < top + rows) & (c >= left) & (c < left + cols)
    link = torch.zeros((b, h, w), dtype=torch.bool, device=offsets.device)
    link[:, top:top + rows, left:left + cols] = inside & ((dy > 0) | ((dy == 0) & (dx > 0)))
    return source.view(b, h * w), link.view(b, h * w)


def _resolve_moves(source: torch.Tensor, link: torch.Tensor) -> torch.Tensor:
    """Sequential copies as one gather: for every pixel, the index whose original value it
    ends up with. A move reads the original value of its source unless the source was
    itself overwritten earlier (`link`); then it reads what that move copied, and so on
    along a chain. The chains are followed for the linked pixels only, all at once, one
    step per round (they are short: each step continues with probability under 1/2)."""
    b, size = source.shape
    base = (torch.arange(b, device=source.device) * size)[:, None]
    source, link = (source + base).view(-1), link.reshape(-1)
    resolved = source.clone()
    active = link.nonzero().squeeze(1)
    pointer = source[active]
    while active.numel():
        more = link[pointer]
        done = (~more).nonzero().squeeze(1)
        resolved[active[done]] = source[pointer[done]]
        more = more.nonzero().squeeze(1)
        active, pointer = active[more], source[pointer[more]]
    return resolved.view(b, size) - base


def draw_motion_blur(severity, seeds, shape, scale, device) -> dict[str, torch.Tensor]:
    """The blur direction of each sample, in degrees (uniform in [-45, 45])."""
    return {"angle": ops.uniform(ops.generators(seeds, device), -45, 45)}


def motion_blur(x, severity, seeds, scale, drawn: dict[str, torch.Tensor] | None = None):
    radius, sigma = _c("motion_blur", severity, scale)
    drawn = drawn or draw_motion_blur(severity, seeds, x.shape, scale, x.device)
    return (ops.motion_blur(x * 255, radius, sigma, drawn["angle"])).clamp(0, 255)


def _zoom_factors(severity: int, scale: str) -> np.ndarray:
    return np.arange(*_c("zoom_blur", severity, scale))


def zoom_blur(x, severity, seeds, scale):
    factors = _zoom_factors(severity, scale)
    x = x.contiguous(memory_format=torch.channels_last)  # torch's faster bilinear kernel
    out = torch.zeros_like(x)
    for z in factors:
        out += ops.clipped_zoom(x, float(z), centred=scale != "imagenet")
    return _clip255((x + out) / (len(factors) + 1))


# ---------------------------------------------------------------------------- weather

def _gray(x: torch.Tensor) -> torch.Tensor:
    """cv2.COLOR_RGB2GRAY on floats: (B, 3, H, W) -> (B, 1, H, W)."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
    return (x * weights[:, None, None]).sum(1, keepdim=True)


def snow(x, severity, seeds, scale):
    loc, spread, zoom, threshold, radius, sigma, weight = _c("snow", severity, scale)
    b, _, h, w = x.shape
    gens = ops.generators(seeds, x.device)
    layer = loc + spread * ops.randn(gens, h, w)
    layer = ops.clipped_zoom(layer[:, None], zoom, centred=scale != "imagenet")[:, 0]
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
    if scale != "imagenet":  # the small generators' PNG round trip before the blur
        layer = (layer * 255).to(torch.uint8).to(x.dtype) / 255
    angles = ops.uniform(gens, -135, -45)
    layer = ops.motion_blur(layer, radius, sigma, angles)
    layer = (torch.round(layer * 255).clamp(0, 255).to(torch.uint8).to(x.dtype) / 255)[:, None]
    x = weight * x + (1 - weight) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return _clip255(x + layer + layer.flip(-2, -1))


@functools.lru_cache(maxsize=16)
def _frost_photos(h: int, w: int, scale: str) -> tuple[np.ndarray, ...]:
    """The reference's frost photos (RGB), each rescaled as the reference does for (h, w)."""
    if scale != "imagenet":
        return tuple(np.ascontiguousarray(small_images.frost_photo(i, scale, h, w)[..., ::-1])
                     for i in range(5))
    photos = []
    for i in range(5):  # the reference draws randint(5): frost6 is never used
        frost = cv2.imread(_compat._resource_filename(
            "imagecorruptions.corruptions", f"./frost/{_FROST_FILES[i]}"))
        fh, fw = frost.shape[:2]
        factor = 1.0
        if fh < h and fw >= w:
            factor = h / fh
        elif fh >= h and fw < w:
            factor = w / fw
        elif fh < h and fw < w:
            factor = max(h / fh, w / fw)
        factor *= 1.1
        size = (int(np.ceil(fw * factor)), int(np.ceil(fh * factor)))
        photos.append(cv2.resize(frost, dsize=size, interpolation=cv2.INTER_CUBIC)[..., ::-1])
    return tuple(np.ascontiguousarray(p) for p in photos)


_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


def draw_frost(severity, seeds, shape, scale, device) -> dict[str, torch.Tensor]:
    """Which of the five frost photos each sample gets, and the crop's top-left corner."""
    h, w = shape[-2:]
    photos = _frost_photos(h, w, scale)
    drawn = {"photo": [], "top": [], "left": []}
    for g in ops.generators(seeds, device):
        idx = int(torch.randint(5, (), generator=g, device=g.device))
        drawn["photo"].append(idx)
        for key, room in (("top", photos[idx].shape[0] - h), ("left", photos[idx].shape[1] - w)):
            drawn[key].append(int(torch.randint(room, (), generator=g, device=g.device)))
    return {key: torch.tensor(values) for key, values in drawn.items()}


def frost(x, severity, seeds, scale, drawn: dict[str, torch.Tensor] | None = None):
    image_weight, frost_weight = _c("frost", severity, scale)
    h, w = x.shape[-2:]
    photos = _frost_photos(h, w, scale)
    drawn = drawn or draw_frost(severity, seeds, x.shape, scale, x.device)
    crops = [torch.from_numpy(photos[i][top:top + h, left:left + w]) for i, top, left in
             zip(drawn["photo"].tolist(), drawn["top"].tolist(), drawn["left"].tolist(),
                 strict=True)]
    layer = torch.stack(crops).to(x.device, x.dtype).permute(0, 3, 1, 2)
    return (image_weight * x * 255 + frost_weight * layer).clamp(0, 255)


def plasma_fractal(gens: list[torch.Generator], mapsize: int, wibbledecay: float,
                   dtype: torch.dtype) -> torch.Tensor:
    """The reference's diamond-square heightmap, one per generator: (B, S, S) in [0, 1],
    computed in `dtype` (the reference: float64; float32 takes half the time)."""
    device = gens[0].device
    b = len(gens)
    m = torch.zeros((b, mapsize, mapsize), dtype=dtype, device=device)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        u = ops.rand(gens, *total.shape[1:], dtype=dtype)
        return total / 4 + wibble * (2 * u - 1) * wibble

    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        square = corners + corners.roll(-1, 1)
        square = square + square.roll(-1, 2)
        m[:, half::step, half::step] = wibbled_mean(square)
        dr = m[:, half::step, half::step]
        ul = m[:, 0::step, 0::step]
        m[:, 0::step, half::step] = wibbled_mean(dr + dr.roll(1, 1) + ul + ul.roll(-1, 2))
        m[:, half::step, 0::step] = wibbled_mean(dr + dr.roll(1, 2) + ul + ul.roll(-1, 1))
        step //= 2
        wibble /= wibbledecay
    m = m - m.amin((1, 2), keepdim=True)
    return m / m.amax((1, 2), keepdim=True)


def fog(x, severity, seeds, scale):
    strength, decay = _c("fog", severity, scale)
    b, ch, h, w = x.shape
    mapsize = 1 << (max(h, w, ch) - 1).bit_length()  # next power of 2, as the reference
    if scale != "imagenet":
        mapsize = max(mapsize, NOMINAL_SIZE[scale])
    gens = ops.generators(seeds, x.device)
    fractal = plasma_fractal(gens, mapsize, decay, x.dtype)[:, None, :h, :w]
    max_val = x.amax((1, 2, 3), keepdim=True)
    return _clip255((x + strength * fractal) * max_val / (max_val + strength))


def brightness(x, severity, seeds, scale):
    """The reference shifts HSV value, v' = clip(v + c, 0, 1), keeping hue and saturation.
    Every channel of an HSV colour is v times a factor of hue and saturation alone
    (skimage's hsv2rgb), so the round trip through HSV is a scaling by v' / v (black,
    v = 0, has saturation 0 and becomes grey v')."""
    v = x.amax(1, keepdim=True)
    shifted = (v + _c("brightness", severity, scale)).clamp(0, 1)
    return _clip255(torch.where(v > 0, x * (shifted / torch.where(v > 0, v, 1)), shifted))


def spatter(x, severity, seeds, scale):
    loc, spread, sigma, threshold, intensity, mud = _c("spatter", severity, scale)
    b, _, h, w = x.shape
    gens = ops.generators(seeds, x.device)
    liquid = ops.gaussian_filter(loc + spread * ops.randn(gens, h, w), sigma)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if not mud:
        return _water(x, liquid, intensity)
    m = ops.gaussian_filter((liquid > threshold).to(x.dtype), intensity)
    m = torch.where(m < 0.8, torch.zeros_like(m), m)[:, None]
    color = torch.tensor([63, 42, 20], dtype=x.dtype, device=x.device)[:, None, None] / 255
    return _clip255(x * (1 - m) + color * m)


def _water(x: torch.Tensor, liquid: torch.Tensor, intensity: float) -> torch.Tensor:
    """Spatter's water (severities 1-3) on a thresholded liquid layer (B, H, W): the
    mask's shading by OpenCV (Canny edges, distance transform, histogram equalisation:
    `_compat.water_distance`, the reference's own calls, on the CPU per sample), the rest
    batched. The reference casts the layer to uint8 as C does (modulo 256 over 255)."""
    layer = (liquid * 255).to(torch.int32).to(torch.uint8)
    shading = np.stack([_compat.water_distance(mask) for mask in layer.cpu().numpy()])
    m = layer.to(x.dtype) * torch.from_numpy(shading).to(x.device, x.dtype)
    peak = m.amax((1, 2), keepdim=True)
    m = (m / torch.where(peak > 0, peak, 1) * intensity)[:, None]  # no liquid: no spatter
    # pale turquoise, in the reference's BGR order applied to RGB images
    color = torch.tensor([175, 238, 238], dtype=x.dtype, device=x.device)[:, None, None] / 255
    return _clip255(x + m * color)


# ---------------------------------------------------------------------------- digital

def contrast(x, severity, seeds, scale):
    means = x.mean((2, 3), keepdim=True)
    return _clip255((x - means) * _c("contrast", severity, scale) + means)


def saturate(x, severity, seeds, scale):
    """The reference sets HSV saturation s' = clip(s * factor + shift, 0, 1), keeping hue
    and value. Every channel is v (1 - s k) with k a factor of the hue alone (skimage's
    hsv2rgb), so v - channel scales by s' / s = s' v / (v - min). Greys (s = 0) have hue 0
    in skimage, whose colour at saturation s' is (v, v (1 - s'), v (1 - s'))."""
    factor, shift = _c("saturate", severity, scale)
    v = x.amax(1, keepdim=True)
    delta = v - x.amin(1, keepdim=True)
    grey = delta == 0
    s = torch.where(grey, 0, delta / torch.where(v > 0, v, 1))
    s_new = (s * factor + shift).clamp(0, 1)
    coloured = v - (v - x) * (s_new * v / torch.where(grey, 1, delta))
    faded = v * (1 - s_new)
    return _clip255(torch.where(grey, torch.cat([v, faded, faded], 1), coloured))


def jpeg_compression(images: np.ndarray, severity, seeds, scale) -> np.ndarray:
    """Pillow's libjpeg, the reference's own calls (on the numpy batch)."""
    return _reference_calls("jpeg_compression", images, severity, scale)


# Pillow's 8-bit resampling (python-pillow/Pillow@01f132f:src/libImaging/Resample.c):
# coefficients in fixed point with this many fractional bits, sums started at half a unit
PIL_PRECISION_BITS = 22


@functools.lru_cache(maxsize=32)
def _pil_box_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's BOX coefficients along one axis as (n_out, k) input indices and fixed-point
    weights: `precompute_coeffs` (the same double arithmetic, in the same order) and
    `normalize_coeffs_8bpc` (round half up to 22 fractional bits); unused taps weigh 0."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    k = int(math.ceil(support)) * 2 + 1
    index = np.zeros((n_out, k), dtype=np.int64)
    weight = np.zeros((n_out, k), dtype=np.int64)
    ss = 1.0 / filterscale
    for xx in range(n_out):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in) - xmin
        w = [1.0 if -0.5 < (x + xmin - center + 0.5) * ss <= 0.5 else 0.0
             for x in range(xmax)]
        total = sum(w)
        for x in range(xmax):
            index[xx, x] = x + xmin
            weight[xx, x] = int(0.5 + (w[x] / total if total else w[x]) * (1 << PIL_PRECISION_BITS))
    return index, weight


@functools.lru_cache(maxsize=32)
def _pil_nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """The input index each output copies in Pillow's NEAREST resize, read from Pillow
    itself: what it makes of a float image whose values are their column numbers."""
    ramp = Image.fromarray(np.arange(n_in, dtype=np.float32)[None, :])
    return np.asarray(ramp.resize((n_out, 1), Image.NEAREST))[0].astype(np.int64)


def _resize_rows(x: torch.Tensor, n_out: int, resample: int) -> torch.Tensor:
    """One Pillow resampling pass along the rows (dim -2) of x (int32, 0..255): NEAREST a
    selection of rows; BOX each output the sum of its few taps in Pillow's fixed point,
    started at half a unit, shifted down and clipped to 0..255 (exactly Pillow's result)."""
    if resample == Image.NEAREST:
        index = torch.from_numpy(_pil_nearest_index(x.shape[-2], n_out)).to(x.device)
        return x.index_select(-2, index)
    index, weight = (torch.from_numpy(a).to(x.device) for a in
                     _pil_box_taps(x.shape[-2], n_out))
    weight = weight.to(torch.int32)[:, :, None]
    out = x.index_select(-2, index[:, 0]).mul_(weight[:, 0])
    for tap in range(1, index.shape[1]):
        out.add_(x.index_select(-2, index[:, tap]).mul_(weight[:, tap]))
    out.add_(1 << (PIL_PRECISION_BITS - 1))
    return out.bitwise_right_shift_(PIL_PRECISION_BITS).clamp_(0, 255)


def _pil_resize(x: torch.Tensor, size: tuple[int, int], resample: int) -> torch.Tensor:
    """Pillow's 8-bit resize of x (int32, 0..255) to (height, width): the horizontal pass,
    then the vertical one (for BOX the order matters: each pass rounds to 8 bits). Each
    pass selects whole rows (columns are made rows by a transposed copy: far faster than
    selecting columns); NEAREST copies rows first and returns a transposed view."""
    if resample == Image.NEAREST:
        tall = _resize_rows(x, size[0], resample).transpose(-1, -2).contiguous()
        return _resize_rows(tall, size[1], resample).transpose(-1, -2)
    wide = _resize_rows(x.transpose(-1, -2).contiguous(), size[1], resample)
    return _resize_rows(wide.transpose(-1, -2).contiguous(), size[0], resample)


def pixelate_arrays(images: np.ndarray, severity, seeds, scale) -> np.ndarray:
    """Pillow's own resampling, the reference's calls (on the numpy batch): what the CPU
    runs, where PIL's 8-bit C code is faster than `pixelate` on tensors."""
    return _reference_calls("pixelate", images, severity, scale)


def pixelate(x, severity, seeds, scale):
    """Pillow's BOX downscale and NEAREST (ImageNet-C) or BOX (the small generators)
    upscale, in Pillow's own integer arithmetic: the reference's output exactly for images
    at least as wide as tall. Pillow 13 resamples some taller images column-wise first,
    which this does not (one grey level on a few percent of their pixels)."""
    factor = _c("pixelate", severity, scale)
    h, w = x.shape[-2:]
    pixels = (x * 255).round().to(torch.int32)
    small = _pil_resize(pixels, (int(h * factor), int(w * factor)), Image.BOX)
    up = Image.NEAREST if scale == "imagenet" else Image.BOX
    return _pil_resize(small, (h, w), up).to(x.dtype)


def elastic_transform(x, severity, seeds, scale):
    if scale != "imagenet":  # the original affine + elastic transform: OpenCV's warpAffine
        return _per_sample_reference("elastic_transform", x, severity, seeds, scale)
    alpha = _c("elastic_transform", severity, scale)
    b, ch, h, w = x.shape
    sigma = (h * 0.01, w * 0.01)
    max_d = h * 0.005
    gens = ops.generators(seeds, x.device)
    fields = ops.rand(gens, 2, h, w)
    fields = ops.gaussian_filter(max_d * (2 * fields - 1), sigma, "reflect", 3.0) * alpha
    dx, dy = fields[:, 0], fields[:, 1]
    # scipy.ndimage.map_coordinates(order=1, mode="reflect") at (y + dy, x + dx): bilinear,
    # reflected about the outer pixel edges (align_corners=False coordinates)
    ys = torch.arange(h, device=x.device, dtype=torch.float32)[:, None] + dy
    xs = torch.arange(w, device=x.device, dtype=torch.float32)[None, :] + dx
    grid = torch.stack([(2 * xs + 1) / w - 1, (2 * ys + 1) / h - 1], -1)
    out = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection",
                        align_corners=False)
    return _clip255(out)


# -------------------------------------------------------------------- reference fallback

def _reference_calls(name: str, images: np.ndarray, severity: int, scale: str
                     ) -> np.ndarray:
    """The reference's own function of a deterministic corruption on uint8 images (N, H, W,
    C), image by image: as the reference backend, less the seeding of the global random
    states around each call (these corruptions draw nothing). One-channel images are
    replicated to RGB and the rounded mean of the output kept, as the reference."""
    check_images(images)
    rgb = np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
    if scale == "imagenet":  # imagecorruptions' function, on a PIL image
        out = np.stack([np.asarray(_compat.FUNCTIONS[name](Image.fromarray(image), severity, 0))
                        for image in rgb])
    else:
        row = constants(name, severity, scale)
        out = np.stack([getattr(small_images, name)(image, row, scale, 0) for image in rgb])
    if images.shape[-1] == 1:
        return np.rint(out.mean(-1, keepdims=True)).astype(np.uint8)
    return out


def _per_sample_reference(name: str, x: torch.Tensor, severity: int, seeds,
                          scale: str) -> torch.Tensor:
    """Run the reference on the CPU for each sample, in worker processes when there are
    enough (`corruptions.reference_pool`); uint8 in, [0, 255] floats out."""
    images = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = reference_map(image_specs.CORRUPTIONS[name].reference, images, severity, seeds,
                        scale=scale)
    return torch.from_numpy(out).to(x.device, x.dtype).permute(0, 3, 1, 2)


def qmf_gaussian_noise(x, severity, seeds, scale):
    """`corruptions.protocols.qmf_gaussian_noise`: one N(0, 10 ε) grey-level field per
    sample, the same on every channel."""
    std = 10 * qmf_epsilon(severity) / 255
    noise = ops.randn(ops.generators(seeds, x.device), 1, *x.shape[2:])  # (B, 1, H, W)
    return _clip255(x + std * noise)
