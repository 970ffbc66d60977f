"""Synthesise the spoken-digit audio embedded in the avdigits dataset.

Why this script exists
----------------------
The audio-visual digits dataset (``avdigits``) pairs scikit-learn's handwritten
digit images with spoken versions of the same digit.  No small, freely
redistributable recording of spoken digits ships with our dependencies, so the
audio half is generated once with the espeak-ng speech synthesiser and stored,
compactly, in ``rambench/datasets/data/avdigits_audio.npz``.  That file is part
of the package; users of rambench never need this script or espeak-ng.  It is
kept so that the file can be regenerated and audited.

Requirements: espeak-ng on PATH (Debian/Ubuntu: ``apt-get install espeak-ng``),
numpy and scipy.

What it does
------------
A *speaker* is one English accent voice (``en-us``, ``en-gb-scotland``, ...)
combined with one voice variant (``+m3``, ``+f2``, ``+klatt4``, ...), written
``en-us+m3``.  ``--speakers`` speakers are drawn deterministically (``--seed``)
from the accents x variants below: all female variants (up to half of the
speakers), the rest male, with accents spread evenly.  For every speaker and
every word "zero" ... "nine", ``--takes`` takes are synthesised, each with its
own speaking rate (``-s``, words per minute) and pitch (``-p``, 0-99 within the
variant's range) drawn from a seeded ``numpy.random.Generator``.  The defaults
(60 speakers, one take) keep the file under 4 MB; two takes would double it.
The rate stops at 180 wpm (espeak's default is 175) so that even "eight" lasts
at least 0.2 s.  Each take is
resampled from espeak's native rate to 16 kHz, its leading and trailing
silence is trimmed (frame RMS below ``--trim-db`` relative to the loudest
frame), it is peak-normalised to 0.9 and cut to at most 1.0 s.

Output arrays (``np.savez_compressed``):

``audio_mulaw``    uint8, all clips concatenated, 8-bit mu-law (mu=255); decode
                   with ``y = code / 255 * 2 - 1``,
                   ``x = sign(y) * ((1 + mu) ** |y| - 1) / mu``
``offsets``        int64 (n_clips + 1,), clip i is
                   ``audio_mulaw[offsets[i]:offsets[i + 1]]``
``digit``          int64 (n_clips,), 0-9
``speaker``        int64 (n_clips,), index into ``speaker_names``
``speaker_names``  str (n_speakers,), e.g. ``"en-us+m3"``
``rate``, ``pitch`` int64 (n_clips,), the espeak-ng ``-s`` and ``-p`` used
``sample_rate``    int64 scalar, 16000
``espeak_version`` str scalar, from ``espeak-ng --version``

Usage (from the repository root)::

    python scripts/make_avdigits_audio.py
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

WORDS: tuple[str, ...] = tuple("zero one two three four five six seven eight nine".split())

# English accent voices of espeak-ng 1.51 (``espeak-ng --voices=en``), formant
# synthesiser only (the mb-* voices need MBROLA).  ``en`` is the same voice as
# ``en-gb`` and is therefore not listed twice.
ACCENTS: tuple[str, ...] = (
    "en-gb",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)

# Voice variants (file names under espeak-ng-data/voices/!v) of espeak-ng 1.51,
# ``espeak-ng --voices=variant``.  Left out on purpose:
#   whisper, whisperf, caleb    whispered (caleb: voicing 0), barely intelligible
#   announcer, Alicia           heavy echo / breath that smears the word
#   RicishayMax, RicishayMax2,  echo tails that make the clip up to twice as long
#     RicishayMax3
#   fast                        a speed test, overrides the speaking rate
#   "Mr serious"                space in its name
FEMALE_VARIANTS: tuple[str, ...] = tuple(
    """
    f1 f2 f3 f4 f5 Andrea Annie anika anikaRobot aunty belinda grandma linda steph steph2 steph3
    """.split()
)
MALE_VARIANTS: tuple[str, ...] = tuple(
    """
    m1 m2 m3 m4 m5 m6 m7 m8 klatt klatt2 klatt3 klatt4 klatt5 klatt6
    adam Alex Andy AnxiousAndy antonio benjamin boris croak david Demonic Denis Diogo ed
    edward edward2 Gene Gene2 grandpa gustave Henrique Hugo iven iven2 iven3 iven4 Jacky john
    kaukovalta Lee marcelo Marco Mario max Michael michel miguel Mike Nguyen norbert pablo paul
    pedro quincy rob robert robosoft robosoft2 robosoft3 robosoft4 robosoft5 robosoft6 robosoft7
    robosoft8 sandro shelby Storm travis Tweaky UniRobot victor zac
    """.split()
)

MU = 255
TARGET_SR = 16000
PEAK = 0.9
MAX_SAMPLES = TARGET_SR  # 1.0 s
FRAME = 160  # 10 ms at 16 kHz, for silence trimming

DEFAULT_OUT = (
    Path(__file__).resolve().parents[1] / "rambench" / "datasets" / "data" / "avdigits_audio.npz"
)


@dataclass(frozen=True)
class Take:
    """One synthesis job: a word spoken by a speaker at a rate and pitch."""

    speaker: int
    voice: str
    digit: int
    rate: int
    pitch: int


def mulaw_encode(x: np.ndarray, mu: int = MU) -> np.ndarray:
    """Encode floats in [-1, 1] as 8-bit mu-law codes (uint8, 0..255)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.rint((y + 1.0) / 2.0 * mu).astype(np.uint8)


