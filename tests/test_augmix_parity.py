"""Parity of AugMix's image operations (`baselines/_image_ops.py`) with the reference's Pillow
operations, google-research/augmix@a43b785668b38f5a1fef90793d8b23f43729aeaf:augmentations.py
(the ops) and cifar.py (`aug()`: the default op list `augmentations.augmentations`, severity 3).

Each test runs rambench's `apply_ops`, the code path training uses, magnitude mapping included,
with its two random draws fixed (the level and the sign; `torch.rand` patched), and calls
Pillow directly as the reference's lines do, on a fixed 32x32 RGB image and a few fixed levels
in the reference's range U(0.1, 3). Values are compared in grey levels (0-255). Ops that match
are checked pixel-exact or to the one grey level that Pillow's truncation to 8 bits costs; ops
that differ by design (`_image_ops`'s "Deviations from the reference's Pillow ops") are pinned
to the documented difference: the torch op equals Pillow's with the documented change, and its
distance to the reference's own call stays within a bound derived from the geometry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from baselines import _image_ops
from baselines._image_ops import OPS, apply_ops

SIZE = 32  # the reference's IMAGE_SIZE (CIFAR)
SEVERITY = 3.0  # cifar.py's --aug-severity default
# Reference levels, from sample_level(3) = U(0.1, 3): 0.3 is below the reference's integer
# cut-offs (0 degrees, 0 px), 1.9 and 2.8 are typical, 2.8 also gives posterize 3 bits.
LEVELS = (0.3, 1.9, 2.8)
# float32 arithmetic on values v / 255: a relative error of ~1e-7, 255 x that < 1e-4 grey
# levels; 1e-3 leaves room and is still far below one grey level.
EPS = 1e-3
# Resampling: affine_grid / grid_sample compute source positions in float32, off by at most
# ~1e-5 px on a 32 px image; times the steepest step between neighbours (255) < 0.01 grey.
EPS_RESAMPLE = 0.02


def structured_image() -> np.ndarray:
    """Fixed (32, 32, 3) uint8 image: a horizontal ramp (R), a diagonal sinusoid (G) and a
    4 px checkerboard on a vertical ramp (B); no channel spans 0-255 (autocontrast has work)
    and the histograms are far from flat (equalize has work)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    r = 20 + 7 * x
    g = 128 + 90 * np.sin(2 * np.pi * (x + 2 * y) / 23)
    b = 40 + 150 * ((x // 4 + y // 4) % 2) + 2 * y
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


def every_level_image() -> np.ndarray:
    """Fixed (32, 32, 3) uint8 image holding every grey level exactly 4 times per channel (a
    flat histogram), channels offset by 85 levels."""
    i = np.arange(SIZE * SIZE).reshape(SIZE, SIZE)
    return np.stack([(i + 85 * c) % 256 for c in range(3)], axis=-1).astype(np.uint8)


def rambench_op(img: np.ndarray, name: str, level: float, sign: float = 1.0) -> np.ndarray:
    """apply_ops(x, OPS.index(name), severity 3) with the level and the sign fixed, in grey
    levels (float64, (H, W, C)). apply_ops draws m = U(0.1, severity) / 10 then the sign
    (-1 where the draw is < 0.5) with torch.rand; both draws are replaced here."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    draws = [torch.tensor([(level - 0.1) / (SEVERITY - 0.1)]),
             torch.tensor([0.25 if sign < 0 else 0.75])]

    def fake_rand(*args, **kwargs):
        return draws.pop(0)

    real_rand = _image_ops.torch.rand
    _image_ops.torch.rand = fake_rand
    try:
        out = apply_ops(x, torch.tensor([OPS.index(name)]), SEVERITY)
    finally:
        _image_ops.torch.rand = real_rand
    assert not draws, "apply_ops no longer draws (level, sign) with torch.rand"
    return out[0].permute(1, 2, 0).double().numpy() * 255.0


# --- the reference's operations, written after augmentations.py at the pinned commit ---------

def int_parameter(level: float, maxval: float) -> int:
    return int(level * maxval / 10)


def float_parameter(level: float, maxval: float) -> float:
    return float(level) * maxval / 10.


def affine(img: np.ndarray, matrix: tuple[float, ...]) -> np.ndarray:
    return np.asarray(Image.fromarray(img).transform((SIZE, SIZE), Image.AFFINE, matrix,
                                                     resample=Image.BILINEAR))


def reference_op(img: np.ndarray, name: str, level: float, sign: float = 1.0) -> np.ndarray:
    """The reference's op `name` at a fixed level and sign (its draws replaced), as uint8."""
    pil = Image.fromarray(img)
    if name == "autocontrast":
        return np.asarray(ImageOps.autocontrast(pil))
    if name == "equalize":
        return np.asarray(ImageOps.equalize(pil))
    if name == "posterize":
        return np.asarray(ImageOps.posterize(pil, 4 - int_parameter(level, 4)))
    if name == "solarize":
        return np.asarray(ImageOps.solarize(pil, 256 - int_parameter(level, 256)))
    if name == "rotate":
        degrees = sign * int_parameter(level, 30)
        return np.asarray(pil.rotate(degrees, resample=Image.BILINEAR))
    if name in ("shear_x", "shear_y"):
        k = sign * float_parameter(level, 0.3)
        return affine(img, (1, k, 0, 0, 1, 0) if name == "shear_x" else (1, 0, 0, k, 1, 0))
    if name in ("translate_x", "translate_y"):
        t = sign * int_parameter(level, SIZE / 3)
        return affine(img, (1, 0, t, 0, 1, 0) if name == "translate_x" else (1, 0, 0, 0, 1, t))
    raise KeyError(name)


# --- resampling geometry -----------------------------------------------------------------------

def rotate_matrix(degrees: float) -> tuple[float, ...]:
    """Pillow's inverse affine map for Image.rotate(degrees) about the centre (w/2, h/2), as
    Image.rotate builds it (without its 15-decimal rounding)."""
    a = -math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    c = SIZE / 2
    return (cos, sin, c - cos * c - sin * c, -sin, cos, c + sin * c - cos * c)


def source(matrix: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel samples the input, in pixel indices (pixel i at i): Pillow maps
    the output pixel centre (x + 0.5, y + 0.5) through the matrix, then subtracts 0.5."""
    a, b, c, d, e, f = matrix
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    return a * x + b * y + c - 0.5, d * x + e * y + f - 0.5


def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sources whose four bilinear neighbours all lie in the image: there torch's
    grid_sample and Pillow's bilinear filter compute the same weighted sum."""
    return (u >= 0) & (u <= SIZE - 1) & (v >= 0) & (v <= SIZE - 1)


def check_same_map(ours: np.ndarray, pil: np.ndarray, matrix: tuple[float, ...],
                   img: np.ndarray) -> None:
    """`ours` (torch, real-valued) against Pillow's BILINEAR affine transform with the SAME
    inverse map, zone by zone:
    - interior (all four neighbours in the image): the same bilinear value, which Pillow
      truncates to 8 bits: 0 <= ours - pil < 1;
    - outside (source a pixel or more beyond the border): both 0;
    - the one-pixel border band in between: grid_sample's zero padding weighs the edge pixels
      by (1 - distance past the last pixel centre), while Pillow clamps to the edge pixel up to
      half a pixel past it and gives 0 beyond. Along one axis the two differ by at most half an
      edge pixel's value (weight 1 - w against 1 or 0, w <= 1/2 either way), at a corner by at
      most 3/4 (1 - (1/2)^2); so |ours - pil| <= 3/4 E + 1, E the largest edge pixel."""
    u, v = source(matrix)
    interior = inside(u, v)
    outside = (u <= -1) | (u >= SIZE) | (v <= -1) | (v >= SIZE)
    band = ~interior & ~outside
    d = ours - pil.astype(np.float64)
    assert interior.sum() > SIZE * SIZE // 2
    assert d[interior].min() >= -EPS_RESAMPLE and d[interior].max() < 1 + EPS_RESAMPLE
    assert np.abs(ours[outside]).max(initial=0) <= EPS_RESAMPLE
    assert (pil[outside] == 0).all()
    edge = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).max()
    assert np.abs(d[band]).max(initial=0) <= 0.75 * edge + 1 + EPS_RESAMPLE


def check_shifted_map(ours: np.ndarray, ref: np.ndarray, ours_matrix: tuple[float, ...],
                      ref_matrix: tuple[float, ...], img: np.ndarray) -> float:
    """`ours` (the torch op) against the reference's call, whose map differs from the torch
    op's: on pixels whose both sources are interior, ours samples the bilinear interpolant f
    at p1 and the reference truncates f(p2), so ours - ref lies in [f(p1) - f(p2), f(p1) -
    f(p2) + 1). f is Lx-Lipschitz along rows and Ly along columns (piecewise linear between
    pixels; Lx, Ly the channel's largest step between horizontal / vertical neighbours), so
    |f(p1) - f(p2)| <= Lx |du| + Ly |dv|, du, dv the per-pixel displacement between the two
    maps. Returns the mean |ours - ref| over those pixels."""
    u1, v1 = source(ours_matrix)
    u2, v2 = source(ref_matrix)
    both = inside(u1, v1) & inside(u2, v2)
    im = img.astype(np.float64)
    lx = np.abs(np.diff(im, axis=1)).max(axis=(0, 1))  # (C,)
    ly = np.abs(np.diff(im, axis=0)).max(axis=(0, 1))
    bound = lx * np.abs(u1 - u2)[..., None] + ly * np.abs(v1 - v2)[..., None]  # (H, W, C)
    d = (ours - ref.astype(np.float64))[both]
    assert (d >= -bound[both] - EPS_RESAMPLE).all()
    assert (d < bound[both] + 1 + EPS_RESAMPLE).all()
    return float(np.abs(d).mean())


# --- the operation set ----------------------------------------------------------------------

def test_the_op_set_is_the_references_default_list():
    # augmentations.augmentations, which aug() uses unless --all-ops; the "all" set's color,
    # contrast, brightness and sharpness overlap ImageNet-C and are not implemented.
    reference = {"autocontrast", "equalize", "posterize", "rotate", "solarize", "shear_x",
                 "shear_y", "translate_x", "translate_y"}
    assert set(OPS) == reference and len(OPS) == len(reference)
    assert not {"color", "contrast", "brightness", "sharpness"} & set(OPS)


# --- ops that match -------------------------------------------------------------------------

@pytest.mark.parametrize("img", [structured_image(), every_level_image()],
                         ids=["structured", "every_level"])
def test_autocontrast_within_one_grey_level_below(img):
    # Pillow's LUT is int(v * 255 / (hi - lo) - lo * 255 / (hi - lo)): truncated, so it lies
    # up to one grey level below torch's real-valued (v - lo) / (hi - lo) (exactly 1 where the
    # double arithmetic lands just under an integer), never above.
    d = rambench_op(img, "autocontrast", 1.0) - reference_op(img, "autocontrast", 1.0)
    assert d.min() >= -EPS and d.max() <= 1 + EPS


@pytest.mark.parametrize("level", LEVELS)
def test_posterize_is_exact(level):
    # Same bits (4 - int(4 level / 10)), same mask on 8-bit values: exact.
    for img in (structured_image(), every_level_image()):
        d = rambench_op(img, "posterize", level) - reference_op(img, "posterize", level)
        assert np.abs(d).max() <= EPS


@pytest.mark.parametrize("level", (*LEVELS, 2.5))
def test_solarize_inverts_at_most_one_more_grey_level(level):
    img = every_level_image()  # holds every grey level, so the band below is populated
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    ref = reference_op(img, "solarize", level)
    # The op itself (invert v >= threshold) is exact at the reference's threshold T.
    t = 256 - int_parameter(level, 256)
    ours_at_t = _image_ops.solarize(x, torch.tensor([float(t)]) / 255.0)
    assert np.abs(ours_at_t[0].permute(1, 2, 0).double().numpy() * 255.0 - ref).max() <= EPS
    # apply_ops's threshold is 1 - m, i.e. 255 (1 - m) grey levels, where the reference's is
    # T = 256 - floor(256 m): T - 255 (1 - m) = 1 + frac(256 m) - m, in (1 - m, 2 - m), so the
    # levels in [255 (1 - m), T) are inverted by rambench only: floor(1 + frac(256 m) - m) of
    # them, 0 or 1 for m <= 0.3.
    m = level / 10
    band = (img >= 255 * (1 - m)) & (img < t)
    n_levels = len(np.unique(img[band]))
    assert n_levels == math.floor(1 + (256 * m) % 1 - m) <= 1
    d = rambench_op(img, "solarize", level) - ref
    assert np.abs(d[~band]).max() <= EPS
    assert np.allclose(d[band], 255 - 2 * img[band].astype(np.float64), atol=EPS)


def test_equalize_matches_on_a_flat_histogram():
    # Both maps are the identity on a flat histogram (4 pixels per level): torch's
    # 255 (C(v) - 4) / (1024 - 4) = v, Pillow's ((4 v) + 2) // 4 = v.
    img = every_level_image()
    ours = rambench_op(img, "equalize", 1.0)
    assert np.abs(ours - reference_op(img, "equalize", 1.0)).max() <= EPS
    assert np.abs(ours - img).max() <= EPS


def test_equalize_deviation_is_the_lut():
    """Per channel, with h the histogram, N = 1024 pixels, C(v) / E(v) the count of pixels
    <= v / < v, a / z the counts of the darkest / brightest level present:
    torch: 255 (C(v) - a) / (N - a), real-valued (darkest -> 0, brightest -> 255);
    Pillow: min(255, (E(v) + s // 2) // s), s = (N - z) // 255 (the integer step makes the
    LUT overshoot 255 and clip when N - z is not a multiple of 255). The test pins both."""
    img = structured_image()
    ours = rambench_op(img, "equalize", 1.0)
    ref = reference_op(img, "equalize", 1.0)
    for c in range(3):
        v = img[..., c].astype(np.int64)
        h = np.bincount(v.ravel(), minlength=256)
        cum = np.cumsum(h)
        present = np.flatnonzero(h)
        a, z, n = h[present[0]], h[present[-1]], v.size
        textbook = 255.0 * (cum - a) / (n - a)
        s = (n - z) // 255
        pil_lut = np.minimum(255, (cum - h + s // 2) // s)
        assert np.abs(ours[..., c] - textbook[v]).max() <= EPS
        assert (ref[..., c] == pil_lut[v]).all()
    assert np.abs(ours - ref).max() > 1  # a real difference on this image, not rounding


# --- ops that differ by design --------------------------------------------------------------

def test_translate_is_pillows_with_real_pixels():
    for name in ("translate_x", "translate_y"):
        for level in LEVELS:
            for sign in (1.0, -1.0):
                img = structured_image()
                ours = rambench_op(img, name, level, sign)
                # apply_ops shifts by (W / 3) m px, unrounded; the reference by int((W / 3) m).
                t = sign * float_parameter(level, SIZE / 3)
                tr = sign * int_parameter(level, SIZE / 3)
                m_ours = (1, 0, t, 0, 1, 0) if name == "translate_x" else (1, 0, 0, 0, 1, t)
                m_ref = (1, 0, tr, 0, 1, 0) if name == "translate_x" else (1, 0, 0, 0, 1, tr)
                check_same_map(ours, affine(img, m_ours), m_ours, img)
                ref = reference_op(img, name, level, sign)
                check_shifted_map(ours, ref, m_ours, m_ref, img)
                if tr == 0:  # the reference's small levels are the identity, ours never
                    assert (ref == img).all() and np.abs(ours - img).max() > 1


def test_shear_is_pillows_about_the_centre():
    # apply_ops shears in normalised coordinates, about the image centre: Pillow's matrix
    # (1, k, -k H / 2, 0, 1, 0) (shear_x), where the reference's (1, k, 0, 0, 1, 0) shears
    # about the top-left corner; the two differ by a shift of k H / 2 px (<= 1.44 px at
    # severity 3), which check_shifted_map bounds.
    for name in ("shear_x", "shear_y"):
        for level in LEVELS:
            for sign in (1.0, -1.0):
                img = structured_image()
                ours = rambench_op(img, name, level, sign)
                k = sign * float_parameter(level, 0.3)
                if name == "shear_x":
                    m_ours, m_ref = (1, k, -k * SIZE / 2, 0, 1, 0), (1, k, 0, 0, 1, 0)
                else:
                    m_ours, m_ref = (1, 0, 0, k, 1, -k * SIZE / 2), (1, 0, 0, k, 1, 0)
                check_same_map(ours, affine(img, m_ours), m_ours, img)
                check_shifted_map(ours, reference_op(img, name, level, sign), m_ours, m_ref,
                                  img)


def test_rotate_is_pillows_with_real_degrees():
    # apply_ops rotates by 30 m degrees about the centre, in Pillow's direction; the reference
    # by int(30 m) degrees: at most 1 degree less, a displacement of r pi / 180 px at radius r
    # (<= 0.39 px at the corners of a 32 px image), which check_shifted_map bounds.
    img = structured_image()
    assert (np.asarray(Image.fromarray(img).rotate(7.3, resample=Image.BILINEAR))
            == affine(img, rotate_matrix(7.3))).all()  # rotate_matrix is Pillow's map
    for level in LEVELS:
        for sign in (1.0, -1.0):
            ours = rambench_op(img, "rotate", level, sign)
            degrees = sign * float_parameter(level, 30)
            m_ours = rotate_matrix(degrees)
            check_same_map(ours, affine(img, m_ours), m_ours, img)
            ref = reference_op(img, "rotate", level, sign)
            check_shifted_map(ours, ref, m_ours, rotate_matrix(sign * int_parameter(level, 30)),
                              img)
            if int_parameter(level, 30) == 0:  # the reference's 0 degrees: a copy
                assert (ref == img).all() and np.abs(ours - img).max() > 1
