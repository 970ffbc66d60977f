"""The reference backend at the small-image scales: rambench's numpy ports of Hendrycks &
Dietterich's CIFAR-10-C and Tiny-ImageNet-C generators.

Pinned (scale ``cifar``, 32 px)::

    hendrycks/robustness@ca360085d57889288c4143fddd8a707bbcae01bd:
        ImageNet-C/create_c/make_cifar_c.py

and (scale ``tinyimagenet``, 64 px)::

    hendrycks/robustness@7a64e6a188082e666f200dc1b9762cfb5cdf8fe8:
        ImageNet-C/create_c/make_tinyimagenet_c.py
 Constants: `corruptions.scales.TABLES`.

The published scripts do not run as they are (they need ImageMagick through Wand, torchvision,
and removed numpy / scikit-image arguments), so each corruption is written here from the
script, drawing its random numbers from numpy's global RNG in the script's order, under
`seeded_global_rng(seed)`: where no step below is marked, the output is the script's output
after ``np.random.seed(seed)``.

Where the small generators differ from ImageNet-C in algorithm, not only in constants, this
module follows the small generator:

* ``glass_blur`` shuffles pixels over the fixed range ``range(S - delta, delta, -1)`` with S the
  nominal size (32 or 64), for both axes, whatever the image size (the image's side when
  it is smaller: the script would index outside it);
* ``zoom_blur`` and ``snow``'s layer zoom crop a centred square, zoom it and keep the *centred*
  H x W (ImageNet-C keeps the top-left);
* ``fog``'s plasma fractal has side S (ImageNet-C: 256) — here the larger of S and the next
  power of two of the image's longer side, so that images larger than S are covered;
* ``frost`` resizes the frost photo by a fixed factor (0.2 for CIFAR, 0.3 for Tiny-ImageNet;
  cv2's default bilinear interpolation) and crops the image size at random; when the resized
  photo is smaller than the image (Tiny-ImageNet scale on images over 94 px), it is enlarged
  to cover the image (x1.1, as ImageNet-C does);
* ``pixelate`` scales down (BOX) to ``int(side * factor)`` and back up with BOX (ImageNet-C:
  NEAREST); the scripts use the nominal side, which equals the image's at the nominal size;
* ``elastic_transform`` is the original elastic transform: a random affine warp of three
  points by up to ``affine shift`` pixels (cv2.warpAffine, bilinear, BORDER_REFLECT_101),
  then a displacement field of uniform noise smoothed by a Gaussian of ``sigma`` pixels and
  scaled by ``alpha`` (ImageNet-C's packaged version has no affine part and sizes relative to
  the image).

Remaining differences from the scripts:

* ``motion_blur`` and ``snow`` used ImageMagick's MotionBlurImage; here, as in
  `imagecorruptions`, the one-sided Gaussian line kernel of width 2 radius + 1
  (`imagecorruptions.corruptions._motion_blur`), which is what MagickMotionBlurImage computes
  up to its edge handling; ``snow``'s layer is quantised to 8 bits before the blur (the PNG
  round trip of the script) and after it (ImageMagick's 8-bit output);
* ``impulse_noise`` passes ``rng=seed`` to `skimage.util.random_noise` (the script relied on
  scikit-image's global state);
* ``spatter`` (water) guards the 0/0 of an empty liquid mask (as `_imagecorruptions_compat`).
"""

from __future__ import annotations

from io import BytesIO

import cv2
import numpy as np
import skimage as sk
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scizoom
from skimage.filters import gaussian

from corruptions import _imagecorruptions_compat as _compat
from corruptions.scales import NOMINAL_SIZE, constants

_ref = _compat._ref

FROST_RESIZE = {"cifar": 0.2, "tinyimagenet": 0.3}


def _float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) / 255.0


