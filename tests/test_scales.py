"""Severity scales: the published CIFAR-10-C / Tiny-ImageNet-C / ImageNet-C constants, the
`auto` choice, and every deterministic corruption at every scale and severity against the
published formula worked out here on a fixed image (stochastic ones: the statistics their
formula implies). Both backends."""

from __future__ import annotations

import functools
from io import BytesIO

import cv2
import numpy as np
import pytest
import skimage.color
import skimage.data
import skimage.transform
from PIL import Image
from scipy.ndimage import zoom as scizoom
from skimage.filters import gaussian

from corruptions import backends, scales, small_images
from corruptions.scales import SCALES

SEVERITIES = (1, 2, 3, 4, 5)
BACKENDS = ("reference", "torch")


@functools.lru_cache(maxsize=4)
def photo(size: int) -> np.ndarray:
    out = skimage.transform.resize(skimage.data.chelsea(), (size, size), anti_aliasing=True)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def run(name: str, image: np.ndarray, severity: int, scale: str, backend: str,
        seed: int = 0) -> np.ndarray:
    return backends.corrupt(image[None], name, severity, [seed], backend, kind="image",
                            scale=scale)[0][0]


def c(name: str, severity: int, scale: str) -> tuple:
    return scales.TABLES[name][scale].at(severity)


# ----------------------------------------------------------------------------- tables

def test_published_constants_quoted_by_the_papers():
    assert [c("contrast", s, "cifar")[0] for s in SEVERITIES] == [.75, .5, .4, .3, .15]
    assert [c("defocus_blur", s, "cifar")[0] for s in SEVERITIES] == [.3, .4, .5, 1, 1.5]
    assert [c("defocus_blur", s, "imagenet")[0] for s in SEVERITIES] == [3, 4, 6, 8, 10]
    assert [c("contrast", s, "imagenet")[0] for s in SEVERITIES] == [.4, .3, .2, .1, .05]
    assert [c("jpeg_compression", s, "tinyimagenet")[0] for s in SEVERITIES] == [
        65, 58, 50, 40, 25]
    # CIFAR's elastic constants are multiples of its 32 px image size
    assert c("elastic_transform", 2, "cifar") == pytest.approx((32 * .05, 32 * .2, 32 * .07))


def test_every_corruption_has_five_rows_at_every_scale():
    assert set(scales.TABLES) == set(small_images.FUNCTIONS)
    for name, tables in scales.TABLES.items():
        assert set(tables) == set(SCALES), name
        for scale, table in tables.items():
            assert len(table.rows) == 5 and all(
                len(r) == len(table.parameters) for r in table.rows), (name, scale)
            assert len(set(scales.describe(name, scale))) == 5, (name, scale)


@pytest.mark.parametrize(("height", "width", "scale"), [
    (32, 32, "cifar"), (45, 200, "cifar"), (46, 46, "tinyimagenet"), (64, 64, "tinyimagenet"),
    (120, 300, "tinyimagenet"), (121, 121, "imagenet"), (224, 224, "imagenet")])
def test_auto_picks_the_nearest_published_size(height, width, scale):
    assert scales.auto_scale(height, width) == scale
    assert scales.resolve_scale("auto", height, width) == scale
    assert scales.resolve_scale("imagenet", height, width) == "imagenet"


def test_unknown_scale_names_the_choices():
    with pytest.raises(ValueError, match="unknown severity scale 'cifar10'.*cifar, imagenet"):
        scales.check_scale("cifar10")


def test_auto_is_the_default_and_changes_the_output_at_32_px():
    image = photo(32)
    default = backends.corrupt(image[None], "contrast", 1, [0], "reference", kind="image")[0][0]
    np.testing.assert_array_equal(default, run("contrast", image, 1, "cifar", "reference"))
    assert not np.array_equal(default, run("contrast", image, 1, "imagenet", "reference"))


# ------------------------------------------------ deterministic: the published formulas

