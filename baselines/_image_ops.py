"""AugMix's image operations in torch, applied per image to a batch (B, C, H, W) in [0, 1],
and, through `per_clip`, to clips (B, T, C, H, W).

Shared by `corrupt_aug`, `augmix` and `consistency`, which pick their image modalities by
kind (`image_modalities`), never by tensor rank. The operation set is AugMix's (Hendrycks et al.,
ICLR 2020, Sec. 3): autocontrast, equalize, posterize, solarize, rotate, shear_x/y and
translate_x/y. AugMix chose it to exclude operations that overlap ImageNet-C (contrast,
colour, brightness, sharpness), so it is disjoint from the evaluation grid's corruptions.

Magnitudes follow AugMix's `augmentations.py` convention: a severity on a 0-10 scale
(default 3), a level drawn per image from U(0.1, severity), m = level / 10, and
    rotate: +-30 m degrees            shear: +-0.3 m              translate: +-(W/3) m px
    posterize: 4 - floor(4 m) bits    solarize: threshold 1 - m   (auto-, equalize: none)
with a random sign for the geometric ones. Geometric operations resample bilinearly and
fill with 0, like PIL's affine transform.

Deviations from the reference's Pillow ops (google-research/augmix@a43b7856:augmentations.py,
run by cifar.py's aug() on uint8 PIL images). `tests/test_augmix_parity.py` pins each one;
the figures are grey levels (0-255) on that test's 32x32 image, whose 4 px checkerboard
makes them large for the geometric ops. autocontrast and posterize match (below), as does
the operation set and every magnitude not named here.
- Real values throughout: every op returns real values and a chain is never rounded to
  8 bits (posterize and equalize round their input to 8-bit levels), where the reference's
  image is uint8 after every op. Pillow truncates: its autocontrast LUT and its bilinear
  samples lie 0 to 1 grey level below ours; posterize is exact. Why: the ops run batched
  on float tensors, and inputs need not be 8-bit.
- rotate: by 30 m degrees, real-valued, where the reference rotates by int(30 m) whole
  degrees (0..8 at severity 3, and 0 degrees, a copy, for levels below 1/3: 8% of its
  rotations); same centre (W/2, H/2) and direction as Image.rotate. Ours equals Pillow's
  rotate by the real angle (to the truncation above); the lost fraction of a degree moves a
  pixel by under r pi / 180 px at radius r (< 0.4 px on 32 px): mean 2.0-4.4 grey levels.
- shear_x / shear_y: about the image centre, where the reference's affine
  (1, k, 0, 0, 1, 0) shears about the top-left corner: ours equals Pillow's
  (1, k, -k H/2, 0, 1, 0) (shear_y: (1, 0, 0, k, 1, -k W/2)), the reference's shear
  followed by a shift of k H/2 px (<= 1.44 px at severity 3) that re-centres it: mean
  2.6-30 grey levels. Same k = +-0.3 m, real-valued in both. Why: affine_grid's normalised
  coordinates have their origin at the centre; a centred shear moves both edges by up to
  1.44 px instead of the far edge by up to 2.9 px.
- translate_x / translate_y: by (W/3) m px, real-valued, where the reference shifts by
  int((W/3) m) whole pixels (0..3 at severity 3, and 0 px, a copy, for levels below
  0.9375: 29% of its translations), so up to one pixel less; same direction. Ours equals
  Pillow's affine with the real shift: mean 0.5-23 grey levels from the reference's.
- Borders (geometric ops): grid_sample's zero padding weighs an edge pixel down linearly
  to 0 one pixel past its centre; Pillow clamps to the edge pixel up to half a pixel past
  it and gives 0 beyond. Only that one-pixel band differs, by at most 3/4 of an edge value.
- solarize: threshold 1 - m, i.e. 255 (1 - m) grey levels, where the reference's is
  256 - int(256 m) (both invert v >= threshold): ours inverts floor(1 + frac(256 m) - m)
  more grey level, 0 or 1 for m <= 0.3. Why: a threshold on the [0, 1] scale of real input.
- equalize: the textbook map 255 (C(v) - a) / (N - a), C the cumulative histogram and a
  the darkest level's count (darkest -> 0, brightest -> 255, real-valued), where
  ImageOps.equalize maps v to min(255, (E(v) + s // 2) // s), E(v) the count of pixels
  below v and s = (N - z) // 255 an integer step (z the brightest level's count). They
  agree on a flat histogram; on small images Pillow's integer step makes its map up to 4/3
  as steep (N = 1024: s = 3 once z > 4) and clips up to the brightest quarter of the pixels
  to 255: up to 61 grey levels apart (mean 28). Kept: the code is hashed into stored
  results' keys.
- Not implemented: the reference's --all-ops extras (color, contrast, brightness,
  sharpness; off by default in cifar.py), which overlap ImageNet-C.
- Non-square images: the reference transforms IMAGE_SIZE x IMAGE_SIZE images only. Here
  rotate and shear act in normalised coordinates, so for H != W a rotation also scales
  anisotropically and shear_x's factor is k W / H (shear_y's k H / W) in pixels;
  translate_y shifts (H/3) m px.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rambench.batch import Batch

if TYPE_CHECKING:
    from rambench.methods import MethodContext

OPS = ("autocontrast", "equalize", "posterize", "solarize", "rotate", "shear_x", "shear_y",
       "translate_x", "translate_y")
IDENTITY = -1  # an op index meaning "leave this image unchanged"
# The legacy guess, for contexts built without specs only: input rank -> kind.
RANK_KINDS = {2: "audio", 4: "image", 5: "image"}


def autocontrast(x: Tensor) -> Tensor:
    """Stretch each channel of each image to the full [0, 1] range (constant ones: kept)."""
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), x)


def equalize(x: Tensor) -> Tensor:
    """Histogram equalisation per channel on 256 grey levels: level v -> (cdf(v) - cdf_min) /
    (N - cdf_min), cdf_min being the count of the darkest level; constant channels are kept."""
    n, c, h, w = x.shape
    q = (x * 255.0).round().clamp(0, 255).long().flatten(2)  # (n, c, hw)
    hist = torch.zeros(n, c, 256, device=x.device, dtype=x.dtype)
    hist.scatter_add_(2, q, torch.ones_like(q, dtype=x.dtype))
    cdf = hist.cumsum(dim=2)
    cdf_min = torch.where(hist > 0, cdf, torch.full_like(cdf, float("inf"))).amin(dim=2)
    denom = (h * w - cdf_min).unsqueeze(2)
    lut = ((cdf - cdf_min.unsqueeze(2)) / denom.clamp_min(1.0)).clamp(0.0, 1.0)
    out = lut.gather(2, q).view_as(x)
    return torch.where(denom.unsqueeze(3) > 0, out, x)


def posterize(x: Tensor, bits: Tensor) -> Tensor:
    """Keep the `bits` (long (B,), 1..8) most significant bits of each 8-bit value."""
    step = (2.0 ** (8 - bits.to(x.dtype))).view(-1, 1, 1, 1)
    return torch.floor((x * 255.0).round() / step) * step / 255.0


def solarize(x: Tensor, threshold: Tensor) -> Tensor:
    """Invert the values at or above `threshold` (B,) in [0, 1]."""
    return torch.where(x >= threshold.view(-1, 1, 1, 1), 1.0 - x, x)


def affine(x: Tensor, theta: Tensor) -> Tensor:
    """Resample each image with its (2, 3) affine map in normalised coordinates."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def geometric_theta(op: Tensor, m: Tensor, sign: Tensor, width: int) -> Tensor:
    """(B, 2, 3) affine maps for the geometric ops (identity for every other op index)."""
    n = op.shape[0]
    theta = torch.eye(2, 3, device=m.device, dtype=m.dtype).repeat(n, 1, 1)
    angle = sign * math.radians(30.0) * m
    rot = op == OPS.index("rotate")
    theta[rot, 0, 0] = theta[rot, 1, 1] = torch.cos(angle[rot])
    theta[rot, 0, 1] = -torch.sin(angle[rot])
    theta[rot, 1, 0] = torch.sin(angle[rot])
    shear = sign * 0.3 * m
    theta[op == OPS.index("shear_x"), 0, 1] = shear[op == OPS.index("shear_x")]
    theta[op == OPS.index("shear_y"), 1, 0] = shear[op == OPS.index("shear_y")]
    shift = sign * (width / 3.0) * m * 2.0 / width  # pixels -> normalised units
    theta[op == OPS.index("translate_x"), 0, 2] = shift[op == OPS.index("translate_x")]
    theta[op == OPS.index("translate_y"), 1, 2] = shift[op == OPS.index("translate_y")]
    return theta


