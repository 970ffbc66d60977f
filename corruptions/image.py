"""The 19 image corruptions of `imagecorruptions` (Hendrycks & Dietterich's ImageNet-C
corruptions as packaged by Michaelis et al.): the 15 common ones plus the 4 validation ones
(speckle_noise, gaussian_blur, spatter, saturate), registered as `kind="image"`.

The reference code is used through `corruptions._imagecorruptions_compat`, which makes it run
on current dependencies without editing site-packages and without changing its results:

* `pkg_resources` (gone from setuptools >= 81; the reference only needs `resource_filename` to
  find its frost images) is provided by a minimal stand-in during the import, if missing;
* `gaussian_blur` / `glass_blur` passed `multichannel=True` to `skimage.filters.gaussian`
  (removed from scikit-image): re-implemented with `channel_axis=-1`, still a per-channel blur;
  glass_blur keeps its exact pixel-shuffling behaviour (made faster, bit-identical);
* `fog`'s `plasma_fractal` used `np.float_` (removed in numpy 2): re-implemented with
  `np.float64`;
* `spatter` (water, severities 1-3) divides its liquid mask by the mask's maximum, 0 when no
  liquid survives the threshold (about 2% of seeds for 32x32 images at severity 1): the
  reference then returns NaN, cast to an all-black image. A guard makes that case "no
  spatter"; all other outputs are unchanged;
* determinism: the reference draws from numpy's global RNG, so each call runs under a context
  that seeds it (and Python's `random`) from `seed` and restores the previous state; the
  result is the reference's after `np.random.seed(seed)`. `impulse_noise` used
  `skimage.util.random_noise` without `rng` (fresh OS entropy): it now gets `rng=seed`.

Everything else runs unmodified (checked on numpy 2.4, scipy 1.17, scikit-image 0.26,
opencv 5.0, Pillow 13, for sizes from 32x32 up and non-square images). frost crops a random
patch of one of its bundled frost photos (315x560 px and larger); the reference itself already
rescales the photo (cubic, x1.1 margin) when the image is larger, so no change was needed.

`apply(sample, severity, seed)` takes a uint8 (H, W, C) array, C in {1, 3}, H, W >= 32 and
returns a uint8 array of the same shape. One-channel images are replicated to RGB, corrupted,
and the rounded mean of the three output channels is returned.
"""

from __future__ import annotations

import operator

import numpy as np

from corruptions import _imagecorruptions_compat as _compat
from corruptions.registry import SEVERITIES, Corruption, register

BACKEND = _compat.BACKEND

FAMILIES: dict[str, str] = {
    "gaussian_noise": "noise",
    "shot_noise": "noise",
    "impulse_noise": "noise",
    "speckle_noise": "noise",
    "defocus_blur": "blur",
    "glass_blur": "blur",
    "motion_blur": "blur",
    "zoom_blur": "blur",
    "gaussian_blur": "blur",
    "snow": "weather",
    "frost": "weather",
    "fog": "weather",
    "brightness": "weather",
    "spatter": "weather",
    "contrast": "digital",
    "elastic_transform": "digital",
    "pixelate": "digital",
    "jpeg_compression": "digital",
    "saturate": "digital",
}