def centred_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """The small generators' `clipped_zoom` on (H, W, C): crop the centred ceil(H / zoom)
    square, zoom it (order 1) and keep the centred H x W."""
    h, w = img.shape[:2]
    ch, cw = int(np.ceil(h / zoom_factor)), int(np.ceil(w / zoom_factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    img = scizoom(img[top:top + ch, left:left + cw], (zoom_factor, zoom_factor, 1), order=1)
    trim_top, trim_left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[trim_top:trim_top + h, trim_left:trim_left + w]


def gaussian_noise(x, c, scale, seed):
    return np.clip(_float(x) + np.random.normal(size=x.shape, scale=c[0]), 0, 1) * 255


def shot_noise(x, c, scale, seed):
    return np.clip(np.random.poisson(_float(x) * c[0]) / c[0], 0, 1) * 255


def impulse_noise(x, c, scale, seed):
    return np.clip(sk.util.random_noise(_float(x), mode="s&p", amount=c[0], rng=seed),
                   0, 1) * 255


def speckle_noise(x, c, scale, seed):
    x = _float(x)
    return np.clip(x + x * np.random.normal(size=x.shape, scale=c[0]), 0, 1) * 255


def gaussian_blur(x, c, scale, seed):
    return np.clip(gaussian(_float(x), sigma=c[0], channel_axis=-1), 0, 1) * 255


def glass_blur(x, c, scale, seed):
    size = NOMINAL_SIZE[scale]
    return _compat.glass_blur_with(x, c, min(size, x.shape[0]), min(size, x.shape[1]))


def defocus_blur(x, c, scale, seed):
    kernel = _ref.disk(radius=c[0], alias_blur=c[1])
    x = _float(x)
    channels = [cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)]
    return np.clip(np.stack(channels, axis=2), 0, 1) * 255


def motion_blur(x, c, scale, seed):
    angle = np.random.uniform(-45, 45)
    return np.clip(_ref._motion_blur(np.array(x), radius=c[0], sigma=c[1], angle=angle),
                   0, 255)


def zoom_factors(c: tuple) -> np.ndarray:
    return np.arange(*c)


def zoom_blur(x, c, scale, seed):
    x = (np.array(x) / 255.).astype(np.float32)
    factors = zoom_factors(c)
    out = np.zeros_like(x)
    for zoom_factor in factors:
        out += centred_zoom(x, zoom_factor)
    return np.clip((x + out) / (len(factors) + 1), 0, 1) * 255


def fog_mapsize(scale: str, height: int, width: int) -> int:
    return max(NOMINAL_SIZE[scale], 1 << (max(height, width) - 1).bit_length())


def fog(x, c, scale, seed):
    h, w = x.shape[:2]
    x = _float(x)
    max_val = x.max()
    fractal = _compat.plasma_fractal(mapsize=fog_mapsize(scale, h, w), wibbledecay=c[1])
    x = x + c[0] * fractal[:h, :w][..., np.newaxis]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


def frost_photo(index: int, scale: str, height: int, width: int) -> np.ndarray:
    """Frost photo `index` (BGR) resized as the small generators do for an image of this size."""
    photo = cv2.imread(_compat._resource_filename(
        "imagecorruptions.corruptions", f"./frost/{FROST_FILES[index]}"))
    photo = cv2.resize(photo, (0, 0), fx=FROST_RESIZE[scale], fy=FROST_RESIZE[scale])
    if photo.shape[0] <= height or photo.shape[1] <= width:
        factor = 1.1 * max(height / photo.shape[0], width / photo.shape[1])
        size = (int(np.ceil(photo.shape[1] * factor)), int(np.ceil(photo.shape[0] * factor)))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC)
    return photo


FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


def frost(x, c, scale, seed):
    h, w = x.shape[:2]
    photo = frost_photo(np.random.randint(5), scale, h, w)
    top, left = np.random.randint(0, photo.shape[0] - h), np.random.randint(0, photo.shape[1] - w)
    layer = photo[top:top + h, left:left + w][..., [2, 1, 0]]
    return np.clip(c[0] * np.array(x, dtype=np.float64) + c[1] * layer, 0, 255)


