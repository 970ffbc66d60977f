"""Severity scales: the image corruptions' constants for the image size they were made for.

Hendrycks & Dietterich published three severity tables for the same 15 + 4 corruptions:

* ``imagenet`` (224 px): ImageNet-C, as packaged by `imagecorruptions` 1.1.2;
* ``tinyimagenet`` (64 px): Tiny-ImageNet-C, ``make_tinyimagenet_c.py``;
* ``cifar`` (32 px): CIFAR-10-C, ``make_cifar_c.py``.

A blur radius or a zoom made for 224 px erases a 32 px image at severity 1, so a ladder is only
graded when its table matches the images. ``auto`` picks the table from the image's shorter
side: up to 45 px ``cifar``, up to 120 px ``tinyimagenet``, above that ``imagenet`` (the
geometric means of 32/64 and 64/224, i.e. the nearest published size on a log scale).

The constants below are read from the published generators (pins in `corruptions.small_images`;
ImageNet: the `c = [...]` lists of `imagecorruptions.corruptions`). Where the small-image
generators differ in algorithm, not only in constants, `corruptions.small_images` says how.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from corruptions.spec import unknown_name_message

SCALES = ("imagenet", "tinyimagenet", "cifar")
SCALE_CHOICES = (*SCALES, "auto")
DEFAULT_SCALE = "auto"
# the image size each table was made for (the small generators hard-code it)
NOMINAL_SIZE = {"imagenet": 224, "tinyimagenet": 64, "cifar": 32}
# shorter side (px) up to which `auto` picks the scale
AUTO_THRESHOLDS = (("cifar", 45), ("tinyimagenet", 120))


def check_scale(scale: str) -> str:
    if scale not in SCALE_CHOICES:
        raise ValueError(unknown_name_message("severity scale", scale, SCALE_CHOICES))
    return scale


def auto_scale(height: int, width: int) -> str:
    """The published table nearest (on a log scale) to an image of this size."""
    side = min(height, width)
    for scale, limit in AUTO_THRESHOLDS:
        if side <= limit:
            return scale
    return "imagenet"


def resolve_scale(scale: str, height: int, width: int) -> str:
    """`auto` -> the scale for this image size; a named scale is returned unchanged."""
    return auto_scale(height, width) if check_scale(scale) == "auto" else scale


def image_context(images: np.ndarray, scale: str = DEFAULT_SCALE, **options
                  ) -> tuple[int, dict[str, str]]:
    """The `prepare` of the image corruptions: a batch's number of images and its context,
    the severity scale resolved for the images' size."""
    resolved = resolve_scale(scale, *images.shape[1:3]) if np.ndim(images) == 4 else scale
    return len(images), {"scale": resolved}


@dataclass(frozen=True)
class Table:
    """One corruption's constants at one scale: what each number is, and the five rows."""

    parameters: tuple[str, ...]
    rows: tuple[tuple, ...]

    def at(self, severity: int) -> tuple:
        return self.rows[severity - 1]


def _table(parameters: Sequence[str], rows: Sequence) -> Table:
    return Table(tuple(parameters),
                 tuple(r if isinstance(r, tuple) else (r,) for r in rows))


_SNOW = ("snow loc", "snow scale", "zoom", "threshold", "blur radius", "blur sigma",
         "image weight")
_SPATTER = ("liquid loc", "liquid scale", "liquid sigma", "threshold", "intensity", "mud")
# CIFAR / Tiny-ImageNet elastic: (alpha, sigma, affine) in multiples of the nominal size
_ELASTIC_SMALL = ("alpha", "sigma", "affine shift")


def _elastic_small(size: int, rows: Sequence[tuple[float, float, float]]) -> Table:
    return _table(_ELASTIC_SMALL, [tuple(size * f for f in row) for row in rows])


