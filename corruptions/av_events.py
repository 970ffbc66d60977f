"""Co-occurring audio-visual corruptions: one real-world event corrupts both modalities of a
sample at once, with one shared severity (after AVRobustBench, Maharana et al., NeurIPS
2025; see docs/av-events.md for the parameter table and how this differs from it).

Each event is defined by one frozen `Event`: its name, a description, the image parameters
and the audio parameters of severities 1-5, and the functions that draw and apply each
side. The events:

rain, wind, crowd, underwater, fire, interference, compression, sensor_noise.

Each is declared as a `corruptions.spec.Spec` of kind "av" (`SPECS`, which
`corruptions.registry` lists as `names("av")`), and corrupted through the one entry point,
`corruptions.backends.corrupt((images, audio), name, severity, seeds, backend, device,
sample_rate=..., pool=..., noise_dir=...)`: images uint8 (N, H, W, C) stills or
(N, T, H, W, C) clips, C in {1, 3}; audio float32 (N, L) in [-1, 1]; one integer seed per
sample. It returns ((images, audio), drawn) with the same shapes and dtypes, and per sample
its seed and what was drawn from it (`draw`). Either side may be None (then None comes
back for it).

Backends: each side of an event is split into a *draw* (every random number of a sample,
in numpy, from its seed, plus what derives from the draws alone: kernels, per-frame
shifts, glitch geometry, the noise bed) and an *apply* of the drawn parameters.
"reference" (`BACKEND`) applies them with numpy/scipy/OpenCV/PIL, one sample at a time;
"torch" (`corruptions.torch_av`, `TORCH_BACKEND`) applies the same draws to a batch at once
on any torch device: the same output up to float32 rounding (images: at most one grey
level on a few pixels; audio: float32 rounding) and the same draws.
Ported to torch: every image side but compression's JPEG (PIL on the CPU, as the
reference), and the audio's dropouts, bed mixing and clipping. The reference's own code:
underwater's biquad (lfilter) and compression's audio codec (resample_poly, mu-law); the
beds are draws (numpy).

Determinism: every random draw derives from (seed, event name) through
`numpy.random.SeedSequence`, with separate streams for the image, the audio, the
cross-modal draws (e.g. where interference drops out) and the noise bed; never global RNG
state, never the severity. So a sample sees the same rain drops, the same noise waveform,
the same people at every severity; the severity only scales them (draws are nested:
severity 3's drops are a subset of severity 4's). A sample's output depends only on
(sample, event, severity, seed, sample_rate, pool contents, noise files), not on the batch.

Images: corrupted as float32 RGB in [0, 1]; one-channel images are replicated to RGB,
corrupted, and the rounded mean of the three uint8 output channels is returned (as
corruptions.image does). Clips: all frames of a clip share the event's draws (same rain
angle, same people, same smoke), with two exceptions, documented per event: rain drops
fall (the drop field moves by half a streak length per frame along the streak) and
sensor noise is drawn afresh per frame; interference glitches only the frames whose time
span overlaps an audio dropout (the two sides of one event), each with its own glitch.

Audio: an optional transform (underwater: a resonant low-pass; interference: dropouts;
compression: low-rate mu-law coding) followed, for events with an `snr_db` parameter, by a
noise bed scaled to that SNR relative to the RMS of the *clean* clip (audiomentations'
convention, as corruptions.audio): bed RMS = RMS(clip) / 10^(snr/20), exactly (the bed is
normalised to unit RMS first). A silent clip therefore gets no bed. The bed is synthetic
(procedural, per event), babble of other clips for crowd (from `pool`), or a real
recording from `noise_dir/<event>/*.wav` when `noise_dir` is given. The output is clipped
to [-1, 1] (a recorder saturates) and keeps the input's length.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import operator
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage, signal
from scipy.io import wavfile

from corruptions import scales
from corruptions.spec import SEVERITIES, Draws, Fidelity, Spec, TorchImpl, check_images

BACKEND = "rambench-av/1"  # bump when an event's output changes for the same seed
MIN_IMAGE_SIZE = 8

# ---------------------------------------------------------------------------------------
# helpers


def _params(rows: Mapping[str, Sequence[Any]]) -> tuple[Mapping[str, Any], ...]:
    """{'a': (a1..a5), 'b': (b1..b5)} -> 5 read-only dicts, one per severity."""
    for key, values in rows.items():
        if len(values) != len(SEVERITIES):
            raise ValueError(f"{key}: {len(values)} values for {len(SEVERITIES)} severities")
    return tuple(MappingProxyType({k: v[i] for k, v in rows.items()})
                 for i in range(len(SEVERITIES)))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _unit_rms(x: np.ndarray) -> np.ndarray:
    r = _rms(x)
    return x / r if r > 0 else np.zeros_like(x)


def _luma(frames: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 1) Rec. 601 luminance."""
    return (frames @ np.array(LUMA_WEIGHTS, dtype=frames.dtype))[..., None]


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A line of `length` px through the centre of an odd square kernel, `angle_deg`
    counter-clockwise from the +x axis (image rows grow downwards), splatted bilinearly;
    peak 1 (not normalised)."""
    length = max(float(length), 1.0)
    n = int(math.ceil(length)) // 2 * 2 + 1
    c = (n - 1) / 2
    a = math.radians(angle_deg)
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * n)
    xs, ys = c + t * math.cos(a), c - t * math.sin(a)
    k = np.zeros((n, n), dtype=np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = np.clip(x0 + dx, 0, n - 1), np.clip(y0 + dy, 0, n - 1)
        np.add.at(k, (yi, xi), w)
    return (k / k.max()).astype(np.float32)


def _filter(frame: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def _fractal(h: int, w: int, rng: np.random.Generator, octaves: int = 5,
             persistence: float = 0.55, base: int = 2) -> np.ndarray:
    """Value-noise fBm in [0, 1], (h, w) float32: a fog/smoke-like cloud field."""
    out = np.zeros((h, w), dtype=np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh, gw = base * 2**o + 1, max(2, round((base * 2**o) * w / h)) + 1
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
    out -= out.min()
    peak = out.max()
    return out / peak if peak > 0 else out


def _gaussian_blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return frames
    return ndimage.gaussian_filter(frames, sigma=(0, sigma, sigma, 0), mode="reflect",
                                   truncate=3.0)


def _butter(x: np.ndarray, cutoff: float, sample_rate: int, btype: str,
            order: int = 2) -> np.ndarray:
    """Causal Butterworth filter; a cutoff at or past Nyquist leaves x unchanged (lowpass)
    or silences it (highpass)."""
    nyquist = sample_rate / 2
    if cutoff >= 0.99 * nyquist:
        return x.copy() if btype == "lowpass" else np.zeros_like(x)
    sos = signal.butter(order, cutoff / nyquist, btype=btype, output="sos")
    return signal.sosfilt(sos, x)


def _smooth_noise(length: int, step: int, rng: np.random.Generator) -> np.ndarray:
    """N(0, 1) values every `step` samples, linearly interpolated: a slow random curve."""
    points = rng.standard_normal(length // max(step, 1) + 2)
    return np.interp(np.arange(length) / max(step, 1), np.arange(len(points)), points)


def _impulse_bank(length: int, rate_per_s: float, sample_rate: int,
                  rng: np.random.Generator, kernels: Sequence[np.ndarray],
                  pareto: float | None) -> np.ndarray:
    """Poisson impulses (rate per second), each shaped by one of `kernels`; amplitudes
    log-normal, or heavy-tailed (Pareto with shape `pareto`) when given."""
    n = int(rng.poisson(rate_per_s * length / sample_rate))
    positions = rng.integers(0, length, n)
    amps = (rng.pareto(pareto, n) + 1) if pareto else rng.lognormal(0.0, 0.6, n)
    amps *= rng.choice((-1.0, 1.0), n)
    which = rng.integers(0, len(kernels), n)
    out = np.zeros(length)
    for k, kernel in enumerate(kernels):
        train = np.zeros(length)
        sel = which == k
        np.add.at(train, positions[sel], amps[sel])
        if sel.any():
            out += signal.fftconvolve(train, kernel)[:length]
    return out


# ---------------------------------------------------------------------------------------
# image sides, split into a draw and an apply.
# draw(shape (T, H, W), params, rng, shared) -> (drawn, info): the sample's random draws
# (numpy arrays and numbers, at the severity's parameters, with what derives from them
# alone: kernels, shifts, pixel positions) and what its record keeps;
# apply(frames float32 (T, H, W, 3) in [0, 1], params, drawn) -> frames.
# corruptions.torch_av applies the same draws to a whole batch at once.

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # Rec. 601
RAIN_RGB = (0.80, 0.85, 0.92)
DUST_RGB = (0.76, 0.70, 0.60)
UNDERWATER_WATER_RGB = (0.05, 0.35, 0.45)
FIRE_WARM_RGB = (1.0, 0.88, 0.7)  # white-balance gains the tint blends towards
FIRE_GLOW_RGB = (1.0, 0.45, 0.1)
SMOKE_RGB = (0.36, 0.34, 0.33)


def _no_draw(*args):
    """The draw of a side that draws nothing (either side's signature)."""
    return {}, {}


def _rain_draw(shape, p, rng, shared):
    t, h, w = shape
    angle = float(rng.uniform(-20.0, 20.0))  # degrees off vertical (wind-blown)
    seed_field = rng.random((h, w), dtype=np.float32)
    intensity = rng.uniform(0.5, 1.0, (h, w)).astype(np.float32)
    drops = np.where(seed_field < p["drop_density"], intensity, 0).astype(np.float32)
    length = max(2.0, p["streak_length"] * h)
    step = 0.5 * length  # fall per frame
    shifts = np.array([(round(i * step * math.cos(math.radians(angle))),
                        round(i * step * math.sin(math.radians(angle)))) for i in range(t)],
                      dtype=np.int64)
    drawn = {"drops": drops, "kernel": _line_kernel(length, 90.0 + angle), "shifts": shifts}
    return drawn, {"rain_angle_deg": round(angle, 3), "drops": int((drops > 0).sum())}


def _rain_image(frames, p, drawn):
    colour = np.array(RAIN_RGB, dtype=np.float32)
    grey = _luma(frames)
    base = frames * (1 - p["haze"]) * p["darken"] + p["haze"] * grey
    out = np.empty_like(frames)
    for i, (dy, dx) in enumerate(drawn["shifts"].tolist()):
        layer = np.clip(_filter(np.roll(drawn["drops"], (dy, dx), axis=(0, 1)),
                                drawn["kernel"]), 0, 1)
        streaks = p["streak_alpha"] * layer[..., None] * colour
        out[i] = 1 - (1 - base[i]) * (1 - streaks)  # screen blend: streaks lighten
    return out


def _wind_draw(shape, p, rng, shared):
    t, h, w = shape
    angle = float(rng.uniform(-45.0, 45.0))
    dust = _fractal(h, w, rng)
    length = max(2.0, p["blur_length"] * min(h, w))
    kernel = _line_kernel(length, angle)
    kernel /= kernel.sum()
    return {"dust": dust, "kernel": kernel}, {"wind_angle_deg": round(angle, 3)}


def _wind_image(frames, p, drawn):
    blurred = np.stack([_filter(f, drawn["kernel"]) for f in frames])
    alpha = p["dust_alpha"] * drawn["dust"][..., None]
    return blurred * (1 - alpha) + alpha * np.array(DUST_RGB, dtype=np.float32)


CROWD_MAX_PEOPLE = 5


def _crowd_draw(shape, p, rng, shared):
    t, h, w = shape
    centres = rng.uniform(0.0, 1.0, CROWD_MAX_PEOPLE)
    widths = rng.uniform(0.8, 1.2, CROWD_MAX_PEOPLE)
    heights = rng.uniform(0.85, 1.15, CROWD_MAX_PEOPLE)
    # dark clothing: a grey level with a little hue
    colours = (rng.uniform(0.05, 0.3, (CROWD_MAX_PEOPLE, 1))
               * rng.uniform(0.75, 1.25, (CROWD_MAX_PEOPLE, 3))).astype(np.float32)
    people = [(round(float(centres[k] * w), 1), round(float(p["height"] * h * heights[k]), 1))
              for k in range(p["people"])]
    drawn = {"centres": centres, "widths": widths, "heights": heights, "colours": colours}
    return drawn, {"people_x_height_px": people}


def _crowd_image(frames, p, drawn):
    """Dark head-and-shoulders silhouettes standing in front of the camera (bottom edge)."""
    t, h, w, _ = frames.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = frames.copy()
    for k in range(p["people"]):
        ph = p["height"] * h * drawn["heights"][k]
        pw = p["width"] * w * drawn["widths"][k]
        cx = drawn["centres"][k] * w
        shoulders = (((xx - cx) / (0.5 * pw)) ** 2 + ((yy - (h + 0.05 * ph)) / (0.55 * ph)) ** 2
                     <= 1)
        head = (((xx - cx) / (0.21 * pw)) ** 2 + ((yy - (h - 0.68 * ph)) / (0.25 * ph)) ** 2
                <= 1)
        mask = ndimage.gaussian_filter((shoulders | head).astype(np.float32), 0.7)[..., None]
        out = out * (1 - mask) + mask * drawn["colours"][k]
    return out


def _underwater_image(frames, p, drawn):
    gains = np.array([p["red_gain"], p["green_gain"], 1.0], dtype=np.float32)
    x = frames * gains
    x = _gaussian_blur(x, p["blur"] * min(frames.shape[1:3]))
    mean = _luma(x).mean(axis=(1, 2, 3), keepdims=True)
    x = mean + p["contrast"] * (x - mean)
    water = np.array(UNDERWATER_WATER_RGB, dtype=np.float32)
    return x * (1 - p["haze"]) + p["haze"] * water


def _fire_draw(shape, p, rng, shared):
    t, h, w = shape
    return {"smoke": _fractal(h, w, rng)}, {}


def fire_rows(h: int) -> np.ndarray:
    """Each row's height in the frame, 0 at the top to 1 at the bottom: float32 (h,)."""
    return np.linspace(0.0, 1.0, h, dtype=np.float32)


def _fire_image(frames, p, drawn):
    # smoke rises: denser towards the top; the fire glows from the bottom
    rows = fire_rows(frames.shape[1])[:, None]
    density = (p["smoke_alpha"] * drawn["smoke"] * (1.15 - 0.3 * rows))[..., None]
    glow = (p["glow"] * rows**2)[..., None] * np.array(FIRE_GLOW_RGB, dtype=np.float32)
    warm = np.array(FIRE_WARM_RGB, dtype=np.float32)
    x = frames * ((1 - p["tint"]) + p["tint"] * warm) + glow
    smoke_colour = np.array(SMOKE_RGB, dtype=np.float32)
    return x * (1 - density) + density * smoke_colour


GLITCH_MAX_BANDS = 8
GLITCH_MAX_BLOCKS = 4


def glitch_block_size(h: int, w: int) -> tuple[int, int]:
    """The (height, width) of the blocks a glitch moves."""
    return max(1, h // 6), max(1, w // 6)


def _glitch_draw(h: int, w: int, p: Mapping[str, Any], rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One frame's glitch: (bands, 3) rows (top, height, shift) of shifted row bands and
    (blocks, 4) rows (source top, source left, destination top, destination left) of
    moved blocks, in pixels; draws are for the most severe setting, the severity uses the
    first ones (nested)."""
    ys = rng.random(GLITCH_MAX_BANDS)
    hs = rng.random(GLITCH_MAX_BANDS)
    shifts = rng.uniform(-1, 1, GLITCH_MAX_BANDS)
    blocks = rng.random((GLITCH_MAX_BLOCKS, 4))
    bands = []
    for k in range(p["bands"]):
        bh = max(1, round(hs[k] * p["band_height"] * h))
        bands.append((min(int(ys[k] * h), h - bh), bh, round(shifts[k] * p["shift"] * w)))
    bh, bw = glitch_block_size(h, w)
    moves = [(int(sy * (h - bh)), int(sx * (w - bw)), int(dy * (h - bh)), int(dx * (w - bw)))
             for sy, sx, dy, dx in blocks[:p["blocks"]]]
    return (np.array(bands, dtype=np.int64).reshape(-1, 3),
            np.array(moves, dtype=np.int64).reshape(-1, 4))


def _interference_draw(shape, p, rng, shared):
    t, h, w = shape
    if t == 1:
        hit = [0]
    else:  # frames whose time span [i/T, (i+1)/T) overlaps a dropout
        hit = [i for i in range(t)
               if any(a < (i + 1) / t and b > i / t for a, b in shared["dropouts"])]
    bands = np.zeros((t, p["bands"], 3), dtype=np.int64)
    blocks = np.zeros((t, p["blocks"], 4), dtype=np.int64)
    for i in range(t):
        frame_rng = np.random.default_rng(rng.integers(2**63))  # one stream per frame
        if i in hit:
            bands[i], blocks[i] = _glitch_draw(h, w, p, frame_rng)
    glitched = np.zeros(t, dtype=bool)
    glitched[hit] = True
    return ({"glitched": glitched, "bands": bands, "blocks": blocks},
            {"glitched_frames": hit})


def _interference_image(frames, p, drawn):
    """Shifted row bands (with an RGB split) and displaced blocks, read from the frame
    as it was, on the glitched frames."""
    t, h, w, _ = frames.shape
    split = round(p["rgb_split"] * w)
    bh, bw = glitch_block_size(h, w)
    out = frames.copy()
    for i in np.flatnonzero(drawn["glitched"]):
        frame = frames[i]
        for y0, height, shift in drawn["bands"][i].tolist():
            band = np.roll(frame[y0:y0 + height], shift, axis=1)
            if split:
                band[..., 0] = np.roll(band[..., 0], split, axis=1)
                band[..., 2] = np.roll(band[..., 2], -split, axis=1)
            out[i, y0:y0 + height] = band
        for sy, sx, dy, dx in drawn["blocks"][i].tolist():
            out[i, dy:dy + bh, dx:dx + bw] = frame[sy:sy + bh, sx:sx + bw]
    return out


def _compression_image(frames, p, drawn):
    out = np.empty_like(frames)
    for i, f in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(np.rint(f * 255).astype(np.uint8)).save(
            buffer, format="JPEG", quality=p["jpeg_quality"])
        out[i] = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255
    return out


def _sensor_draw(shape, p, rng, shared):
    return {"noise": rng.standard_normal((*shape, 3), dtype=np.float32)}, {}


def _sensor_image(frames, p, drawn):
    """Poisson-Gaussian sensor noise: std sqrt(a x + b^2), fresh per frame."""
    sigma = np.sqrt(p["shot_a"] * frames + p["read_b"] ** 2)
    return frames + sigma * drawn["noise"]

# ---------------------------------------------------------------------------------------
# audio sides. draw: f(length, params, rng, sample_rate, shared) -> (drawn, info);
# transform: f(x float64 (L,), params, sample_rate, drawn) -> y;
# bed: f(length, params, rng, sample_rate) -> noise (any scale; normalised when mixed)


def _rain_bed(length, p, rng, sr):
    kernels = []
    for _ in range(8):  # droplet "plinks": short damped sinusoids, 1.5-5 kHz
        f = min(rng.uniform(1500, 5000), 0.45 * sr)
        tau = rng.uniform(0.001, 0.004)
        n = max(2, int(5 * tau * sr))
        tt = np.arange(n) / sr
        kernels.append(np.exp(-tt / tau) * np.sin(2 * np.pi * f * tt))
    drops = _impulse_bank(length, p["drops_per_s"], sr, rng, kernels, None)
    hiss = _butter(rng.standard_normal(length), 2000.0, sr, "highpass")
    hiss = hiss if _rms(hiss) > 0 else rng.standard_normal(length)
    return (math.sqrt(1 - p["hiss"]) * _unit_rms(drops) + math.sqrt(p["hiss"]) * _unit_rms(hiss))


def _wind_bed(length, p, rng, sr):
    rumble = _butter(rng.standard_normal(length), 400.0, sr, "lowpass", order=2)
    gust = _smooth_noise(length, int(0.3 * sr), rng)
    gust /= max(np.abs(gust).max(), 1e-12)
    return _unit_rms(rumble) * np.clip(1 + p["gust_depth"] * gust, 0, None)


def _underwater_bed(length, p, rng, sr):
    return _butter(rng.standard_normal(length), 300.0, sr, "lowpass", order=2)


def _fire_bed(length, p, rng, sr):
    kernels = []
    for _ in range(8):  # crackles: sub-millisecond to 3 ms noise bursts, high-passed
        n = max(2, int(rng.uniform(0.0005, 0.003) * sr))
        burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 4))
        kernels.append(burst - burst.mean())
    crackle = _impulse_bank(length, p["crackles_per_s"], sr, rng, kernels, 1.5)
    crackle = _butter(crackle, 800.0, sr, "highpass")
    rumble = _butter(rng.standard_normal(length), 150.0, sr, "lowpass", order=2)
    return math.sqrt(0.6) * _unit_rms(crackle) + math.sqrt(0.4) * _unit_rms(rumble)


def _white_bed(length, p, rng, sr):
    return rng.standard_normal(length)


def resonant_lowpass(cutoff: float, q: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ-cookbook biquad low-pass (b, a), scaled to a peak gain of 1 (0 dB)."""
    w0 = 2 * math.pi * min(cutoff, 0.45 * sample_rate) / sample_rate
    alpha = math.sin(w0) / (2 * q)
    cos = math.cos(w0)
    b = np.array([(1 - cos) / 2, 1 - cos, (1 - cos) / 2])
    a = np.array([1 + alpha, -2 * cos, 1 - alpha])
    b, a = b / a[0], a / a[0]
    _, response = signal.freqz(b, a, worN=4096)
    return b / np.abs(response).max(), a


def _underwater_audio(x, p, sr, drawn):
    b, a = resonant_lowpass(p["cutoff_hz"], p["q"], sr)
    return signal.lfilter(b, a, x)


def _interference_shared(p_image, p_audio, rng):
    """Dropout spans as fractions of the clip: one in each of n equal parts (no overlap)."""
    n, total = p_audio["dropouts"], p_audio["dropout_fraction"]
    each = total / n
    starts = [(i + rng.random() * (1 - each * n)) / n for i in range(n)]
    return {"dropouts": [(s, s + each) for s in starts]}


def dropout_samples(dropouts: Sequence[tuple[float, float]], length: int
                    ) -> list[tuple[int, int]]:
    """Fractional dropout spans -> (start, stop) sample indices."""
    return [(round(a * length), min(length, round(b * length))) for a, b in dropouts]


def _interference_audio_draw(length, p, rng, sr, shared):
    spans = dropout_samples(shared["dropouts"], length)
    return {"dropouts": spans}, {"dropouts": spans}


def _interference_audio(x, p, sr, drawn):
    y = x.copy()
    for a, b in drawn["dropouts"]:
        y[a:b] = 0.0
    return y


def mu_law_quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """mu-law companding with 2^bits levels (mu = 2^bits - 1), encode + decode; x is
    clipped to [-1, 1] first."""
    mu = 2**bits - 1
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    q = np.rint((y + 1) / 2 * mu)  # 0 .. mu
    y = 2 * q / mu - 1
    return np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu


def _compression_audio(x, p, sr, drawn):
    target = min(int(p["codec_rate_hz"]), sr)
    if target < sr:
        g = math.gcd(sr, target)
        low = signal.resample_poly(x, target // g, sr // g)
        low = mu_law_quantize(low, p["bits"])
        y = signal.resample_poly(low, sr // g, target // g)[:len(x)]
        y = np.pad(y, (0, len(x) - len(y)))
    else:
        y = mu_law_quantize(x, p["bits"])
    return y


# ---------------------------------------------------------------------------------------
# the events


@dataclass(frozen=True)
class Event:
    """One co-occurring event's definition: both sides' parameters for severities 1..5 in one
    place, from which its spec's draw and apply are built (`_spec`).

    Each side is split into its random draws (numpy, from the sample's seed) and their
    application, so that the torch backend (`corruptions.torch_av`) applies the same draws:
    draw_image(shape (T, H, W), params, rng, shared) -> (drawn, info) and
    image(frames, params, drawn) acting on float32 (T, H, W, 3) in [0, 1];
    draw_audio(length, params, rng, sample_rate, shared) -> (drawn, info) and
    audio(x, params, sample_rate, drawn), the transform (None: identity);
    bed(length, params, rng, sample_rate) the synthetic noise bed (a draw), added at
    `audio_params[s]['snr_db']` (None: no bed, or `bed_kind == 'pool'` for babble);
    shared(image_params, audio_params, rng) draws what both sides use (None: nothing)."""

    name: str
    description: str
    image_params: tuple[Mapping[str, Any], ...]
    audio_params: tuple[Mapping[str, Any], ...]
    image: Callable
    draw_image: Callable = _no_draw
    audio: Callable | None = None
    draw_audio: Callable = _no_draw
    bed: Callable | None = None
    bed_kind: str | None = None  # "synthetic", "pool" (crowd babble) or None (no bed)
    shared: Callable | None = None
    image_units: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    audio_units: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # image parameter -> its twin in the image grid, whose constants depend on the image
    # size (`corruptions.scales`): taken from the twin's table at the images' scale;
    # `image_params` holds the ImageNet (224 px) values
    image_scaled: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def has_bed(self) -> bool:
        return self.bed_kind is not None

    @property
    def scaled(self) -> bool:
        return bool(self.image_scaled)

    def image_at(self, severity: int, scale: str | None) -> Mapping[str, Any]:
        """The image parameters of a severity at a resolved severity scale (None: the
        ImageNet values)."""
        params = self.image_params[severity - 1]
        if not self.image_scaled or scale is None:
            return params
        return MappingProxyType({**params, **{
            key: scales.constants(twin, severity, scale)[0]
            for key, twin in self.image_scaled.items()}})


SNR_LADDER = (20, 15, 10, 5, 0)

EVENTS: dict[str, Event] = {e.name: e for e in (
    Event(
        name="rain",
        description="rain streaks at a wind angle over a darkened, hazy scene; droplet "
                    "plinks and high-frequency hiss",
        image_params=_params({"drop_density": (0.002, 0.004, 0.007, 0.011, 0.016),
                              "streak_length": (0.06, 0.08, 0.10, 0.12, 0.15),
                              "streak_alpha": (0.45, 0.5, 0.55, 0.6, 0.65),
                              "darken": (0.95, 0.9, 0.85, 0.8, 0.75),
                              "haze": (0.05, 0.1, 0.15, 0.2, 0.25)}),
        audio_params=_params({"snr_db": SNR_LADDER,
                              "drops_per_s": (150, 300, 600, 1200, 2400),
                              "hiss": (0.3, 0.35, 0.4, 0.45, 0.5)}),
        image=_rain_image, draw_image=_rain_draw, bed=_rain_bed, bed_kind="synthetic",
        image_units=MappingProxyType({"drop_density": "fraction of pixels",
                                      "streak_length": "x image height",
                                      "streak_alpha": "screen-blend opacity",
                                      "darken": "scene gain", "haze": "blend to grey"}),
        audio_units=MappingProxyType({"drops_per_s": "Poisson rate",
                                      "hiss": "share of bed power"}),
    ),
    Event(
        name="wind",
        description="directional motion blur (camera shake in gusts) with blowing dust; "
                    "low-frequency rumble modulated by slow gusts",
        image_params=_params({"blur_length": (0.03, 0.05, 0.08, 0.12, 0.16),
                              "dust_alpha": (0.05, 0.1, 0.15, 0.2, 0.3)}),
        audio_params=_params({"snr_db": SNR_LADDER,
                              "gust_depth": (0.3, 0.45, 0.6, 0.75, 0.9)}),
        image=_wind_image, draw_image=_wind_draw, bed=_wind_bed, bed_kind="synthetic",
        image_units=MappingProxyType({"blur_length": "x min(H, W)",
                                      "dust_alpha": "peak blend to dust colour"}),
        audio_units=MappingProxyType({"gust_depth": "amplitude modulation depth"}),
    ),
    Event(
        name="crowd",
        description="dark head-and-shoulders silhouettes occluding the bottom of the frame; "
                    "babble of clips of other classes from the same split (the pool)",
        image_params=_params({"people": (1, 2, 3, 4, 5),
                              "height": (0.35, 0.42, 0.5, 0.55, 0.6),
                              "width": (0.3, 0.32, 0.34, 0.36, 0.38)}),
        audio_params=_params({"snr_db": SNR_LADDER, "talkers": (2, 3, 4, 6, 8)}),
        image=_crowd_image, draw_image=_crowd_draw, bed_kind="pool",
        image_units=MappingProxyType({"people": "silhouettes", "height": "x image height",
                                      "width": "shoulder width x image width"}),
        audio_units=MappingProxyType({"talkers": "other clips mixed"}),
    ),
    Event(
        name="underwater",
        description="red and green absorbed, blur, lower contrast, blue-green haze; a "
                    "muffled resonant low-pass with low water rumble",
        image_params=_params({"red_gain": (0.8, 0.65, 0.5, 0.35, 0.2),
                              "green_gain": (0.97, 0.94, 0.9, 0.86, 0.82),
                              "blur": (0.003, 0.005, 0.008, 0.011, 0.015),
                              "contrast": (0.92, 0.85, 0.78, 0.7, 0.62),
                              "haze": (0.08, 0.15, 0.22, 0.3, 0.38)}),
        audio_params=_params({"cutoff_hz": (3000, 2000, 1200, 800, 500),
                              "q": (1.0, 1.5, 2.0, 2.5, 3.0),
                              "snr_db": (30, 25, 20, 15, 10)}),
        image=_underwater_image, audio=_underwater_audio, bed=_underwater_bed,
        bed_kind="synthetic",
        image_units=MappingProxyType({"red_gain": "x R", "green_gain": "x G",
                                      "blur": "Gaussian sigma x min(H, W)",
                                      "contrast": "around mean luminance",
                                      "haze": "blend to water (0.05, 0.35, 0.45)"}),
        audio_units=MappingProxyType({"cutoff_hz": "biquad low-pass", "q": "resonance",
                                      "snr_db": "300 Hz rumble bed"}),
    ),
    Event(
        name="fire",
        description="smoke cloud (fractal noise, denser at the top), warm tint and an "
                    "orange glow from below; crackle impulses and a low rumble",
        image_params=_params({"smoke_alpha": (0.3, 0.42, 0.54, 0.66, 0.78),
                              "tint": (0.2, 0.3, 0.4, 0.5, 0.6),
                              "glow": (0.05, 0.08, 0.11, 0.14, 0.18)}),
        audio_params=_params({"snr_db": SNR_LADDER,
                              "crackles_per_s": (20, 40, 80, 150, 250)}),
        image=_fire_image, draw_image=_fire_draw, bed=_fire_bed, bed_kind="synthetic",
        image_units=MappingProxyType({"smoke_alpha": "peak smoke opacity",
                                      "tint": "blend to warm white balance",
                                      "glow": "orange added at the bottom row"}),
        audio_units=MappingProxyType({"crackles_per_s": "Poisson rate"}),
    ),
    Event(
        name="interference",
        description="frame glitches (shifted row bands with an RGB split, displaced "
                    "blocks) on the frames the audio drops out in; zeroed audio segments",
        image_params=_params({"bands": (2, 3, 4, 6, 8),
                              "band_height": (0.04, 0.05, 0.06, 0.08, 0.1),
                              "shift": (0.05, 0.1, 0.15, 0.2, 0.3),
                              "rgb_split": (0.0, 0.01, 0.02, 0.03, 0.04),
                              "blocks": (0, 1, 2, 3, 4)}),
        audio_params=_params({"dropouts": (1, 2, 3, 4, 5),
                              "dropout_fraction": (0.05, 0.1, 0.2, 0.3, 0.4)}),
        image=_interference_image, draw_image=_interference_draw,
        audio=_interference_audio, draw_audio=_interference_audio_draw,
        shared=_interference_shared,
        image_units=MappingProxyType({"bands": "row bands shifted",
                                      "band_height": "max x image height",
                                      "shift": "max x image width",
                                      "rgb_split": "R/B offset x width",
                                      "blocks": "H/6 x W/6 blocks moved"}),
        audio_units=MappingProxyType({"dropouts": "segments zeroed",
                                      "dropout_fraction": "of the clip, in total"}),
    ),
    Event(
        name="compression",
        description="JPEG frames; low-rate, few-bit mu-law audio coding",
        image_params=_params({"jpeg_quality": (25, 18, 15, 10, 7)}),
        audio_params=_params({"codec_rate_hz": (8000, 6000, 4000, 3000, 2000),
                              "bits": (8, 7, 6, 5, 4)}),
        image=_compression_image, audio=_compression_audio,
        image_scaled=MappingProxyType({"jpeg_quality": "jpeg_compression"}),
        image_units=MappingProxyType({"jpeg_quality": "PIL quality"}),
        audio_units=MappingProxyType({"codec_rate_hz": "resampled to and back",
                                      "bits": "mu-law bits"}),
    ),
    Event(
        name="sensor_noise",
        description="Poisson-Gaussian pixel noise (fresh every frame); white noise on the "
                    "microphone",
        image_params=_params({"shot_a": (0.002, 0.004, 0.008, 0.015, 0.03),
                              "read_b": (0.02, 0.03, 0.05, 0.07, 0.1)}),
        audio_params=_params({"snr_db": SNR_LADDER}),
        image=_sensor_image, draw_image=_sensor_draw, bed=_white_bed, bed_kind="synthetic",
        image_units=MappingProxyType({"shot_a": "variance per unit intensity",
                                      "read_b": "read-noise std"}),
        audio_units=MappingProxyType({}),
    ),
)}


# ---------------------------------------------------------------------------------------
# real noise recordings


def _pcm_to_float(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128) / 128
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    return data.astype(np.float64)


@functools.lru_cache(maxsize=64)
def _load_noise(path: str, sample_rate: int, mtime_ns: int, size: int) -> np.ndarray:
    rate, data = wavfile.read(path)
    x = _pcm_to_float(np.asarray(data))
    if x.ndim == 2:
        x = x.mean(axis=1)  # (frames, channels) -> mono
    if rate != sample_rate:
        g = math.gcd(int(rate), int(sample_rate))
        x = signal.resample_poly(x, sample_rate // g, rate // g)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"noise file {path} is empty or not finite")
    x.setflags(write=False)
    return x


def load_noise(path: str | Path, sample_rate: int) -> np.ndarray:
    """A wav file as mono float64 at `sample_rate` (int PCM scaled to [-1, 1), channels
    averaged, resampled with scipy.signal.resample_poly); cached."""
    path = Path(path)
    st = path.stat()
    return _load_noise(str(path.resolve()), int(sample_rate), st.st_mtime_ns, st.st_size)


def fit_length(noise: np.ndarray, length: int, offset: int) -> np.ndarray:
    """Tile `noise` circularly from `offset` to exactly `length` samples."""
    return noise[(offset + np.arange(length)) % len(noise)]


def noise_files(noise_dir: str | Path, event: str) -> list[Path]:
    folder = Path(noise_dir) / event
    files = sorted(f for f in folder.glob("*") if f.suffix.lower() == ".wav" and f.is_file())
    if not files:
        raise FileNotFoundError(f"no .wav files for AV event {event!r} in {folder}")
    return files


def _file_bed(files: list[Path], noise_dir: Path, length: int, sample_rate: int,
              rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    f = files[int(rng.integers(len(files)))]
    noise = load_noise(f, sample_rate)
    offset = int(rng.integers(len(noise)))
    return fit_length(noise, length, offset), {
        "bed": f"file:{f.relative_to(noise_dir).as_posix()}", "bed_offset": offset}


# ---------------------------------------------------------------------------------------
# crowd babble


def _digest(x: np.ndarray) -> bytes:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return hashlib.blake2b(repr(x.shape).encode() + x.tobytes(), digest_size=16).digest()


@dataclass(frozen=True)
class _Pool:
    entries: tuple[np.ndarray, ...]  # non-silent pool clips, ordered by content digest
    digests: tuple[bytes, ...]
    indices: tuple[int, ...]  # their positions in the pool as passed
    labels: tuple[Any, ...] | None = None  # their classes, if given
    # content digest -> the classes of the pool clips with that content (labels given)
    classes: Mapping[bytes, frozenset] = field(default_factory=dict)

    @classmethod
    def build(cls, pool: Sequence[np.ndarray], labels: Sequence[Any] | None = None) -> _Pool:
        if labels is not None and len(labels) != len(pool):
            raise ValueError(f"{len(labels)} pool labels for {len(pool)} pool clips")
        rows, classes = [], {}
        for i, a in enumerate(pool):
            a = np.asarray(a, dtype=np.float64)
            if a.ndim != 1:
                raise ValueError(f"pool entry {i} must be 1-D audio, got shape {a.shape}")
            digest = _digest(pool[i])
            if labels is not None:
                classes.setdefault(digest, set()).add(labels[i])
            if a.size and _rms(a) > 0 and np.all(np.isfinite(a)):
                rows.append((digest, i, a))
        rows.sort(key=lambda r: (r[0], r[1]))
        return cls(tuple(r[2] for r in rows), tuple(r[0] for r in rows),
                   tuple(r[1] for r in rows),
                   None if labels is None else tuple(labels[r[1]] for r in rows),
                   {d: frozenset(c) for d, c in classes.items()})


def _babble(pool: _Pool, own: bytes, talkers: int, length: int, rng: np.random.Generator
            ) -> tuple[np.ndarray, dict]:
    """Babble of `talkers` pool clips other than the sample's own (content `own`) and,
    where the pool has labels, of no class the sample's clip has in the pool."""
    own_classes = pool.classes.get(own, frozenset())
    eligible = [j for j, d in enumerate(pool.digests) if d != own and
                (pool.labels is None or pool.labels[j] not in own_classes)]
    if not eligible:
        raise ValueError("crowd babble needs at least one non-silent pool clip other than "
                         "the sample itself" + (" and of another class" if own_classes
                                                else ""))
    chosen = rng.choice(eligible, size=min(talkers, len(eligible)), replace=False)
    babble = np.zeros(length)
    for j in chosen:
        clip = pool.entries[j]
        babble += _unit_rms(fit_length(clip, length, int(rng.integers(len(clip)))))
    return babble, {"bed": "pool", "babble_pool_indices": [pool.indices[j] for j in chosen]}


# ---------------------------------------------------------------------------------------
# the protocol (`corruptions.spec`): a batch's context, its draws, their application

FAMILY = "av_event"
TORCH_BACKEND = "rambench-av-torch/1"  # bump when corruptions.torch_av changes its output
RANDOMNESS = ("seed: every draw of both sides derives from it (and the event's name); the "
              "drawn parameters that describe them are recorded beside it: per side a dict "
              "(e.g. rain's angle and drop count, the bed), `shared` what both sides use")


def _streams(name: str, seed: int) -> dict[str, np.random.Generator]:
    entropy = [operator.index(seed) & (2**64 - 1), zlib.crc32(name.encode())]
    keys = ("shared", "image", "audio", "bed")
    children = np.random.SeedSequence(entropy).spawn(len(keys))
    return {k: np.random.default_rng(c) for k, c in zip(keys, children, strict=True)}


def _frames(images: np.ndarray) -> np.ndarray:
    """Images as clips: stills (N, H, W, C) as one-frame clips (a view)."""
    return images if images.ndim == 5 else images[:, None]


@dataclass(frozen=True)
class SampleDraws:
    """Everything random about one sample: its record (the params of `corruptions.spec`:
    its seed and what was drawn from it) and the drawn parameters of each side ({} for a
    side that is absent or draws nothing)."""

    record: dict[str, Any]
    image: dict[str, Any]
    audio: dict[str, Any]


def _draw_sample(event: Event, p_image, p_audio, seed: int,
                 shape: tuple[int, int, int] | None, x: np.ndarray | None,
                 sample_rate: int | None, pool: _Pool | None,
                 noise: tuple[list[Path], Path] | None) -> SampleDraws:
    """The sample's draws, from its streams; `shape` (T, H, W) of its frames (None: no
    image), `x` its clean audio (None: no audio)."""
    streams = _streams(event.name, seed)
    shared = (event.shared(p_image, p_audio, streams["shared"])
              if event.shared is not None else {})
    record: dict[str, Any] = {"seed": seed}
    if shared:
        record["shared"] = {k: [tuple(round(float(v), 6) for v in span) for span in spans]
                            for k, spans in shared.items()}
    image: dict[str, Any] = {}
    audio: dict[str, Any] = {}
    if shape is not None:
        image, record["image"] = event.draw_image(shape, p_image, streams["image"], shared)
    if x is not None:
        audio, record["audio"] = _draw_audio(event, p_audio, x, streams, shared, sample_rate,
                                             pool, noise)
    return SampleDraws(record, image, audio)


def _draw_audio(event: Event, params, x: np.ndarray, streams, shared, sample_rate: int,
                pool: _Pool | None, noise: tuple[list[Path], Path] | None
                ) -> tuple[dict, dict]:
    """The audio transform's draws and the noise bed (raw: normalised when mixed)."""
    if not len(x):
        return {}, {}
    drawn, info = event.draw_audio(len(x), params, streams["audio"], sample_rate, shared)
    if event.has_bed:
        if noise is not None:
            bed, bed_info = _file_bed(*noise, len(x), sample_rate, streams["bed"])
        elif event.bed_kind == "pool":
            bed, bed_info = _babble(pool, _digest(x), params["talkers"], len(x), streams["bed"])
        else:
            bed, bed_info = event.bed(len(x), params, streams["bed"], sample_rate), {
                "bed": "synthetic"}
        drawn = {**drawn, "bed": np.asarray(bed, dtype=np.float64)}
        info = {**info, **bed_info}
    return drawn, info


def _image_sample(event: Event, params, sample: np.ndarray, drawn: dict) -> np.ndarray:
    """One sample's frames uint8 (T, H, W, C) corrupted with its draws."""
    frames = sample.astype(np.float32) / 255
    gray = frames.shape[-1] == 1
    if gray:
        frames = np.repeat(frames, 3, axis=-1)
    out = event.image(np.ascontiguousarray(frames), params, drawn)
    out = np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8)
    if gray:
        out = np.rint(out.mean(axis=-1, keepdims=True)).astype(np.uint8)
    return out


def _audio_sample(event: Event, params, x: np.ndarray, drawn: dict, sample_rate: int
                  ) -> np.ndarray:
    """One clip (L,) corrupted with its draws: the transform, then the bed at its SNR."""
    clean = x.astype(np.float64)
    if not len(clean):
        return x.copy()
    y = event.audio(clean, params, sample_rate, drawn) if event.audio is not None else clean
    if event.has_bed:
        level = _rms(clean) / 10 ** (params["snr_db"] / 20)
        y = y + level * _unit_rms(drawn["bed"])
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def prepare(name: str, batch: tuple[np.ndarray | None, np.ndarray | None],
            sample_rate: int | None = None, pool: Sequence[np.ndarray] | None = None,
            noise_dir: str | Path | None = None, pool_labels: Sequence[Any] | None = None,
            **options) -> tuple[int, dict[str, Any]]:
    """A batch's number of samples and context, or a ValueError saying what is wrong with it.

    batch: (images, audio): images uint8 (N, H, W, C) or clips (N, T, H, W, C), C in {1, 3},
    H, W >= 8, or None; audio float32 (N, L) at `sample_rate`, or None.
    pool: the audio the crowd babble is drawn from (1-D arrays at `sample_rate`, e.g. the
    clean audio of the whole split); entries equal to a sample's own clean audio (same
    content, bitwise) and silent entries are never used; the choice depends on the pool's
    contents, not on its order. pool_labels: the class of each pool clip; a sample then
    babbles only with clips of classes other than those its own clip has in the pool (so
    that on spoken digits or emotions the crowd does not say the sample's class).
    scale (an option): the severity scale of a side with an image-grid twin
    (`Event.image_scaled`), `auto` from the images' size. noise_dir: real recordings
    `<noise_dir>/<name>/*.wav` replace the synthetic (or babble) bed of events that have
    one; any rate, channel count or length (resampled, mixed to mono, tiled or cropped to
    the clip)."""
    event = EVENTS[name]
    images, audio = batch
    if images is None and audio is None:
        raise ValueError("nothing to corrupt: images and audio are both None")
    n = scale = None
    if images is not None:
        check_images(images, MIN_IMAGE_SIZE, clips=True)
        n = len(images)
        scale = scales.resolve_scale(options.get("scale", scales.DEFAULT_SCALE),
                                     *images.shape[-3:-1])
    pool_state = noise = None
    if audio is not None:
        if not isinstance(audio, np.ndarray) or audio.dtype != np.float32 or audio.ndim != 2:
            raise ValueError(f"audio must be float32 (N, L), got "
                             f"{getattr(audio, 'dtype', type(audio).__name__)} "
                             f"{getattr(audio, 'shape', '')}")
        if n is not None and len(audio) != n:
            raise ValueError(f"{n} images for {len(audio)} audio clips")
        n = len(audio)
        if sample_rate is None or operator.index(sample_rate) <= 0:
            raise ValueError(f"a positive sample_rate is needed, got {sample_rate!r}")
        sample_rate = operator.index(sample_rate)
        if event.has_bed and noise_dir is not None:
            noise = (noise_files(noise_dir, name), Path(noise_dir))
        elif event.bed_kind == "pool" and n and audio.shape[1]:
            if pool is None:
                raise ValueError("the crowd event needs `pool` (audio clips to babble from) "
                                 "or `noise_dir`")
            pool_state = _Pool.build(pool, pool_labels)
    return n, {"sample_rate": sample_rate, "pool": pool_state, "noise": noise,
               "scale": scale}


def draw(name: str, batch: tuple[np.ndarray | None, np.ndarray | None], severity: int,
         seeds: Sequence[int], context: Mapping[str, Any]) -> Draws:
    """Every sample's draws from its streams: the params (per sample its seed, `shared`,
    `image` and `audio`: what was drawn, for the sides given) and, derived, the drawn
    arrays (`SampleDraws`)."""
    event = EVENTS[name]
    images, audio = batch
    p_image = event.image_at(severity, context["scale"])
    p_audio = event.audio_params[severity - 1]
    shape = None if images is None else _frames(images).shape[1:4]
    draws = [_draw_sample(event, p_image, p_audio, seed, shape,
                          None if audio is None else audio[i], context["sample_rate"],
                          context["pool"], context["noise"]) for i, seed in enumerate(seeds)]
    params = {k: [d.record[k] for d in draws] for k in draws[0].record} if draws else {}
    return Draws(params, draws)


def sample_draws(name: str, batch: tuple[np.ndarray | None, np.ndarray | None],
                 severity: int, draws: Draws, context: Mapping[str, Any]) -> list[SampleDraws]:
    """The samples' drawn arrays: kept by `draw`, or derived again from the recorded seeds
    (every array derives from a sample's seed)."""
    if draws.derived is not None:
        return draws.derived
    return draw(name, batch, severity, draws.params["seed"], context).derived


def apply(name: str, batch: tuple[np.ndarray | None, np.ndarray | None], severity: int,
          draws: Draws, context: Mapping[str, Any]
          ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The reference backend: both sides of every sample corrupted with its draws by
    numpy/scipy/OpenCV/PIL, sample by sample; the same shapes and dtypes."""
    event = EVENTS[name]
    images, audio = batch
    p_image = event.image_at(severity, context["scale"])
    p_audio = event.audio_params[severity - 1]
    drawn = sample_draws(name, batch, severity, draws, context)
    out_images = None if images is None else np.stack(
        [_image_sample(event, p_image, f, d.image)
         for f, d in zip(_frames(images), drawn, strict=True)]).reshape(images.shape)
    out_audio = None if audio is None else np.stack(
        [_audio_sample(event, p_audio, x, d.audio, context["sample_rate"])
         for x, d in zip(audio, drawn, strict=True)])
    return out_images, out_audio


# ---------------------------------------------------------------------------------------
# documentation


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def markdown_table(name: str) -> str:
    """The event's parameters per severity as a markdown table (docs/av-events.md); a
    parameter taken from the image grid's scales shows its value at each scale."""
    e = EVENTS[name]
    keys = [("image", k) for k in e.image_params[0]] + [("audio", k) for k in e.audio_params[0]]
    units = {**{("image", k): v for k, v in e.image_units.items()},
             **{("audio", k): v for k, v in e.audio_units.items()}}
    units.setdefault(("audio", "snr_db"), "bed SNR, dB")
    for k in e.image_scaled:
        units[("image", k)] = (units.get(("image", k), "") + "; at scale "
                               + " / ".join(scales.SCALES)).lstrip("; ")
    head = ["severity"] + [f"{side}: {k}" + (f" ({units[(side, k)]})" if (side, k) in units
                                              else "") for side, k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in SEVERITIES:
        values = [" / ".join(_fmt(e.image_at(s, scale)[k]) for scale in scales.SCALES)
                  if side == "image" and k in e.image_scaled else
                  _fmt((e.image_params if side == "image" else e.audio_params)[s - 1][k])
                  for side, k in keys]
        lines.append("| " + " | ".join([str(s)] + values) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# the specs


def _describe(event: Event, severity: int, scale: str | None = None) -> str:
    """A severity's parameters of both sides in words (at a severity scale)."""
    return "; ".join(f"{side}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in p.items())
                     for side, p in (("image", event.image_at(severity, scale)),
                                     ("audio", event.audio_params[severity - 1])) if p)


# how the torch backend (`corruptions.torch_av`) applies each event, given the draws
TORCH_PORTS = {
    "underwater": (Fidelity.EXACT, "given the draws; its audio biquad by the reference's "
                                   "lfilter"),
    "compression": (Fidelity.REFERENCE, "PIL's JPEG and the reference's audio codec"),
}


def _spec(event: Event) -> Spec:
    fidelity, note = TORCH_PORTS.get(event.name, (Fidelity.EXACT, "given the draws"))
    return Spec(
        name=event.name, kind="av", family=FAMILY, backend=BACKEND,
        prepare=functools.partial(prepare, event.name),
        draw=functools.partial(draw, event.name), apply=functools.partial(apply, event.name),
        torch=TorchImpl("corruptions.torch_av", "apply", fidelity, note,
                        backend=TORCH_BACKEND),
        randomness=RANDOMNESS, description=event.description,
        severity_table=tuple(_describe(event, s) for s in SEVERITIES),
        scale_tables=MappingProxyType({
            scale: tuple(_describe(event, s, scale) for s in SEVERITIES)
            for scale in scales.SCALES} if event.scaled else {}),
        values=tuple(MappingProxyType({"image": event.image_params[s - 1],
                                       "audio": event.audio_params[s - 1]})
                     for s in SEVERITIES))


SPECS: tuple[Spec, ...] = tuple(_spec(event) for event in EVENTS.values())
