"""AVRobustBench's 15 co-occurring audio-visual corruptions (Maharana et al., NeurIPS 2025),
as a compatible protocol: its corruption pairs with its constants at its five severities,
so that a rambench number can stand next to an AVRobustBench number.

Reference (read, not copied): sarthaxxxxx/AVROBUSTBENCH@83fda5ce7f48c4710bbbdac53128b46678792deb:
corruptions/corruptions.py (the functions and `corruption_dict`, lines 23-513) and
dataset.py (audio corrupted once per clip, then the frames). Its older generation scripts
(@cb113858f5a342238b2cf6ae6e87956a4ad0c6e7:data_recipe/src/generate_{audio,visual}_corruptions.py)
are cited where they fix a bug of the released code.

Every spec is an "av" spec of protocol "avrobustbench", named `avrb_<its name>`; a grid asks
for all of them with `av: {events: avrobustbench}` (`--grid avrobustbench`). Each takes
(images, audio) as `corruptions.av_events` does (uint8 stills or clips, float32 mono
audio) and returns the same shapes. Every random number derives from the sample's seed
(AVRobustBench draws from the global `random`, `np.random` and torch RNGs, so its runs are
not reproducible); a clip's frames are corrupted independently, each with its own seed,
as AVRobustBench does with `all_frames=True`.

Audio assets. Nine audio sides mix an environmental recording, chosen per sample, at SNR
20/15/10/5/0 dB with torchaudio's `add_noise` formula (y = x + a n, a = sqrt(|x|^2 /
(|n|^2 10^(snr/10))), energies over the whole clip), the recording tiled from its first
sample. They read AVRobustBench's own folders under `noise_dir` (its
`corruptions/audio_corruptions/`: `snow`, `frost`, `water_drops`, `wind`, `rain`,
`underwater`, `concert`, `crackling_fire_and_siren`, `crowd_speech`), each file mixed to
mono and resampled to the clip's rate (`corruptions.av_events.load_noise`). The crowd's
occluder images are read from `<noise_dir>/crowd_image/*.png` (its
`corruptions/visual_corruptions/crowd_image/`). Without `noise_dir`, a synthetic bed (and
a procedural silhouette) stands in, and every drawn record says `"synthetic": true`: such
numbers are NOT comparable with AVRobustBench's (the report says so).

Differences from the released code, each on purpose (docs/avrobustbench.md lists them):

* gaussian audio: the released code passes the severity as the SNR in dB (severity 1 =
  1 dB, the noisiest; line 86). `avrb_gaussian` uses the generation scripts' ladder
  40/30/20/10/0 dB; `avrb_gaussian_inverted` reproduces the released one.
* compression audio: a 6th-order Butterworth low-pass at 8/6/4/2/1 kHz; at severity 1 the
  cutoff reaches the Nyquist frequency of 16 kHz audio and scipy raises: here a cutoff at or
  above Nyquist leaves the clip unfiltered.
* wind image: the released code fails at every severity (a float array to PIL, line 306);
  here ImageNet-C's motion blur with its constants, as the generation scripts do.
* underwater image: the released code swaps R and B (BGR2RGB on an RGB image) and dims the
  original blue; here the red channel is attenuated (as the generation scripts do). Its
  severity-4 kernel of 10 px is even and cv2 raises; here 11 px.
* crowd image: the released code pastes its BGRA cut-outs as RGB (colours swapped); here
  in RGB order.
* snow: rambench's ImageNet-C snow (scipy zoom); the released code zooms with cv2.
* The mix is clipped to [-1, 1], as AVRobustBench's loader clips when it writes 16-bit PCM.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage, signal

from corruptions import av_events as av
from corruptions import image as image_corruptions
from corruptions._imagecorruptions_compat import _import_imagecorruptions
from corruptions.spec import SEVERITIES, Draws, Fidelity, Spec, TorchImpl, check_images

PROTOCOL = "avrobustbench"
PREFIX = "avrb_"
REFERENCE = ("sarthaxxxxx/AVROBUSTBENCH@83fda5ce7f48c4710bbbdac53128b46678792deb:"
             "corruptions/corruptions.py")
RECIPE = ("sarthaxxxxx/AVROBUSTBENCH@cb113858f5a342238b2cf6ae6e87956a4ad0c6e7:"
          "data_recipe/src/generate_audio_corruptions.py")
BACKEND = "rambench-avrb/1"  # bump when a corruption's output changes for the same seed
ENV_SNR_DB = (20, 15, 10, 5, 0)  # add_env_noise, line 51
NOISE_SNR_DB = (40, 30, 20, 10, 0)  # NOISE_SNRS, line 73
CROWD_IMAGES = "crowd_image"  # <noise_dir>/crowd_image/*.png: the occluder cut-outs
MIN_IMAGE_SIZE = 32

# ---------------------------------------------------------------------------------------
# audio


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """torchaudio.functional.add_noise on one mono clip: x + a n with the energies of the
    whole clip, a = sqrt(|x|^2 / (|n|^2 10^(snr/10))); a silent noise adds nothing."""
    energy = float(np.sum(np.square(noise)))
    if energy == 0:
        return x.copy()
    return x + math.sqrt(float(np.sum(np.square(x))) / (energy * 10 ** (snr_db / 10))) * noise


def scaled_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """The scaler of impulse, shot and speckle audio: x + alpha n, alpha = sqrt(P_s /
    (10^(snr/10) P_n)), P_s = mean(x^2), P_n = mean(n^2) + 1e-8 (lines 97-156)."""
    alpha = math.sqrt(float(np.mean(np.square(x))) /
                      (10 ** (snr_db / 10) * (float(np.mean(np.square(noise))) + 1e-8)))
    return x + alpha * noise


def gaussian_audio(x, severity, sr, rng, snr=NOISE_SNR_DB):
    return add_noise(x, rng.standard_normal(len(x)), snr[severity - 1])


def impulse_audio(x, severity, sr, rng):
    u = rng.random(len(x))
    noise = np.where(u < 0.025, -1.0, np.where(u > 0.975, 1.0, 0.0))
    return scaled_noise(x, noise, NOISE_SNR_DB[severity - 1])


def shot_audio(x, severity, sr, rng):
    low, high = float(np.min(x)), float(np.max(x))
    z = (x - low) / (high - low) if high > low else np.full_like(x, 0.5)
    noise = rng.poisson(50 * z) / 50 - z
    return scaled_noise(x, noise, NOISE_SNR_DB[severity - 1])


def speckle_audio(x, severity, sr, rng):
    return scaled_noise(x, rng.standard_normal(len(x)) * x, NOISE_SNR_DB[severity - 1])


COMPRESSION_CUTOFF_HZ = (8000, 6000, 4000, 2000, 1000)


def compression_audio(x, severity, sr, rng):
    """6th-order Butterworth low-pass, one causal pass (lfilter); a cutoff at or above the
    Nyquist frequency leaves the clip as it is (the reference raises there)."""
    wn = COMPRESSION_CUTOFF_HZ[severity - 1] / (sr / 2)
    if wn >= 1:
        return x.copy()
    b, a = signal.butter(6, wn, "low")
    return signal.lfilter(b, a, x)


def interference_audio(x, severity, sr, rng):
    """2s chunks of max(int(L 0.1 s) // 2s, sr // 10) samples zeroed at distinct random
    starts (chunks may overlap), lines 481-495."""
    n, k = len(x), 2 * severity
    chunk = max(int(n * 0.1 * severity) // k, sr // 10)
    y = x.copy()
    if chunk >= n:
        return np.zeros_like(x)
    starts = rng.choice(n - chunk, size=min(k, n - chunk), replace=False)
    for start in starts:
        y[start:start + chunk] = 0
    return y


# ---------------------------------------------------------------------------------------
# images: uint8 (H, W, 3) RGB in, uint8 out; `rng` a numpy Generator of the frame

def _ic():
    return _import_imagecorruptions().corruptions


def _imagenet(name: str) -> Callable:
    """An image corruption of rambench's image grid at ImageNet-C's constants (AVRobustBench
    calls ImageNet-C's functions; its constants are those)."""
    def run(frame, severity, rng):
        return image_corruptions.reference(name, frame, severity, int(rng.integers(2**31)),
                                           scale="imagenet")
    return run


RAIN = ((0.05, 0.2, 3, 0.3, 10, 4, 0.8), (0.05, 0.2, 3.5, 0.3, 10, 5, 0.7),
        (0.1, 0.2, 4, 0.25, 12, 6, 0.7), (0.1, 0.2, 4.5, 0.25, 15, 8, 0.65),
        (0.1, 0.25, 5, 0.2, 18, 10, 0.6))


def clipped_zoom(layer: np.ndarray, zoom: float) -> np.ndarray:
    """AVRobustBench's clipped_zoom (lines 23-39): the whole layer resized by `zoom` with
    cv2 (bilinear), then its centre cropped to the original size."""
    h, w = layer.shape[:2]
    big = cv2.resize(layer, (int(w * zoom), int(h * zoom)), interpolation=cv2.INTER_LINEAR)
    top, left = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[top:top + h, left:left + w]


def rain_image(frame, severity, rng):
    """Lines 333-367: a thresholded, zoomed Gaussian layer, motion-blurred at an angle of
    U(-120, -60) degrees (8-bit, as its PNG round trip), tinted (0.5, 0.9, 1.2), added with
    its 180-degree rotation to a brightened scene."""
    loc, scale, zoom, thresh, radius, sigma, blend = RAIN[severity - 1]
    x = frame.astype(np.float32) / 255
    layer = clipped_zoom(rng.normal(loc, scale, x.shape[:2]).astype(np.float32), zoom)
    layer = np.clip(np.where(layer < thresh, 0, layer), 0, 1)
    layer = np.round(layer * 255).astype(np.uint8).astype(np.float32)
    r = np.clip(np.round(_ic()._motion_blur(layer, radius, sigma, rng.uniform(-120, -60))),
                0, 255) / 255
    tint = np.clip(np.stack([0.5 * r, 0.9 * r, 1.2 * r], axis=-1), 0, 1)
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = blend * x + (1 - blend) * np.maximum(x, 1.3 * gray + 0.3)
    return _to_uint8(np.clip(x + tint + np.rot90(tint, k=2), 0, 1) * 255)


UNDERWATER = {"kernel": (3, 5, 7, 11, 15), "red": (0.9, 0.7, 0.5, 0.3, 0.1),
              "contrast": (0.9, 0.8, 0.7, 0.6, 0.5), "haze": (20, 40, 60, 80, 100)}


def underwater_image(frame, severity, rng):
    """Lines 374-396 with red (not blue) attenuated: red x factor, Gaussian blur (k x k,
    sigma from k), contrast by convertScaleAbs, 0.85 image + 0.15 constant haze."""
    i = severity - 1
    img = frame.astype(np.float32)
    img[..., 0] *= UNDERWATER["red"][i]
    img = np.clip(img, 0, 255).astype(np.uint8)
    k = UNDERWATER["kernel"][i]
    img = cv2.GaussianBlur(img, (k, k), 0)
    img = cv2.convertScaleAbs(img, alpha=UNDERWATER["contrast"][i])
    haze = np.full_like(img, UNDERWATER["haze"][i])
    return cv2.addWeighted(img, 0.85, haze, 0.15, 0)


SMOKE = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))