# name -> scale -> Table
TABLES: dict[str, dict[str, Table]] = {
    "gaussian_noise": {
        "imagenet": _table(("sigma",), [.08, .12, .18, .26, .38]),
        "tinyimagenet": _table(("sigma",), [.04, .08, .12, .15, .18]),
        "cifar": _table(("sigma",), [.04, .06, .08, .09, .10]),
    },
    "shot_noise": {
        "imagenet": _table(("poisson rate",), [60, 25, 12, 5, 3]),
        "tinyimagenet": _table(("poisson rate",), [250, 100, 50, 30, 15]),
        "cifar": _table(("poisson rate",), [500, 250, 100, 75, 50]),
    },
    "impulse_noise": {
        "imagenet": _table(("s&p amount",), [.03, .06, .09, .17, .27]),
        "tinyimagenet": _table(("s&p amount",), [.01, .02, .05, .08, .14]),
        "cifar": _table(("s&p amount",), [.01, .02, .03, .05, .07]),
    },
    "speckle_noise": {
        "imagenet": _table(("multiplicative sigma",), [.15, .2, .35, .45, .6]),
        "tinyimagenet": _table(("multiplicative sigma",), [.15, .2, .25, .3, .35]),
        "cifar": _table(("multiplicative sigma",), [.06, .1, .12, .16, .2]),
    },
    "defocus_blur": {
        "imagenet": _table(("disk radius", "alias blur"),
                           [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)]),
        "tinyimagenet": _table(("disk radius", "alias blur"),
                               [(0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)]),
        "cifar": _table(("disk radius", "alias blur"),
                        [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)]),
    },
    "glass_blur": {
        "imagenet": _table(("sigma", "max delta", "iterations"),
                           [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)]),
        "tinyimagenet": _table(("sigma", "max delta", "iterations"),
                               [(0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1),
                                (0.9, 2, 2)]),
        "cifar": _table(("sigma", "max delta", "iterations"),
                        [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
                         (0.4, 1, 2)]),
    },
    "motion_blur": {
        "imagenet": _table(("radius", "sigma"),
                           [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)]),
        "tinyimagenet": _table(("radius", "sigma"),
                               [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)]),
        "cifar": _table(("radius", "sigma"), [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)]),
    },
    # np.arange(start, stop, step) zoom factors
    "zoom_blur": {
        "imagenet": _table(("zoom start", "zoom stop", "zoom step"),
                           [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02),
                            (1, 1.26, 0.02), (1, 1.31, 0.03)]),
        "tinyimagenet": _table(("zoom start", "zoom stop", "zoom step"),
                               [(1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01),
                                (1, 1.21, 0.01), (1, 1.26, 0.01)]),
        "cifar": _table(("zoom start", "zoom stop", "zoom step"),
                        [(1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01),
                         (1, 1.21, 0.01), (1, 1.26, 0.01)]),
    },
    "gaussian_blur": {
        "imagenet": _table(("sigma",), [1, 2, 3, 4, 6]),
        "tinyimagenet": _table(("sigma",), [.5, .75, 1, 1.25, 1.5]),
        "cifar": _table(("sigma",), [.4, .6, .7, .8, 1]),
    },
    "snow": {
        "imagenet": _table(_SNOW, [(0.1, 0.3, 3, 0.5, 10, 4, 0.8),
                                   (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                                   (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
                                   (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                                   (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)]),
        "tinyimagenet": _table(_SNOW, [(0.1, 0.2, 1, 0.6, 8, 3, 0.8),
                                       (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
                                       (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
                                       (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
                                       (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)]),
        "cifar": _table(_SNOW, [(0.1, 0.2, 1, 0.6, 8, 3, 0.95),
                                (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                                (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                                (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                                (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)]),
    },
    "frost": {
        "imagenet": _table(("image weight", "frost weight"),
                           [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)]),
        "tinyimagenet": _table(("image weight", "frost weight"),
                               [(1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)]),
        "cifar": _table(("image weight", "frost weight"),
                        [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)]),
    },
    "fog": {
        "imagenet": _table(("fog strength", "wibble decay"),
                           [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)]),
        "tinyimagenet": _table(("fog strength", "wibble decay"),
                               [(.4, 3), (.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)]),
        "cifar": _table(("fog strength", "wibble decay"),
                        [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)]),
    },
    "brightness": {
        "imagenet": _table(("V shift",), [.1, .2, .3, .4, .5]),
        "tinyimagenet": _table(("V shift",), [.1, .2, .3, .4, .5]),
        "cifar": _table(("V shift",), [.05, .1, .15, .2, .3]),
    },
    "spatter": {
        "imagenet": _table(_SPATTER, [(0.65, 0.3, 4, 0.69, 0.6, 0),
                                      (0.65, 0.3, 3, 0.68, 0.6, 0),
                                      (0.65, 0.3, 2, 0.68, 0.5, 0),
                                      (0.65, 0.3, 1, 0.65, 1.5, 1),
                                      (0.67, 0.4, 1, 0.65, 1.5, 1)]),
        "tinyimagenet": _table(_SPATTER, [(0.62, 0.1, 0.7, 0.7, 0.6, 0),
                                          (0.65, 0.1, 0.8, 0.7, 0.6, 0),
                                          (0.65, 0.3, 1, 0.69, 0.6, 0),
                                          (0.65, 0.1, 0.7, 0.68, 0.6, 1),
                                          (0.65, 0.1, 0.5, 0.67, 0.6, 1)]),
        "cifar": _table(_SPATTER, [(0.62, 0.1, 0.7, 0.7, 0.5, 0),
                                   (0.65, 0.1, 0.8, 0.7, 0.5, 0),
                                   (0.65, 0.3, 1, 0.69, 0.5, 0),
                                   (0.65, 0.1, 0.7, 0.69, 0.6, 1),
                                   (0.65, 0.1, 0.5, 0.68, 0.6, 1)]),
    },
    "contrast": {
        "imagenet": _table(("contrast factor",), [0.4, .3, .2, .1, .05]),
        "tinyimagenet": _table(("contrast factor",), [.4, .3, .2, .1, 0.05]),
        "cifar": _table(("contrast factor",), [.75, .5, .4, .3, 0.15]),
    },
    "elastic_transform": {
        # displacement field: uniform noise in +-0.5% of H, gaussian sigma 1% of (H, W)
        "imagenet": _table(("alpha",), [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1,
                                        250 * 0.12]),
        "tinyimagenet": _elastic_small(64, [(0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06),
                                            (0.1, 0.03, 0.03), (0.16, 0.03, 0.02)]),
        "cifar": _elastic_small(32, [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06),
                                     (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)]),
    },
    "pixelate": {
        "imagenet": _table(("downscale factor",), [0.6, 0.5, 0.4, 0.3, 0.25]),
        "tinyimagenet": _table(("downscale factor",), [0.9, 0.8, 0.7, 0.6, 0.5]),
        "cifar": _table(("downscale factor",), [0.95, 0.9, 0.85, 0.75, 0.65]),
    },
    "jpeg_compression": {
        "imagenet": _table(("JPEG quality",), [25, 18, 15, 10, 7]),
        "tinyimagenet": _table(("JPEG quality",), [65, 58, 50, 40, 25]),
        "cifar": _table(("JPEG quality",), [80, 65, 58, 50, 40]),
    },
    "saturate": {
        "imagenet": _table(("S factor", "S shift"),
                           [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)]),
        "tinyimagenet": _table(("S factor", "S shift"),
                               [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)]),
        "cifar": _table(("S factor", "S shift"),
                        [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)]),
    },
}


def constants(name: str, severity: int, scale: str) -> tuple:
    """The constants of corruption `name` at `severity` on a resolved `scale`."""
    return TABLES[name][scale].at(severity)


def _number(value) -> str:
    return f"{value:g}"


def describe(name: str, scale: str) -> tuple[str, ...]:
    """A human-readable row per severity, e.g. 'disk radius=0.3, alias blur=0.4'."""
    table = TABLES[name][scale]
    rows = []
    for values in table.rows:
        if name == "zoom_blur":
            factors = np.arange(*values)
            rows.append(f"zoom factors {factors[0]:.2f}..{factors[-1]:.2f} step "
                        f"{_number(values[2])} ({len(factors)} zooms)")
        elif name == "spatter":
            kind = "mud" if values[5] else "water"
            rows.append(f"{kind}: " + ", ".join(
                f"{k}={_number(v)}" for k, v in zip(table.parameters[:5], values[:5],
                                                    strict=True)))
        else:
            rows.append(", ".join(f"{k}={_number(v)}"
                                  for k, v in zip(table.parameters, values, strict=True)))
    return tuple(rows)
