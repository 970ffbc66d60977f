"""AV-Digits: an offline audio-visual digit dataset shipped inside the package.

visual: scikit-learn's 1,797 handwritten 8x8 digits, upsampled to 32x32 uint8.
audio:  "zero" ... "nine" spoken by espeak-ng voices (accent x voice variant = speaker,
        two takes each at different rates and pitches), 16 kHz, 1 s, stored mu-law
        compressed in data/avdigits_audio.npz (made by scripts/make_avdigits_audio.py).

Each image is paired with a clip of the same digit, deterministically. Speakers are split
60/20/20 into train/val/test, so test voices are never heard in training; images are split
60/20/20, stratified by digit.

Difficulty is calibrated so that neither modality alone saturates: every image gets a
random shift and pixel noise, every clip a random onset and background noise (white or
pink) at a random SNR. These degradations are fixed per sample (part of the data, drawn
from `BUILD_SEED`), so every method sees the same dataset.
"""

from __future__ import annotations

import hashlib
from functools import cached_property, lru_cache
from importlib import resources

import numpy as np
from scipy import ndimage

from rambench.datasets.base import SPLITS, Dataset, ModalitySpec, Split, datasets

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # 1 s
IMAGE_SIZE = 32
BUILD_SEED = 20251107
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)

# Calibration (see the README's table of unimodal and fused accuracies).
IMAGE_NOISE_STD = (60.0, 140.0)  # per-image std of additive pixel noise, uint8 units
IMAGE_MAX_SHIFT = 3  # pixels
AUDIO_SNR_DB = (-4.0, 12.0)  # background noise level relative to the speech


def _data_file():
    return resources.files("rambench.datasets") / "data" / "avdigits_audio.npz"


def mulaw_decode(codes: np.ndarray, mu: int = 255) -> np.ndarray:
    y = codes.astype(np.float32) / 255.0 * 2.0 - 1.0
    return (np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu).astype(np.float32)


def _partition(items: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle `items` and cut them 60/20/20."""
    items = rng.permutation(items)
    cuts = np.round(np.cumsum(SPLIT_FRACTIONS)[:-1] * len(items)).astype(int)
    return np.split(items, cuts)


def _pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
    return np.fft.irfft(spectrum, n)


def _degrade_image(img8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    up = ndimage.zoom(img8 / 16.0 * 255.0, IMAGE_SIZE / img8.shape[0], order=3)
    dy, dx = rng.integers(-IMAGE_MAX_SHIFT, IMAGE_MAX_SHIFT + 1, size=2)
    up = np.roll(up, (dy, dx), axis=(0, 1))
    up += rng.normal(0.0, rng.uniform(*IMAGE_NOISE_STD), size=up.shape)
    return np.clip(np.round(up), 0, 255).astype(np.uint8)[..., None]


def _degrade_clip(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(CLIP_SAMPLES, dtype=np.float64)
    onset = rng.integers(0, CLIP_SAMPLES - speech.size + 1)
    out[onset:onset + speech.size] = speech
    noise = rng.standard_normal(CLIP_SAMPLES) if rng.random() < 0.5 else _pink_noise(
        CLIP_SAMPLES, rng)
    snr_db = rng.uniform(*AUDIO_SNR_DB)
    speech_rms = np.sqrt(np.mean(speech**2))
    noise *= speech_rms / np.sqrt(np.mean(noise**2)) / 10 ** (snr_db / 20)
    out += noise
    return (out / max(1.0, np.abs(out).max())).astype(np.float32)


@lru_cache(maxsize=1)
def _build() -> dict[str, Split]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    with np.load(_data_file()) as f:
        audio = {k: f[k] for k in f.files}
    rng = np.random.default_rng(BUILD_SEED)
    speaker_split = _partition(np.arange(len(audio["speaker_names"])), rng)
    image_split: list[list[np.ndarray]] = [[], [], []]
    for digit in range(10):
        for i, part in enumerate(_partition(np.flatnonzero(digits.target == digit), rng)):
            image_split[i].append(part)
    offsets = audio["offsets"]
    splits = {}
    for name, speakers, parts in zip(SPLITS, speaker_split, image_split, strict=True):
        image_ids = np.sort(np.concatenate(parts))
        y = digits.target[image_ids].astype(np.int64)
        in_split = np.isin(audio["speaker"], speakers)
        clip_ids = np.array([rng.choice(np.flatnonzero(in_split & (audio["digit"] == d)))
                             for d in y])
        visual = np.stack([_degrade_image(digits.images[i], rng) for i in image_ids])
        wave = np.stack([
            _degrade_clip(mulaw_decode(audio["audio_mulaw"][offsets[c]:offsets[c + 1]]), rng)
            for c in clip_ids
        ])
        splits[name] = Split(
            inputs={"visual": visual, "audio": wave},
            y=y,
            groups=audio["speaker"][clip_ids],
            info={"image_ids": image_ids, "clip_ids": clip_ids},
        )
    return splits


@datasets.register("avdigits")
class AVDigits(Dataset):
    """Spoken (espeak-ng) + handwritten (scikit-learn) digits, 10 classes, embedded offline."""

    name = "avdigits"
    description = __doc__.strip().splitlines()[0]
    modalities = {
        "visual": ModalitySpec("visual", "image", (IMAGE_SIZE, IMAGE_SIZE, 1), "image_cnn"),
        "audio": ModalitySpec("audio", "audio", (CLIP_SAMPLES,), "audio_cnn", SAMPLE_RATE),
    }
    class_names = tuple(str(d) for d in range(10))

    @cached_property
    def version(self) -> str:  # type: ignore[override]
        calibration = (BUILD_SEED, SPLIT_FRACTIONS, IMAGE_NOISE_STD, IMAGE_MAX_SHIFT, AUDIO_SNR_DB)
        digest = hashlib.sha256(_data_file().read_bytes() + repr(calibration).encode())
        return f"1-{digest.hexdigest()[:10]}"

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        return _build()[name]