def _hsv(x: np.ndarray, channel: int, factor: float, shift: float) -> np.ndarray:
    hsv = skimage.color.rgb2hsv(x / 255.)
    hsv[:, :, channel] = np.clip(hsv[:, :, channel] * factor + shift, 0, 1)
    return np.clip(skimage.color.hsv2rgb(hsv), 0, 1) * 255


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    span = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
    xx, yy = np.meshgrid(span, span)
    kernel = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float32)
    kernel /= kernel.sum()
    return cv2.GaussianBlur(kernel, ksize=(3, 3) if radius <= 8 else (5, 5), sigmaX=alias_blur)


def _zoom(x: np.ndarray, z: float, centred: bool) -> np.ndarray:
    h = x.shape[0]
    ch = int(np.ceil(h / z))
    top = (h - ch) // 2
    out = scizoom(x[top:top + ch, top:top + ch], (z, z, 1), order=1)
    trim = (out.shape[0] - h) // 2 if centred else 0
    return out[trim:trim + h, trim:trim + h]


def published(name: str, x: np.ndarray, severity: int, scale: str) -> np.ndarray:
    """The published generator's deterministic corruptions, written out from its formula."""
    k = c(name, severity, scale)
    f = x / 255.
    if name == "contrast":
        means = f.mean(axis=(0, 1), keepdims=True)
        return np.clip((f - means) * k[0] + means, 0, 1) * 255
    if name == "brightness":
        return _hsv(x, 2, 1, k[0])
    if name == "saturate":
        return _hsv(x, 1, k[0], k[1])
    if name == "gaussian_blur":
        return np.clip(gaussian(f, sigma=k[0], channel_axis=-1), 0, 1) * 255
    if name == "defocus_blur":
        kernel = _disk(*k)
        return np.clip(np.stack([cv2.filter2D(f[..., d], -1, kernel) for d in range(3)], 2),
                       0, 1) * 255
    if name == "zoom_blur":
        f32 = f.astype(np.float32)
        factors = np.arange(*k)
        out = sum(_zoom(f32, z, centred=scale != "imagenet") for z in factors)
        return np.clip((f32 + out) / (len(factors) + 1), 0, 1) * 255
    if name == "pixelate":
        h = x.shape[0]
        up = Image.NEAREST if scale == "imagenet" else Image.BOX
        small = Image.fromarray(x).resize((int(h * k[0]), int(h * k[0])), Image.BOX)
        return np.array(small.resize((h, h), up), dtype=np.float64)
    if name == "jpeg_compression":
        buffer = BytesIO()
        Image.fromarray(x).save(buffer, "JPEG", quality=k[0])
        return np.array(Image.open(buffer), dtype=np.float64)
    raise KeyError(name)


DETERMINISTIC = ("contrast", "brightness", "saturate", "gaussian_blur", "defocus_blur",
                 "zoom_blur", "pixelate", "jpeg_compression")


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_follow_the_published_formula(name, scale):
    size = scales.NOMINAL_SIZE[scale] if scale != "imagenet" else 96
    image = photo(size)
    for severity in SEVERITIES:
        want = np.uint8(published(name, image, severity, scale))
        ref = run(name, image, severity, scale, "reference")
        np.testing.assert_array_equal(ref, want, err_msg=f"{name} s{severity} {scale}")
        ours = run(name, image, severity, scale, "torch").astype(int)
        # float32 vs float64: only a truncation at an integer boundary can differ; Pillow's
        # own calls (JPEG; pixelate on the CPU) not at all
        assert np.mean(np.abs(ours - want)) < 0.25, (name, severity, scale)
        exact = name in ("jpeg_compression", "pixelate")
        assert np.abs(ours - want).max() <= (0 if exact else 1)


def test_cifar_contrast_severity_1_is_the_published_formula_to_rounding():
    image = photo(32)
    f = image / 255.
    means = f.mean(axis=(0, 1), keepdims=True)
    want = ((f - means) * 0.75 + means) * 255
    for backend in BACKENDS:
        got = run("contrast", image, 1, "auto", backend).astype(float)
        assert np.abs(got - want).max() < 1.0 + 1e-9, backend