def smoke_image(frame, severity, rng):
    """Lines 419-430: uniform noise blurred by a Gaussian of sigma c2, added with weight
    c1, rescaled by max / (max + c1)."""
    amount, sigma = SMOKE[severity - 1]
    x = frame.astype(np.float64) / 255
    peak = x.max()
    smoke = ndimage.gaussian_filter(rng.random(x.shape[:2]), sigma=sigma)[..., None]
    return _to_uint8(np.clip((x + amount * smoke) * peak / (peak + amount), 0, 1) * 255)


CROWD_FRACTION = (0.1, 0.2, 0.3, 0.4, 0.5)


def silhouette(height: int, width: int) -> np.ndarray:
    """A dark head-and-shoulders RGBA cut-out (the stand-in without AVRobustBench's PNGs)."""
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    head = ((xx - width / 2) / (0.22 * width)) ** 2 + ((yy - 0.25 * height) /
                                                         (0.22 * height)) ** 2 <= 1
    body = ((xx - width / 2) / (0.5 * width)) ** 2 + ((yy - height) / (0.5 * height)) ** 2 <= 1
    out = np.zeros((height, width, 4), dtype=np.uint8)
    out[..., :3] = 40
    out[..., 3] = np.where(head | body, 255, 0)
    return out


def crowd_image(frame, severity, rng, occluder: np.ndarray):
    """Lines 438-467: an RGBA cut-out resized to (W p, H p) (aspect not kept), pasted at a
    random position, alpha-blended, truncated to uint8."""
    h, w = frame.shape[:2]
    p = CROWD_FRACTION[severity - 1]
    ow, oh = max(int(w * p), 1), max(int(h * p), 1)
    occ = cv2.resize(occluder, (ow, oh), interpolation=cv2.INTER_LINEAR)
    x0, y0 = int(rng.integers(0, w - ow + 1)), int(rng.integers(0, h - oh + 1))
    out = frame.astype(np.float64)
    alpha = occ[..., 3:4].astype(np.float64) / 255
    region = out[y0:y0 + oh, x0:x0 + ow]
    out[y0:y0 + oh, x0:x0 + ow] = (1 - alpha) * region + alpha * occ[..., :3]
    return out.astype(np.uint8)