def snow(x, c, scale, seed):
    x = _float(x).astype(np.float32)
    layer = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    layer = centred_zoom(layer[..., np.newaxis], c[2])
    layer[layer < c[3]] = 0
    layer = (np.clip(layer.squeeze(-1), 0, 1) * 255).astype(np.uint8)  # the script's PNG
    angle = np.random.uniform(-135, -45)
    layer = _ref._motion_blur(layer.astype(np.float32), radius=c[4], sigma=c[5], angle=angle)
    layer = (np.clip(np.round(layer), 0, 255).astype(np.uint8) / 255.)[..., np.newaxis]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., np.newaxis]
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def spatter(x, c, scale, seed):
    return _compat.spatter_with(Image.fromarray(x), c)


def contrast(x, c, scale, seed):
    x = _float(x)
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c[0] + means, 0, 1) * 255


def brightness(x, c, scale, seed):
    x = sk.color.rgb2hsv(_float(x))
    x[:, :, 2] = np.clip(x[:, :, 2] + c[0], 0, 1)
    return np.clip(sk.color.hsv2rgb(x), 0, 1) * 255


def saturate(x, c, scale, seed):
    x = sk.color.rgb2hsv(_float(x))
    x[:, :, 1] = np.clip(x[:, :, 1] * c[0] + c[1], 0, 1)
    return np.clip(sk.color.hsv2rgb(x), 0, 1) * 255


def jpeg_compression(x, c, scale, seed):
    output = BytesIO()
    Image.fromarray(x).save(output, "JPEG", quality=int(c[0]))
    return np.array(Image.open(output))


def pixelate(x, c, scale, seed):
    h, w = x.shape[:2]
    image = Image.fromarray(x).resize((int(w * c[0]), int(h * c[0])), Image.BOX)
    return np.array(image.resize((w, h), Image.BOX))


def elastic_transform(x, c, scale, seed):
    alpha, sigma, affine = c
    image = np.array(x, dtype=np.float32) / 255.
    shape = image.shape
    shape_size = shape[:2]
    centre = np.float32(shape_size) // 2
    square = min(shape_size) // 3
    pts1 = np.float32([centre + square, [centre[0] + square, centre[1] - square],
                       centre - square])
    pts2 = pts1 + np.random.uniform(-affine, affine, size=pts1.shape).astype(np.float32)
    matrix = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, matrix, shape_size[::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(np.random.uniform(-1, 1, size=shape_size), sigma, mode="reflect",
                   truncate=3) * alpha).astype(np.float32)
    dy = (gaussian(np.random.uniform(-1, 1, size=shape_size), sigma, mode="reflect",
                   truncate=3) * alpha).astype(np.float32)
    xs, ys, zs = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    indices = (np.reshape(ys + dy[..., None], (-1, 1)), np.reshape(xs + dx[..., None], (-1, 1)),
               np.reshape(zs, (-1, 1)))
    out = map_coordinates(image, indices, order=1, mode="reflect").reshape(shape)
    return np.clip(out, 0, 1) * 255


FUNCTIONS = {f.__name__: f for f in (
    gaussian_noise, shot_noise, impulse_noise, speckle_noise, gaussian_blur, glass_blur,
    defocus_blur, motion_blur, zoom_blur, fog, frost, snow, spatter, contrast, brightness,
    saturate, jpeg_compression, pixelate, elastic_transform)}


def corrupt(image: np.ndarray, severity: int, name: str, seed: int, scale: str) -> np.ndarray:
    """Corruption `name` of a uint8 (H, W, 3) image at a small-image `scale`, its randomness
    from `seed`; uint8 out (a truncating cast of values clipped to [0, 255], as the scripts)."""
    if scale not in FROST_RESIZE:
        raise ValueError(f"small-image scale must be one of {sorted(FROST_RESIZE)}, "
                         f"got {scale!r}")
    function = FUNCTIONS[name]
    c = constants(name, severity, scale)
    with _compat.seeded_global_rng(seed):
        return np.uint8(function(np.ascontiguousarray(image), c, scale, seed))