@torch.no_grad()
def apply_ops(x: Tensor, op: Tensor, severity: float = 3.0) -> Tensor:
    """Apply OPS[op[i]] to image i with a random magnitude; op[i] == IDENTITY keeps it."""
    n = x.shape[0]
    dev = x.device
    m = (0.1 + (severity - 0.1) * torch.rand(n, device=dev)) / 10.0
    sign = torch.where(torch.rand(n, device=dev) < 0.5, -1.0, 1.0)
    out = x.clone()

    def chosen(name: str) -> Tensor:
        return op == OPS.index(name)

    for name, fn in (("autocontrast", autocontrast), ("equalize", equalize)):
        sel = chosen(name)
        if sel.any():
            out[sel] = fn(x[sel])
    sel = chosen("posterize")
    if sel.any():
        bits = (4 - torch.floor(4 * m[sel])).long().clamp(1, 8)
        out[sel] = posterize(x[sel], bits)
    sel = chosen("solarize")
    if sel.any():
        out[sel] = solarize(x[sel], 1.0 - m[sel])
    geometric = op >= OPS.index("rotate")
    if geometric.any():
        theta = geometric_theta(op, m, sign, x.shape[-1])
        out[geometric] = affine(x[geometric], theta[geometric])
    return out


@torch.no_grad()
def random_chain(x: Tensor, max_depth: int = 3, severity: float = 3.0) -> Tensor:
    """AugMix's augmentation chain: per image a depth U{1..max_depth} and that many
    operations drawn uniformly (with replacement) from OPS, applied in sequence."""
    n = x.shape[0]
    depth = torch.randint(1, max_depth + 1, (n,), device=x.device)
    for k in range(max_depth):
        op = torch.randint(len(OPS), (n,), device=x.device)
        x = apply_ops(x, torch.where(depth > k, op, IDENTITY), severity)
    return x