def interference_image(frame, severity, rng):
    """Lines 474-479: PIL rotation by an integer angle in [-(6s+5), 6s+5] degrees
    (nearest neighbour, black corners)."""
    limit = 6 * severity + 5
    degrees = int(rng.integers(-limit, limit + 1))
    return np.asarray(Image.fromarray(frame).rotate(degrees))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return x.astype(np.uint8)  # the reference truncates (astype) after clipping


# ---------------------------------------------------------------------------------------
# the 15 corruptions


@dataclass(frozen=True)
class Corruption:
    """One AVRobustBench pair: its image side (frame, severity, rng) -> frame, its audio
    side (x, severity, sample_rate, rng) -> y, or the folder of recordings its audio mixes
    in at ENV_SNR_DB (and the synthetic stand-in: an `av_events` event whose bed is used)."""

    name: str
    image: Callable
    audio: Callable | None = None
    folder: str | None = None
    stand_in: str | None = None  # av_events event whose synthetic bed stands in
    description: str = ""


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("gaussian", _imagenet("gaussian_noise"), gaussian_audio,
               description="ImageNet-C Gaussian noise; white noise at 40..0 dB SNR"),
    Corruption("gaussian_inverted", _imagenet("gaussian_noise"),
               functools.partial(gaussian_audio, snr=SEVERITIES),
               description="as gaussian, with the released code's audio ladder: SNR = the "
                           "severity in dB (1 dB at severity 1)"),
    Corruption("impulse", _imagenet("impulse_noise"), impulse_audio,
               description="ImageNet-C impulse noise; +-1 impulses (5 %) at 40..0 dB SNR"),
    Corruption("shot", _imagenet("shot_noise"), shot_audio,
               description="ImageNet-C shot noise; Poisson(50 z)/50 - z at 40..0 dB SNR"),
    Corruption("speckle", _imagenet("speckle_noise"), speckle_audio,
               description="ImageNet-C speckle noise; multiplicative noise at 40..0 dB SNR"),
    Corruption("compression", _imagenet("jpeg_compression"), compression_audio,
               description="ImageNet-C JPEG; 6th-order Butterworth low-pass 8..1 kHz"),
    Corruption("snow", _imagenet("snow"), folder="snow", stand_in="wind",
               description="ImageNet-C snow; snow recordings at 20..0 dB SNR"),
    Corruption("frost", _imagenet("frost"), folder="frost", stand_in="wind",
               description="ImageNet-C frost; frost recordings at 20..0 dB SNR"),
    Corruption("spatter", _imagenet("spatter"), folder="water_drops", stand_in="rain",
               description="ImageNet-C spatter; water-drop recordings at 20..0 dB SNR"),
    Corruption("wind", _imagenet("motion_blur"), folder="wind", stand_in="wind",
               description="ImageNet-C motion blur; wind recordings at 20..0 dB SNR"),
    Corruption("rain", rain_image, folder="rain", stand_in="rain",
               description="tinted motion-blurred rain layer; rain recordings at 20..0 dB"),
    Corruption("underwater", underwater_image, folder="underwater", stand_in="underwater",
               description="red absorbed, blur, contrast, haze; underwater recordings"),
    Corruption("concert", _imagenet("brightness"), folder="concert", stand_in="sensor_noise",
               description="ImageNet-C brightness; concert recordings at 20..0 dB SNR"),
    Corruption("smoke", smoke_image, folder="crackling_fire_and_siren", stand_in="fire",
               description="blurred-noise smoke; crackling fire and sirens at 20..0 dB SNR"),
    Corruption("crowd", crowd_image, folder="crowd_speech", stand_in="crowd",
               description="a person cut-out occluding 10-50 % of each side; crowd speech"),
    Corruption("interference", interference_image, interference_audio,
               description="rotation by up to 6s+5 degrees; 2s zeroed audio chunks"),
)}


