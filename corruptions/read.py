"""READ's Kinetics50-C / VGGSound-C corruptions (Yang et al., ICLR 2024, "Test-time
Adaptation against Multi-modal Reliability Bias"), as a protocol: 15 video corruptions with
the audio clean, and 6 audio corruptions with the video clean, at READ's severities (its
tables use severity 5).

Reference (read, not copied): XLearning-SCU/2024-ICLR-READ@2f11912fe6959535928ba5754ce4d5a2cb2661b7:
make_corruptions/make_c_video.py (Hendrycks' make_imagenet_c.py: every constant identical;
each of a clip's 10 frames corrupted on its own, then saved as JPEG quality 85 with
`optimize=True`) and make_corruptions/make_c_audio.py (gaussian_noise: + N(0, sigma) with
sigma 0.08/0.12/0.18/0.26/0.38, absolute, lines 11-24; traffic, crowd, rain, thunder, wind:
`<weather_audios>/<name>.wav` raised by +1/2/4/6/8 dB on its own level, cut or tiled from its
start to the clip's length and overlaid, lines 26-44).

Each corruption is an "av" spec of protocol "read" whose other side is left as it is
(`read_<video corruption>`: the frames; `read_<audio corruption>`: the audio), so that it
travels with AV conditions' `noise_dir` (READ's `weather_audios/`, hashed into the key). A
grid asks for the whole protocol with `av: {events: read, severities: [5], noise_dir: ...}`;
the preset (`--grid read`) runs the 16 that need no recording.

The sample-rate guard: READ's mixing (pydub's `overlay`) converts the clip to the noise
file's rate and channel count, and the released noise files are 48 kHz stereo, so READ's
five file-based corrupted sets are 48 kHz stereo (the spectrogram then spans 0-24 kHz
instead of 0-8 kHz; its issues #8 and #13). Here every file is mixed to mono and resampled
to the clip's rate before it is added (`corruptions.av_events.load_noise`): the clip keeps
its length, rate and channel count. READ's published numbers for those five were measured on
the 48 kHz stereo files, so they are not reproduced exactly (docs/read.md).
"""

from __future__ import annotations

import functools
import io
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from corruptions import av_events as av
from corruptions import image as image_corruptions
from corruptions.avrobustbench import check_batch
from corruptions.spec import SEVERITIES, Draws, Fidelity, Spec, TorchImpl

PROTOCOL = "read"
PREFIX = "read_"
REFERENCE = ("XLearning-SCU/2024-ICLR-READ@2f11912fe6959535928ba5754ce4d5a2cb2661b7:"
             "make_corruptions/make_c_video.py, make_corruptions/make_c_audio.py")
BACKEND = "rambench-read/1"
SEVERITY = 5  # the severity of READ's tables
# READ's video corruptions, in its tables' order (make_c_video.py line 571)
VIDEO = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
         "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
         "elastic_transform", "pixelate", "jpeg_compression")
AUDIO = ("gaussian_noise", "traffic", "crowd", "rain", "thunder", "wind")
GAUSSIAN_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)
NOISE_GAIN_DB = (1, 2, 4, 6, 8)  # on the recording's own level
SAVE_QUALITY = 85  # every corrupted frame is saved as JPEG quality 85 (optimize=True)
MIN_IMAGE_SIZE = 32


def jpeg85(frame: np.ndarray) -> np.ndarray:
    """The frame as READ saves it: PIL JPEG quality 85, optimize=True, decoded."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=SAVE_QUALITY, optimize=True)
    return np.asarray(Image.open(buffer).convert("RGB"))


def video_frame(name: str, frame: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """One RGB frame: ImageNet-C's corruption at its 224-px constants, then JPEG 85."""
    out = image_corruptions.reference(name, frame, severity, seed, scale="imagenet")
    return jpeg85(np.ascontiguousarray(out))