def per_clip(fn: Callable[..., Tensor], x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """fn(x) for still images x (B, C, H, W); for clips x (B, T, C, H, W), fn applied to
    every frame with ONE random draw per clip: the T frames are folded into the channel
    axis, (B, T * C, H, W), so fn draws its operations and magnitudes once per clip and
    applies them to each frame; per-channel statistics (autocontrast, equalize) stay per
    frame and channel. Exactly fn on each frame with the clip's draw, because every
    operation here acts on channels independently (fn must, too).

    Why one draw per clip rather than per frame: a clip is one sample, and an augmented
    sample should be a plausible recording of it. A rotation, shear or posterisation that
    changes from frame to frame is flicker that neither clean clips nor the grid's
    corruptions have (the grid keeps a corruption's kind and severity for a whole clip);
    frame-independent draws would also teach invariance to temporal jitter instead of to
    the image operation. Element-wise noise (corrupt_aug's `seen` mode) still differs per
    frame, as the grid's per-frame seeds make it."""
    if x.dim() == 4:
        return fn(x, *args, **kwargs)
    if x.dim() != 5:
        raise ValueError(f"expected images (B, C, H, W) or clips (B, T, C, H, W); got "
                         f"shape {tuple(x.shape)}")
    b, t, c, h, w = x.shape
    return fn(x.reshape(b, t * c, h, w), *args, **kwargs).reshape(b, t, c, h, w)


def modality_kinds(ctx: MethodContext, batch: Batch) -> dict[str, str | None]:
    """modality -> "image" / "audio" from the method context's specs. A context built
    without specs (the legacy four-argument MethodContext) falls back to the input's rank:
    2-D audio waveforms, 4-D images, 5-D clips; anything else is None (left alone)."""
    kinds = {}
    for m, x in batch.inputs.items():
        kind = ctx.kind(m) if m in ctx.modalities else None
        if kind is None and not ctx.specs:
            kind = RANK_KINDS.get(x.dim())
        kinds[m] = kind
    return kinds


def image_modalities(ctx: MethodContext, batch: Batch) -> tuple[str, ...]:
    """The image modalities (still or clips) of `batch`, by kind (see `modality_kinds`)."""
    return tuple(m for m, kind in modality_kinds(ctx, batch).items() if kind == "image")