# The reference's per-severity constants (the `c = [...]` list of each function), with names
# for what they are. Pixel values are on the reference's [0, 1] scale unless stated otherwise.
REFERENCE_CONSTANTS: dict[str, tuple[tuple[str, ...], list]] = {
    "gaussian_noise": (("sigma",), [.08, .12, 0.18, 0.26, 0.38]),
    "shot_noise": (("poisson rate",), [60, 25, 12, 5, 3]),
    "impulse_noise": (("s&p amount",), [.03, .06, .09, 0.17, 0.27]),
    "speckle_noise": (("multiplicative sigma",), [.15, .2, 0.35, 0.45, 0.6]),
    "defocus_blur": (("disk radius", "alias blur"),
                     [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)]),
    "glass_blur": (("sigma", "max delta", "iterations"),
                   [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)]),
    "motion_blur": (("radius", "sigma"), [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)]),
    # np.arange(start, stop, step) zoom factors
    "zoom_blur": (("zoom start", "zoom stop", "zoom step"),
                  [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02),
                   (1, 1.31, 0.03)]),
    "gaussian_blur": (("sigma",), [1, 2, 3, 4, 6]),
    "snow": (("snow loc", "snow scale", "zoom", "threshold", "blur radius", "blur sigma",
              "image weight"),
             [(0.1, 0.3, 3, 0.5, 10, 4, 0.8),
              (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
              (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
              (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
              (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)]),
    "frost": (("image weight", "frost weight"),
              [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)]),
    "fog": (("fog strength", "wibble decay"),
            [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)]),
    "brightness": (("V shift",), [.1, .2, .3, .4, .5]),
    "spatter": (("liquid loc", "liquid scale", "liquid sigma", "threshold", "intensity",
                 "mud"),
                [(0.65, 0.3, 4, 0.69, 0.6, 0),
                 (0.65, 0.3, 3, 0.68, 0.6, 0),
                 (0.65, 0.3, 2, 0.68, 0.5, 0),
                 (0.65, 0.3, 1, 0.65, 1.5, 1),
                 (0.67, 0.4, 1, 0.65, 1.5, 1)]),
    "contrast": (("contrast factor",), [0.4, .3, .2, .1, .05]),
    # displacement field: uniform noise in +-0.5% of H, gaussian sigma 1% of (H, W), times alpha
    "elastic_transform": (("alpha",), [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1,
                                       250 * 0.12]),
    "pixelate": (("downscale factor",), [0.6, 0.5, 0.4, 0.3, 0.25]),
    "jpeg_compression": (("JPEG quality",), [25, 18, 15, 10, 7]),
    "saturate": (("S factor", "S shift"), [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)]),
}


def _format_number(value) -> str:
    return f"{value:g}"


def _severity_table(name: str) -> tuple[str, ...]:
    keys, constants = REFERENCE_CONSTANTS[name]
    rows = []
    for c in constants:
        values = c if isinstance(c, tuple) else (c,)
        if name == "zoom_blur":
            factors = np.arange(*values)
            rows.append(f"zoom factors {factors[0]:.2f}..{factors[-1]:.2f} step "
                        f"{_format_number(values[2])} ({len(factors)} zooms)")
        elif name == "spatter":
            kind = "mud" if values[5] else "water"
            rows.append(f"{kind}: " + ", ".join(
                f"{k}={_format_number(v)}" for k, v in zip(keys[:5], values[:5], strict=True)))
        else:
            rows.append(", ".join(
                f"{k}={_format_number(v)}" for k, v in zip(keys, values, strict=True)))
    return tuple(rows)


def _check_sample(sample: np.ndarray) -> None:
    if not isinstance(sample, np.ndarray) or sample.dtype != np.uint8:
        raise ValueError(f"image sample must be a uint8 numpy array, got "
                         f"{getattr(sample, 'dtype', type(sample).__name__)}")
    if sample.ndim != 3 or sample.shape[2] not in (1, 3):
        raise ValueError(f"image sample must have shape (H, W, C) with C in {{1, 3}}, "
                         f"got {sample.shape}")
    if sample.shape[0] < 32 or sample.shape[1] < 32:
        raise ValueError(f"image height and width must be at least 32, got {sample.shape[:2]}")


def _make_apply(name: str):
    def apply(sample: np.ndarray, severity: int, seed: int, **context) -> np.ndarray:
        _check_sample(sample)
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        seed = operator.index(seed)
        if sample.shape[2] == 3:
            return _compat.corrupt(sample, severity, name, seed)
        rgb = np.repeat(sample, 3, axis=2)
        out = _compat.corrupt(rgb, severity, name, seed)
        return np.rint(out.mean(axis=2, keepdims=True)).astype(np.uint8)

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"imagecorruptions' {name} (see corruptions.image)."
    return apply


CORRUPTIONS: dict[str, Corruption] = {
    name: register(Corruption(
        name=name,
        kind="image",
        family=FAMILIES[name],
        apply=_make_apply(name),
        severity_table=_severity_table(name),
        backend=BACKEND,
    ))
    for name in _compat.NAMES
}