def gaussian_audio(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """x + N(0, sigma^2), sigma absolute (not relative to the clip's level)."""
    return x + rng.normal(0.0, GAUSSIAN_SIGMA[severity - 1], len(x))


def recording_audio(x: np.ndarray, severity: int, noise: np.ndarray) -> np.ndarray:
    """x + the recording (mono, at the clip's rate) raised by +1..8 dB, from its start,
    tiled or cut to the clip's length (pydub's overlay of `apply_gain(g)`)."""
    return x + 10 ** (NOISE_GAIN_DB[severity - 1] / 20) * av.fit_length(noise, len(x), 0)


def _side(name: str) -> tuple[str, str]:
    """('video' | 'audio', READ's corruption name) of a spec name."""
    side, corruption = name.removeprefix(PREFIX).split("_", 1)
    return side, corruption


def spec_name(side: str, corruption: str) -> str:
    return f"{PREFIX}{side}_{corruption}"


def noise_file(name: str) -> str | None:
    """The file under `noise_dir` an audio corruption reads (None: none)."""
    side, corruption = _side(name)
    return f"{corruption}.wav" if side == "audio" and corruption != "gaussian_noise" else None


def prepare(name: str, batch, sample_rate: int | None = None,
            noise_dir: str | Path | None = None, **options) -> tuple[int, dict[str, Any]]:
    """As `corruptions.av_events.prepare`'s batch; a file-based audio corruption needs
    `noise_dir` holding `<corruption>.wav` (READ's `weather_audios/`)."""
    n = check_batch(batch, sample_rate, MIN_IMAGE_SIZE)
    path = None
    if batch[1] is not None:
        if (file := noise_file(name)) is not None:
            if noise_dir is None or not (Path(noise_dir) / file).is_file():
                raise FileNotFoundError(f"{name} reads READ's recording {file}: give its "
                                        f"weather_audios/ folder as noise_dir")
            path = Path(noise_dir) / file
    return n, {"sample_rate": sample_rate, "noise": path}


def draw(name: str, batch, severity: int, seeds: Sequence[int], context) -> Draws:
    return Draws({"seed": [int(s) for s in seeds]})


def apply(name: str, batch, severity: int, draws: Draws, context: Mapping[str, Any]):
    """The corrupted side of every sample from its seed; the other side unchanged."""
    side, corruption = _side(name)
    images, audio = batch
    seeds = draws.params["seed"]
    if side == "video":
        out_audio = None if audio is None else audio.copy()
        if images is None:
            return None, out_audio
        clips = images if images.ndim == 5 else images[:, None]
        out = np.empty_like(clips)
        for i, (clip, seed) in enumerate(zip(clips, seeds, strict=True)):
            frame_seeds = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]
                                                 ).generate_state(len(clip))
            for t, (frame, s) in enumerate(zip(clip, frame_seeds, strict=True)):
                rgb = np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame
                y = video_frame(corruption, rgb, severity, int(s))
                out[i, t] = np.rint(y.mean(axis=-1, keepdims=True)) if frame.shape[-1] == 1 \
                    else y
        return out.reshape(images.shape), out_audio
    out_images = None if images is None else images.copy()
    if audio is None:
        return out_images, None
    sr = context["sample_rate"]
    noise = None if context["noise"] is None else av.load_noise(context["noise"], sr)
    rows = []
    for x, seed in zip(audio, seeds, strict=True):
        clean = x.astype(np.float64)
        if noise is None:
            rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
            y = gaussian_audio(clean, severity, rng)
        else:
            y = recording_audio(clean, severity, noise)
        rows.append(np.clip(y, -1.0, 1.0 - 2.0**-15).astype(np.float32))  # 16-bit PCM
    return out_images, np.stack(rows) if rows else audio.copy()


def apply_torch(name: str, batch, severity: int, draws: Draws, context, device=None):
    """The torch backend runs the reference on the CPU (`Fidelity.REFERENCE`)."""
    return apply(name, batch, severity, draws, context)


def _spec(side: str, corruption: str) -> Spec:
    name = spec_name(side, corruption)
    if side == "video":
        what = f"ImageNet-C {corruption} on every frame, saved as JPEG 85; audio clean"
    elif corruption == "gaussian_noise":
        what = "audio + N(0, sigma) with sigma 0.08..0.38 (absolute); frames clean"
    else:
        what = f"READ's {corruption}.wav raised by +1..8 dB and overlaid; frames clean"
    return Spec(
        name=name, kind="av", family="av_event", backend=BACKEND,
        prepare=functools.partial(prepare, name), draw=functools.partial(draw, name),
        apply=functools.partial(apply, name),
        torch=TorchImpl("corruptions.read", "apply_torch", Fidelity.REFERENCE,
                        "the reference on the CPU", backend=BACKEND),
        randomness="seed: the corruption's draws (a clip's frames each a seed derived "
                   "from it; a recording is added deterministically)",
        description=what, protocol=PROTOCOL,
        severity_table=tuple(f"severity {s} of READ's {corruption}" for s in SEVERITIES))


SPECS: tuple[Spec, ...] = (*(_spec("video", c) for c in VIDEO),
                           *(_spec("audio", c) for c in AUDIO))
BENCHMARK = tuple(spec.name for spec in SPECS)