# --------------------------------------------------- stochastic: the formula's statistics

GREY = np.full((8, 64, 64, 3), 128, np.uint8)


def _grey(name: str, severity: int, scale: str, backend: str) -> np.ndarray:
    return backends.corrupt(GREY, name, severity, list(range(8)), backend, kind="image",
                            scale=scale)[0].astype(float)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scale", SCALES)
def test_noise_statistics_follow_the_scale(scale, backend):
    """On a mid-grey image (x = 128/255): clip(x + N(0, sigma)) * 255, truncated; s&p flips
    a fraction `amount` of the values to 0 or 255; Poisson(x c) / c has std sqrt(x / c)."""
    x = 128 / 255
    normal = np.random.default_rng(0).normal(size=1 << 20)
    for severity in (1, 5):
        sigma = c("gaussian_noise", severity, scale)[0]
        want = np.uint8(np.clip(x + sigma * normal, 0, 1) * 255).astype(float).std()
        got = _grey("gaussian_noise", severity, scale, backend).std()
        assert got == pytest.approx(want, rel=0.03), (severity, got, want)
        out = _grey("impulse_noise", severity, scale, backend)
        flipped = np.mean((out == 0) | (out == 255))
        assert flipped == pytest.approx(c("impulse_noise", severity, scale)[0], rel=0.1)
        rate = c("shot_noise", severity, scale)[0]
        want = np.uint8(np.clip(np.random.default_rng(1).poisson(x * rate, 1 << 20) / rate,
                                0, 1) * 255).astype(float).std()
        assert _grey("shot_noise", severity, scale, backend).std() == pytest.approx(
            want, rel=0.03)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cifar_glass_blur_shuffles_only_its_fixed_32_px_range(backend):
    """CIFAR-10-C's loop runs over range(32 - delta, delta, -1) whatever the image size:
    on a 48 px image, rows and columns from 33 on are only blurred, never moved."""
    image = photo(48)
    severity = 1  # sigma 0.05: the blur alone leaves the uint8 image unchanged
    out = run("glass_blur", image, severity, "cifar", backend)
    np.testing.assert_array_equal(out[34:], image[34:])
    np.testing.assert_array_equal(out[:, 34:], image[:, 34:])
    assert not np.array_equal(out[:32, :32], image[:32, :32])


def test_small_frost_uses_the_resized_photo():
    for scale, factor in small_images.FROST_RESIZE.items():
        raw = cv2.imread(small_images._compat._resource_filename(
            "imagecorruptions.corruptions", "./frost/frost1.png"))
        resized = small_images.frost_photo(0, scale, 32, 32)
        assert resized.shape[:2] == (round(raw.shape[0] * factor), round(raw.shape[1] * factor))
    # larger than the resized photo (Tiny-ImageNet scale, 100 px): enlarged to cover it
    assert min(small_images.frost_photo(0, "tinyimagenet", 100, 100).shape[:2]) > 100


@pytest.mark.parametrize("scale", SCALES)
def test_every_corruption_runs_at_every_scale_and_is_seed_determined(scale):
    image = photo(32)
    for name in scales.TABLES:
        for backend in BACKENDS:
            a = run(name, image, 3, scale, backend, seed=5)
            b = run(name, image, 3, scale, backend, seed=5)
            assert a.shape == image.shape and a.dtype == np.uint8
            np.testing.assert_array_equal(a, b, err_msg=f"{name} {scale} {backend}")


def test_cifar_ladders_are_milder_than_imagenet_at_32_px():
    """The reason for the scales: at 32 px ImageNet-C's defocus blur at severity 1 (disk
    radius 3) changes the image more than CIFAR-10-C's at severity 5 (radius 1.5)."""
    image = photo(32).astype(float)
    cifar5 = np.abs(run("defocus_blur", photo(32), 5, "cifar", "reference") - image).mean()
    imagenet1 = np.abs(run("defocus_blur", photo(32), 1, "imagenet", "reference") - image)
    assert cifar5 < 0.6 * imagenet1.mean()