def mulaw_decode(code: np.ndarray, mu: int = MU) -> np.ndarray:
    """Decode 8-bit mu-law codes to float32 in [-1, 1] (inverse of mulaw_encode)."""
    y = np.asarray(code, dtype=np.float64) / mu * 2.0 - 1.0
    return (np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu).astype(np.float32)


def espeak_version() -> str:
    """The version line of espeak-ng, without its machine-specific data path."""
    out = subprocess.run(
        ["espeak-ng", "--version"], check=True, capture_output=True, text=True
    ).stdout
    return out.split("Data at:")[0].strip()


def installed_variants() -> set[str]:
    """Names of the voice variants that the installed espeak-ng knows."""
    out = subprocess.run(
        ["espeak-ng", "--voices=variant"], check=True, capture_output=True, text=True
    ).stdout
    return set(re.findall(r"!v/(\S+)", out))


def installed_accents() -> set[str]:
    """Language names of the installed English voices."""
    out = subprocess.run(
        ["espeak-ng", "--voices=en"], check=True, capture_output=True, text=True
    ).stdout
    return {line.split()[1] for line in out.splitlines()[1:] if line.strip()}


def choose_speakers(n: int, rng: np.random.Generator) -> list[str]:
    """Pick n distinct accent+variant speakers, deterministically given rng.

    Up to half of them use a female variant; every variant is used at most once
    and the accents are spread evenly (counts differ by at most one).
    """
    n_female = min(len(FEMALE_VARIANTS), n // 2)
    n_male = n - n_female
    if n_male > len(MALE_VARIANTS):
        raise ValueError(f"at most {len(MALE_VARIANTS) + n_female} speakers available")
    female = [FEMALE_VARIANTS[i] for i in rng.permutation(len(FEMALE_VARIANTS))[:n_female]]
    male = [MALE_VARIANTS[i] for i in rng.permutation(len(MALE_VARIANTS))[:n_male]]
    variants = female + male
    accents = np.resize(np.array(ACCENTS), n)[rng.permutation(n)]
    return sorted(f"{a}+{v}" for a, v in zip(accents, variants, strict=True))


def plan_takes(
    speakers: list[str],
    takes: int,
    rng: np.random.Generator,
    rate_range: tuple[int, int],
    pitch_range: tuple[int, int],
) -> list[Take]:
    """All synthesis jobs, speaker-major, with seeded rate and pitch per take."""
    jobs: list[Take] = []
    for s, voice in enumerate(speakers):
        for digit in range(len(WORDS)):
            for _ in range(takes):
                rate = int(rng.integers(rate_range[0], rate_range[1] + 1))
                pitch = int(rng.integers(pitch_range[0], pitch_range[1] + 1))
                jobs.append(Take(s, voice, digit, rate, pitch))
    return jobs


def synthesise(take: Take, workdir: Path) -> tuple[np.ndarray, int]:
    """Run espeak-ng for one take; return its samples (float64) and sample rate."""
    wav = workdir / f"{take.speaker}_{take.digit}_{take.rate}_{take.pitch}.wav"
    cmd = ["espeak-ng", "-v", take.voice, "-s", str(take.rate), "-p", str(take.pitch)]
    subprocess.run([*cmd, "-w", str(wav), WORDS[take.digit]], check=True, capture_output=True)
    sr, data = wavfile.read(wav)
    wav.unlink()
    if data.ndim != 1 or data.size == 0:
        raise RuntimeError(f"espeak-ng produced no mono audio for {take}")
    if np.issubdtype(data.dtype, np.integer):
        x = data.astype(np.float64) / np.iinfo(data.dtype).max
    else:
        x = data.astype(np.float64)
    return x, int(sr)


def process(x: np.ndarray, sr: int, trim_db: float) -> np.ndarray:
    """Resample to 16 kHz, trim silence, peak-normalise to 0.9, cap at 1.0 s."""
    g = gcd(TARGET_SR, sr)
    x = resample_poly(x, TARGET_SR // g, sr // g)
    n_frames = int(np.ceil(len(x) / FRAME))
    padded = np.pad(x, (0, n_frames * FRAME - len(x)))
    rms = np.sqrt(np.mean(padded.reshape(n_frames, FRAME) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10.0 ** (trim_db / 20.0))
    if loud.size == 0:
        raise RuntimeError("silent clip")
    x = x[loud[0] * FRAME : min(len(x), (loud[-1] + 1) * FRAME)]
    x = x * (PEAK / np.max(np.abs(x)))
    return x[:MAX_SAMPLES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz")
    parser.add_argument("--speakers", type=int, default=60, help="number of speakers")
    parser.add_argument("--takes", type=int, default=1, help="takes per speaker and digit")
    parser.add_argument("--seed", type=int, default=20240613, help="seed for all choices")
    parser.add_argument(
        "--rate",
        type=int,
        nargs=2,
        default=(120, 180),
        metavar=("LO", "HI"),
        help="speaking rate range (espeak-ng -s, words per minute)",
    )
    parser.add_argument(
        "--pitch",
        type=int,
        nargs=2,
        default=(20, 80),
        metavar=("LO", "HI"),
        help="pitch range (espeak-ng -p, 0-99)",
    )
    parser.add_argument(
        "--trim-db",
        type=float,
        default=-50.0,
        help="silence threshold, dB relative to the loudest 10 ms frame",
    )
    parser.add_argument("--jobs", type=int, default=8, help="parallel espeak-ng processes")
    args = parser.parse_args(argv)

    if shutil.which("espeak-ng") is None:
        parser.error("espeak-ng not found; install it (e.g. apt-get install espeak-ng)")
    missing = sorted(set(FEMALE_VARIANTS + MALE_VARIANTS) - installed_variants())
    missing += sorted(set(ACCENTS) - installed_accents())
    if missing:
        parser.error(f"this espeak-ng lacks voices/variants: {', '.join(missing)}")

    version = espeak_version()
    rng = np.random.default_rng(args.seed)
    speakers = choose_speakers(args.speakers, rng)
    jobs = plan_takes(speakers, args.takes, rng, tuple(args.rate), tuple(args.pitch))
    print(f"{version}: {len(speakers)} speakers, {len(jobs)} clips", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        raw = list(pool.map(lambda t: synthesise(t, Path(tmp)), jobs))
    clips = [process(x, sr, args.trim_db) for x, sr in raw]

    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        audio_mulaw=mulaw_encode(np.concatenate(clips)),
        offsets=offsets,
        digit=np.array([t.digit for t in jobs], dtype=np.int64),
        speaker=np.array([t.speaker for t in jobs], dtype=np.int64),
        speaker_names=np.array(speakers, dtype=str),
        rate=np.array([t.rate for t in jobs], dtype=np.int64),
        pitch=np.array([t.pitch for t in jobs], dtype=np.int64),
        sample_rate=np.int64(TARGET_SR),
        espeak_version=np.array(version, dtype=str),
    )
    secs = lengths / TARGET_SR
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): clip length "
        f"min {secs.min():.2f} s, median {np.median(secs):.2f} s, max {secs.max():.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