def spec_name(name: str) -> str:
    return PREFIX + name


def corruption(spec: str) -> Corruption:
    return CORRUPTIONS[spec.removeprefix(PREFIX)]


def noise_folder(spec: str) -> str | None:
    """The folder under `noise_dir` a corruption reads its recordings from (None: none)."""
    return corruption(spec).folder


# ---------------------------------------------------------------------------------------
# the protocol (`corruptions.spec`)


def _streams(name: str, seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence([int(seed) & (2**64 - 1), zlib.crc32(name.encode())]
                                      ).spawn(3)
    return {k: np.random.default_rng(c) for k, c in zip(("image", "audio", "bed"), children,
                                                         strict=True)}


def check_batch(batch, sample_rate: int | None, min_image_size: int = MIN_IMAGE_SIZE) -> int:
    """The number of samples of an (images, audio) batch, or a ValueError saying what is
    wrong: images uint8 stills or clips (at least `min_image_size` px), audio float32
    (N, L) with a positive `sample_rate`, as many of each; either may be None."""
    images, audio = batch
    if images is None and audio is None:
        raise ValueError("nothing to corrupt: images and audio are both None")
    n = None
    if images is not None:
        check_images(images, min_image_size, clips=True)
        n = len(images)
    if audio is not None:
        if not isinstance(audio, np.ndarray) or audio.dtype != np.float32 or audio.ndim != 2:
            raise ValueError("audio must be float32 (N, L)")
        if n is not None and len(audio) != n:
            raise ValueError(f"{n} images for {len(audio)} audio clips")
        n = len(audio)
        if sample_rate is None or int(sample_rate) <= 0:
            raise ValueError(f"a positive sample_rate is needed, got {sample_rate!r}")
    return n


def prepare(name: str, batch, sample_rate: int | None = None,
            noise_dir: str | Path | None = None, pool: Sequence[np.ndarray] | None = None,
            pool_labels: Sequence[Any] | None = None, **options) -> tuple[int, dict[str, Any]]:
    """As `corruptions.av_events.prepare` (the same batch layout), with AVRobustBench's
    recordings from `noise_dir/<folder>/*.wav` and cut-outs from `noise_dir/crowd_image/`;
    without `noise_dir`, the synthetic stand-ins (crowd babble: from `pool`)."""
    n = check_batch(batch, sample_rate)
    c = corruption(name)
    context: dict[str, Any] = {"sample_rate": sample_rate, "files": None, "occluders": None,
                               "pool": None}
    if batch[1] is not None:
        if c.folder is not None and noise_dir is not None:
            context["files"] = av.noise_files(noise_dir, c.folder)
        elif c.folder is not None and c.stand_in == "crowd":
            if pool is None:
                raise ValueError("avrb_crowd needs noise_dir (its crowd_speech recordings) "
                                 "or pool (clips to babble from)")
            context["pool"] = av._Pool.build(pool, pool_labels)
    if c.image is crowd_image and noise_dir is not None:
        context["occluders"] = sorted(Path(noise_dir).glob(f"{CROWD_IMAGES}/*.png")) or None
    return n, context


def draw(name: str, batch, severity: int, seeds: Sequence[int], context) -> Draws:
    """Per sample its seed, whether a synthetic stand-in replaces an AVRobustBench asset,
    and which recording / cut-out it uses."""
    c = corruption(name)
    records = []
    for seed in seeds:
        record: dict[str, Any] = {"seed": int(seed)}
        rng = _streams(name, seed)["bed"]
        if c.folder is not None and batch[1] is not None:
            files = context["files"]
            record["noise_file"] = (files[int(rng.integers(len(files)))].name if files
                                    else None)
        if c.image is crowd_image and batch[0] is not None:
            occluders = context["occluders"]
            record["occluder"] = (occluders[int(rng.integers(len(occluders)))].name
                                  if occluders else None)
        record["synthetic"] = any(k in record and record[k] is None
                                  for k in ("noise_file", "occluder"))
        records.append(record)
    return Draws({k: [r[k] for r in records] for k in records[0]} if records else {})


@functools.lru_cache(maxsize=16)
def _occluder(path: str) -> np.ndarray:
    rgba = np.asarray(Image.open(path).convert("RGBA"))
    rgba.setflags(write=False)
    return rgba


def _image_frames(image: Callable, frames: np.ndarray, severity: int, rng) -> np.ndarray:
    """A clip's frames, each corrupted by `image` with its own stream drawn from `rng`."""
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        frame_rng = np.random.default_rng(rng.integers(2**63))
        gray = frame.shape[-1] == 1
        rgb = np.repeat(frame, 3, axis=-1) if gray else frame
        y = image(np.ascontiguousarray(rgb), severity, frame_rng)
        out[t] = np.rint(y.mean(axis=-1, keepdims=True)) if gray else y
    return out


def _audio(c: Corruption, x: np.ndarray, severity: int, sr: int, streams,
           record, context) -> np.ndarray:
    clean = x.astype(np.float64)
    if not len(clean):
        return x.copy()
    if c.audio is not None:
        y = c.audio(clean, severity, sr, streams["audio"])
    else:
        if record.get("noise_file"):
            path = next(p for p in context["files"] if p.name == record["noise_file"])
            noise = av.fit_length(av.load_noise(path, sr), len(clean), 0)
        elif c.stand_in == "crowd":
            pool = context["pool"]
            talkers = av.EVENTS["crowd"].audio_params[severity - 1]["talkers"]
            noise, _ = av._babble(pool, av._digest(x), talkers, len(clean), streams["audio"])
        else:  # a stand-in event's synthetic bed
            event = av.EVENTS[c.stand_in]
            noise = event.bed(len(clean), event.audio_params[severity - 1], streams["audio"], sr)
        y = add_noise(clean, np.asarray(noise, dtype=np.float64), ENV_SNR_DB[severity - 1])
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def apply(name: str, batch, severity: int, draws: Draws, context: Mapping[str, Any]):
    """Both sides of every sample, from its seed and its drawn assets."""
    c = corruption(name)
    images, audio = batch
    params = draws.params
    records = [dict(zip(params, values, strict=True))
               for values in zip(*params.values(), strict=True)]
    out_images = out_audio = None
    if images is not None:
        clips = images if images.ndim == 5 else images[:, None]
        out = []
        for clip, record in zip(clips, records, strict=True):
            image = c.image
            if image is crowd_image:  # with the recorded cut-out, or the stand-in
                image = functools.partial(crowd_image, occluder=(
                    _occluder(str(next(p for p in context["occluders"]
                                       if p.name == record["occluder"])))
                    if record.get("occluder") else
                    silhouette(clip.shape[1], max(clip.shape[2] // 2, 1))))
            out.append(_image_frames(image, clip, severity,
                                     _streams(name, record["seed"])["image"]))
        out_images = np.stack(out).reshape(images.shape)
    if audio is not None:
        out_audio = np.stack([
            _audio(c, x, severity, context["sample_rate"],
                   _streams(name, record["seed"]), record, context)
            for x, record in zip(audio, records, strict=True)])
    return out_images, out_audio


def apply_torch(name: str, batch, severity: int, draws: Draws, context, device=None):
    """The torch backend runs the reference on the CPU (`Fidelity.REFERENCE`)."""
    return apply(name, batch, severity, draws, context)


RANDOMNESS = ("seed: every random number of both sides derives from it (a clip's frames "
              "each their own stream); recorded beside it: the recording and cut-out used, "
              "and `synthetic` where a stand-in replaced AVRobustBench's assets")


def _spec(c: Corruption) -> Spec:
    name = spec_name(c.name)
    return Spec(
        name=name, kind="av", family="av_event", backend=BACKEND,
        prepare=functools.partial(prepare, name), draw=functools.partial(draw, name),
        apply=functools.partial(apply, name),
        torch=TorchImpl("corruptions.avrobustbench", "apply_torch", Fidelity.REFERENCE,
                        "the reference on the CPU", backend=BACKEND),
        randomness=RANDOMNESS, description=c.description, protocol=PROTOCOL,
        severity_table=tuple(f"severity {s} of AVRobustBench's {c.name}" for s in SEVERITIES))


SPECS: tuple[Spec, ...] = tuple(_spec(c) for c in CORRUPTIONS.values())
# the 15 of its benchmark (the inverted-ladder variant is asked for by name)
BENCHMARK = tuple(spec_name(n) for n in CORRUPTIONS if n != "gaussian_inverted")
