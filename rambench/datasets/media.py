"""Decoding for `rambench prepare`: frames from image folders (Pillow) or videos (PyAV),
waveforms from audio files (soundfile) or from a video's audio track (PyAV), resampled and
cut to a fixed length. Every function raises on unreadable input; `prepare` catches and
lists the files by name."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.signal import resample_poly

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def segment_positions(total: int, count: int, candidates: int = 1) -> list[int]:
    """Indices into `total` frames: `candidates` evenly spread positions inside each of
    `count` equal segments, segment by segment. With one candidate that is each segment's
    centre (test-time sampling in the audio-visual literature); training draws one of the
    candidates per segment at random."""
    if total < 1:
        raise ValueError("no frames")
    return [min(total - 1, int((t + (r + 0.5) / candidates) * total / count))
            for t in range(count) for r in range(candidates)]


def _resize(image: Image.Image, size: int, channels: int) -> np.ndarray:
    image = image.convert("RGB" if channels == 3 else "L").resize((size, size),
                                                                   Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array if channels == 3 else array[..., None]


def frames_from_folder(folder: Path, count: int, size: int, channels: int = 3,
                       candidates: int = 1) -> np.ndarray:
    """(count * candidates, size, size, channels) uint8 from the sorted image files of
    `folder`, at `segment_positions`."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return frames_from_files(files, count, size, channels, candidates)


def frames_from_files(files: list[Path], count: int, size: int, channels: int = 3,
                      candidates: int = 1) -> np.ndarray:
    """(count * candidates, size, size, channels) uint8 from `files` (a clip's frames in
    time order), at `segment_positions`."""
    out = []
    for i in segment_positions(len(files), count, candidates):
        with Image.open(files[i]) as image:
            out.append(_resize(image, size, channels))
    return np.stack(out)


def frames_from_video(path: Path, count: int, size: int, channels: int = 3,
                      candidates: int = 1) -> np.ndarray:
    """(count * candidates, size, size, channels) uint8: the video decoded once, frames at
    `segment_positions`."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
    return np.stack([_resize(frames[i], size, channels)
                     for i in segment_positions(len(frames), count, candidates)])


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Centre-crop or zero-pad (at the end) to `length` samples."""
    if len(wave) >= length:
        start = (len(wave) - length) // 2
        return wave[start:start + length]
    return np.pad(wave, (0, length - len(wave)))


def resample(wave: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return wave
    ratio = Fraction(target_rate, source_rate).limit_denominator(1000)
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


def read_audio(path: Path, sample_rate: int, seconds: float) -> np.ndarray:
    """Mono float32 at `sample_rate`, exactly `seconds` long."""
    import soundfile

    wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return fit_length(resample(wave.mean(axis=1), rate, sample_rate),
                      int(round(seconds * sample_rate)))


def audio_from_video(path: Path, sample_rate: int, seconds: float) -> np.ndarray:
    """The video's first audio track, mono float32 at `sample_rate`, `seconds` long."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path} has no audio track")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = [np.asarray(r.to_ndarray()).reshape(-1)
                  for frame in container.decode(audio=0) for r in resampler.resample(frame)]
        chunks += [np.asarray(r.to_ndarray()).reshape(-1) for r in resampler.resample(None)]
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return fit_length(wave, int(round(seconds * sample_rate)))
