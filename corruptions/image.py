"""The 19 image corruptions of `imagecorruptions` (Hendrycks & Dietterich's ImageNet-C
corruptions as packaged by Michaelis et al.): the 15 common ones plus the 4 validation ones
(speckle_noise, gaussian_blur, spatter, saturate), declared as specs of `kind="image"`
(`SPECS`, which `corruptions.registry` finds).

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

`reference(name, sample, severity, seed)` takes a uint8 (H, W, C) array, C in {1, 3},
H, W >= 32 and returns a uint8 array of the same shape. One-channel images are replicated to
RGB, corrupted, and the rounded mean of the three output channels is returned. A random
corruption's draw is the seed of each sample (the reference draws inside its call); the
deterministic ones (blurs but glass and motion blur, brightness, contrast, saturate,
pixelate, jpeg_compression) draw nothing.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from corruptions import _imagecorruptions_compat as _compat
from corruptions import scales, small_images
from corruptions.scales import DEFAULT_SCALE, resolve_scale
from corruptions.spec import (
    Fidelity,
    Spec,
    TorchImpl,
    check_severity,
    no_draw,
    sample_by_sample,
    seed_draw,
)

BACKEND = _compat.BACKEND


def reference_corrupt(image: np.ndarray, severity: int, name: str, seed: int,
                      scale: str) -> np.ndarray:
    """The reference backend on one uint8 (H, W, 3) image at a resolved severity scale:
    `imagecorruptions` for `imagenet`, `corruptions.small_images` for the small scales."""
    if scale == "imagenet":
        return _compat.corrupt(image, severity, name, seed)
    return small_images.corrupt(image, severity, name, seed, scale)


def _check_sample(sample: np.ndarray) -> None:
    if not isinstance(sample, np.ndarray) or sample.dtype != np.uint8:
        raise ValueError(f"image sample must be a uint8 numpy array, got "
                         f"{getattr(sample, 'dtype', type(sample).__name__)}")
    if sample.ndim != 3 or sample.shape[2] not in (1, 3):
        raise ValueError(f"image sample must have shape (H, W, C) with C in {{1, 3}}, "
                         f"got {sample.shape}")
    if sample.shape[0] < 32 or sample.shape[1] < 32:
        raise ValueError(f"image height and width must be at least 32, got {sample.shape[:2]}")


def reference(name: str, sample: np.ndarray, severity: int, seed: int,
              scale: str = DEFAULT_SCALE, **context) -> np.ndarray:
    """Corruption `name` of one uint8 (H, W, C) image, C in {1, 3}, with its randomness from
    `seed`, at severity `scale` (`auto`: from the image size): the reference backend's
    per-sample function (`functools.partial(reference, name)` is a spec's `reference`)."""
    _check_sample(sample)
    check_severity(severity)
    seed = operator.index(seed)
    scale = resolve_scale(scale, *sample.shape[:2])
    if sample.shape[2] == 3:
        return reference_corrupt(sample, severity, name, seed, scale)
    rgb = np.repeat(sample, 3, axis=2)
    out = reference_corrupt(rgb, severity, name, seed, scale)
    return np.rint(out.mean(axis=2, keepdims=True)).astype(np.uint8)


RANDOMNESS = ("seed: the reference draws inside its call, from numpy's global RNG seeded "
              "with it (a clip's frames: each its own seed); the torch port from a "
              "torch.Generator seeded with it")


def _declare(name: str, family: str, fidelity: Fidelity, note: str = "",
             draws: tuple[str, ...] = (), cpu_function: str | None = None,
             random: bool = True) -> Spec:
    """One corruption's spec: the reference (`imagecorruptions`, or the small-image
    generators), its severity tables at every scale, and its torch port; `draws`: the
    parameters the torch port draws apart (`draw_<name>`), `random`: whether it draws."""
    function = functools.partial(reference, name)
    randomness = RANDOMNESS if random else ""
    if draws:
        randomness += f"; the torch port draws {', '.join(draws)} apart: those are its draw"
    return Spec(
        name=name, kind="image", family=family, backend=BACKEND,
        draw=seed_draw if random else no_draw, apply=sample_by_sample(function),
        prepare=scales.image_context, reference=function, randomness=randomness,
        torch=TorchImpl("corruptions.torch_image", name, fidelity, note,
                        f"draw_{name}" if draws else None, cpu_function),
        severity_table=scales.describe(name, "imagenet"),
        scale_tables={scale: scales.describe(name, scale) for scale in scales.SCALES})


EXACT, SAME, REFERENCE = Fidelity.EXACT, Fidelity.SAME_ALGORITHM, Fidelity.REFERENCE
SPECS: tuple[Spec, ...] = (
    _declare("gaussian_noise", "noise", SAME),
    _declare("shot_noise", "noise", SAME, "Poisson draws by inverting the CDF"),
    _declare("impulse_noise", "noise", SAME),
    _declare("defocus_blur", "blur", EXACT, "FFT", random=False),
    _declare("glass_blur", "blur", SAME,
             "the reference moves pixels one at a time, each move reading pixels earlier "
             "moves may have overwritten; the chains of moves are followed for all pixels "
             "at once, which gives the reference's image for the same offsets"),
    _declare("motion_blur", "blur", EXACT, "given its angle", draws=("angle",)),
    _declare("zoom_blur", "blur", EXACT, random=False),
    _declare("snow", "weather", SAME,
             "blurs its snow layer after cropping it to the image, the reference before"),
    _declare("frost", "weather", EXACT, "given photo and crop",
             draws=("photo", "top", "left")),
    _declare("fog", "weather", SAME, "diamond-square fractal"),
    _declare("brightness", "weather", EXACT, random=False),
    _declare("contrast", "digital", EXACT, random=False),
    _declare("elastic_transform", "digital", SAME,
             "its affine warp by the reference (OpenCV) at the cifar and tinyimagenet "
             "scales"),
    _declare("pixelate", "digital", EXACT,
             "Pillow's fixed-point BOX/NEAREST arithmetic; on the CPU, Pillow itself",
             cpu_function="pixelate_arrays", random=False),
    _declare("jpeg_compression", "digital", REFERENCE, "Pillow's libjpeg", random=False),
    _declare("speckle_noise", "noise", SAME),
    _declare("gaussian_blur", "blur", EXACT, random=False),
    _declare("spatter", "weather", SAME,
             "the water's shading, severities 1-3, by the reference's OpenCV calls"),
    _declare("saturate", "digital", EXACT, random=False),
)
CORRUPTIONS: dict[str, Spec] = {c.name: c for c in SPECS}
assert tuple(CORRUPTIONS) == _compat.NAMES, "declared in imagecorruptions' order"
