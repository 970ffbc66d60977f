"""Audio corruptions for speech, built on audiomentations.

Every corruption is one audiomentations transform (time_mask: one TimeMask per quarter of
the clip) with ``p=1.0`` whose random parameter range is collapsed to a single value per
severity (``min == max``), so audiomentations' draw of the *parameter* is degenerate and
only the corruption's own randomness (the noise waveform, where a mask sits) depends on
the seed. Each corruption is declared once, at the end of this module (`_declare`): its
family, unit, values per severity, how a value reads, the transform built for it, and its
torch port with its fidelity class.

Why these values: docs/corruptions.md ("Audio severity tables"), which gives the reasoning
behind every table and the checks made while choosing them.

Determinism
-----------
audiomentations draws from the global ``random`` and ``np.random`` states. Each call
runs its transform inside ``_seeded_global_rngs``, which saves both states, seeds them
from ``(seed, corruption name)`` and restores them afterwards, under a module lock (so
concurrent threads in this module do not interleave; other code must not use the
global RNGs from another thread meanwhile). The seed does not depend on the severity:
a sample sees the same noise waveform / mask positions at every severity, only scaled.
A spec's draw is therefore the seed for the corruptions that draw (the noises, time_mask);
the other transforms' draws are degenerate or absent, their output depends on no seed,
and their specs draw nothing.
Other RNGs: signalsmith-stretch (pitch_shift, time_stretch) and LAME/minimp3
(mp3_compression) were checked to be deterministic, also across processes.
pyroomacoustics has its own numpy Generator and a C++ engine (used by ray tracing), and
its impulse-response builder sums per-thread blocks; the room impulse response is
therefore computed once per (severity, sample rate) with both pyroomacoustics RNGs
seeded from the severity and one thread, then frozen, so reverb is a fixed linear
filter per severity that does not depend on the seed or on the machine's core count.
pyroomacoustics' numpy Generator is restored afterwards; its C++ engine cannot be
saved and is left seeded.

Outputs are float32 with the input's length. They are not clipped: low-SNR additive
noise can exceed [-1, 1].
"""

from __future__ import annotations

import contextlib
import functools
import operator
import random
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import audiomentations as am
import numpy as np

from corruptions.spec import (
    Fidelity,
    Spec,
    TorchImpl,
    check_severity,
    no_draw,
    sample_by_sample,
    seed_draw,
)

BACKEND = f"audiomentations=={am.__version__}"

FILTER_ROLLOFF_DB_PER_OCTAVE = 24
TIME_MASK_COUNT = 4
TIME_MASK_FADE_S = 0.002
# AddColorNoise shapes white noise with an n_fft-point random-phase FIR; these sizes give
# the nominal slope with the least seed-to-seed spread of the speech-band noise power.
COLOR_NOISE_N_FFT = {"pink_noise": 2048, "brown_noise": 256}
ROOM_MAX_ORDER = 3  # image-source order; ray tracing models the rest of the tail
# RT60 of each severity's simulated room at 16 kHz (measured, for the table; tested).
REVERB_RT60_S = (0.16, 0.34, 0.65, 0.98, 1.60)

_LOCK = threading.RLock()
_TRANSFORMS: dict[tuple[str, int, int], Any] = {}


# ---------------------------------------------------------------------------------------
# RNG handling


def _derive_seed(name: str, seed: int) -> int:
    """A 32-bit seed for `random` / `np.random` from the caller's seed and the name."""
    entropy = [operator.index(seed) & (2**64 - 1), zlib.crc32(name.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])


@contextlib.contextmanager
def _seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed the global `random` and `np.random` from `seed`; restore both afterwards."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        random.seed(seed)
        np.random.seed(seed)
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextlib.contextmanager
def _seeded_pyroomacoustics(seed: int) -> Iterator[None]:
    """Seed both pyroomacoustics RNGs and use one thread (bit-reproducible impulse
    responses); restore its numpy Generator and thread count afterwards."""
    import pyroomacoustics as pra
    from pyroomacoustics.random import generator as pra_generator

    saved_rng = pra_generator._rng
    saved_threads = pra.constants.get("num_threads")
    try:
        pra.constants.set("num_threads", 1)
        pra.random.seed(numpy=seed, libroom=seed)
        yield
    finally:
        pra_generator._rng = saved_rng
        pra.constants.set("num_threads", saved_threads)


# ---------------------------------------------------------------------------------------
# Transform builders: one object per (name, severity[, sample rate]), cached.


def _band_stop(value: tuple[float, float, float]) -> am.BandStopFilter:
    low, high, _ = value
    centre = (low + high) / 2
    fraction = (high - low) / centre
    return am.BandStopFilter(
        min_center_freq=centre,
        max_center_freq=centre,
        min_bandwidth_fraction=fraction,
        max_bandwidth_fraction=fraction,
        min_rolloff=FILTER_ROLLOFF_DB_PER_OCTAVE,
        max_rolloff=FILTER_ROLLOFF_DB_PER_OCTAVE,
        zero_phase=False,
        p=1.0,
    )


def _color_noise(snr: float, f_decay: float, n_fft: int) -> am.AddColorNoise:
    return am.AddColorNoise(
        min_snr_db=snr,
        max_snr_db=snr,
        min_f_decay=f_decay,
        max_f_decay=f_decay,
        p_apply_a_weighting=0.0,
        n_fft=n_fft,
        p=1.0,
    )


def _room(value: Any, severity: int, sample_rate: int) -> am.RoomSimulator:
    (size_x, size_y, size_z), absorption, distance = value
    # Source off-centre (avoids symmetric flutter), 1.5 m high; the microphone is
    # `distance` away along -x at the same height (azimuth pi/2, elevation 0).
    source = (0.6 * size_x, 0.45 * size_y, 1.5)
    transform = am.RoomSimulator(
        min_size_x=size_x,
        max_size_x=size_x,
        min_size_y=size_y,
        max_size_y=size_y,
        min_size_z=size_z,
        max_size_z=size_z,
        min_absorption_value=absorption,
        max_absorption_value=absorption,
        min_source_x=source[0],
        max_source_x=source[0],
        min_source_y=source[1],
        max_source_y=source[1],
        min_source_z=source[2],
        max_source_z=source[2],
        min_mic_distance=distance,
        max_mic_distance=distance,
        min_mic_azimuth=np.pi / 2,
        max_mic_azimuth=np.pi / 2,
        min_mic_elevation=0.0,
        max_mic_elevation=0.0,
        calculation_mode="absorption",
        use_ray_tracing=True,
        max_order=ROOM_MAX_ORDER,
        leave_length_unchanged=True,
        p=1.0,
    )
    # The room (and its impulse response) is built in randomize_parameters; do it once
    # with fixed seeds, then freeze so that later calls only convolve.
    rir_seed = 1000 + severity
    with _seeded_pyroomacoustics(rir_seed), _seeded_global_rngs(rir_seed):
        transform.randomize_parameters(np.zeros(16, dtype=np.float32), sample_rate)
    transform.freeze_parameters()
    rir = np.asarray(transform.room.rir[0][0], dtype=np.float64)
    transform.room.rir[0][0] = rir / np.sqrt(np.sum(rir**2))
    return transform


def _time_mask(transform: am.TimeMask, x: np.ndarray, sample_rate: int, value: float
               ) -> np.ndarray:
    """One mask of the table's fraction inside each of TIME_MASK_COUNT equal parts."""
    out = x.copy()
    bounds = np.linspace(0, len(x), TIME_MASK_COUNT + 1).round().astype(int)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if stop > start:
            out[start:stop] = transform(x[start:stop].copy(), sample_rate)
    return out


def _finite_notch(transform: am.BandStopFilter, x: np.ndarray, sample_rate: int,
                  value: tuple[float, float, float]) -> np.ndarray:
    """A notch of finite depth: g x + (1 - g) bandstop(x), g = 10^(-depth / 20). In the stop
    band the filtered part vanishes and g x is left (depth dB down); in the pass band
    bandstop(x) ~ x. A Butterworth band-stop alone is infinitely deep at its centre, which
    leaves log-spectral features of empty bands that no recording has."""
    g = 10.0 ** (-value[2] / 20.0)
    return g * x + (1.0 - g) * transform(x.copy(), sample_rate)


def _mp3(transform: am.Mp3Compression, x: np.ndarray, sample_rate: int, value: int
         ) -> np.ndarray:
    """fast-mp3-augment refuses clips under 100 ms: pad those with silence, then crop."""
    min_len = -(-sample_rate // 10)
    if len(x) >= min_len:
        return transform(x.copy(), sample_rate)
    padded = np.zeros(min_len, dtype=np.float32)
    padded[: len(x)] = x
    return transform(padded, sample_rate)[: len(x)]


# ---------------------------------------------------------------------------------------
# The corruptions


def _check_input(sample: np.ndarray) -> np.ndarray:
    x = np.asarray(sample)
    if x.ndim != 1:
        raise ValueError(f"audio samples must be 1-D (T,), got shape {x.shape}")
    if x.dtype != np.float32:
        raise ValueError(f"audio samples must be float32, got {x.dtype}")
    return np.ascontiguousarray(x)


def _plain(transform: Any, x: np.ndarray, sample_rate: int, value: Any) -> np.ndarray:
    return transform(x.copy(), sample_rate)


Build = Callable[[Any, int, int], Any]  # (severity's value, severity, sample rate) -> transform
Run = Callable[[Any, np.ndarray, int, Any], np.ndarray]  # (transform, clip, rate, value)


# name -> (its value per severity, how its transform is built, how a clip goes through it)
_DECLARED: dict[str, tuple[tuple, Build, Run]] = {}


def reference(name: str, sample: np.ndarray, severity: int, seed: int,
              sample_rate: int) -> np.ndarray:
    """Corruption `name` of one float32 clip (T,) at `sample_rate`, its randomness from
    `seed`: the reference backend's per-sample function (`functools.partial(reference,
    name)` is a spec's `reference`)."""
    check_severity(severity)
    x = _check_input(sample)
    sample_rate = operator.index(sample_rate)
    if len(x) == 0:
        return x.copy()
    values, build, run = _DECLARED[name]
    value = values[severity - 1]
    with _LOCK:
        key = (name, severity, sample_rate)  # built once, then cached
        if key not in _TRANSFORMS:
            _TRANSFORMS[key] = build(value, severity, sample_rate)
        with _seeded_global_rngs(_derive_seed(name, seed)):
            y = run(_TRANSFORMS[key], x, sample_rate, value)
    y = np.asarray(y, dtype=np.float32)
    if y.shape != x.shape:  # every transform is configured to keep the length
        raise RuntimeError(f"{name} changed the shape {x.shape} -> {y.shape}")
    return y


def prepare(clips: np.ndarray, sample_rate: int | None = None, **options
            ) -> tuple[int, dict[str, int | None]]:
    """The `prepare` of the audio corruptions: a batch's number of clips and its context,
    the sample rate."""
    return len(clips), {"sample_rate": sample_rate}


RANDOMNESS = ("seed: audiomentations draws inside its call, from `random` and `np.random` "
              "seeded from it and the name; the torch port from a torch.Generator seeded "
              "with it")


def _declare(name: str, family: str, unit: str, values: tuple, describe: Callable[[Any], str],
             build: Build, fidelity: Fidelity, note: str = "", run: Run = _plain,
             random: bool = False) -> Spec:
    """One audio corruption's spec: its audiomentations transform per severity (`build`,
    called once per severity and sample rate), how a clip goes through it (`run`), its
    table in words, its torch port, and whether it draws (`random`: a noise waveform or
    where masks sit; the others' transforms draw nothing that changes their output)."""
    _DECLARED[name] = (values, build, run)
    function = functools.partial(reference, name)
    return Spec(
        name=name, kind="audio", family=family, backend=BACKEND,
        draw=seed_draw if random else no_draw, apply=sample_by_sample(function),
        prepare=prepare, reference=function, randomness=RANDOMNESS if random else "",
        severity_table=tuple(describe(v) for v in values),
        torch=TorchImpl("corruptions.torch_audio", name, fidelity, note=note), unit=unit,
        values=values)


def _snr(value: float) -> str:
    return f"SNR {value:g} dB"


def _collapsed(cls: type, parameter: str, **fixed: Any) -> Build:
    """An audiomentations transform whose range (min_<parameter>, max_<parameter>) is the
    severity's one value."""
    return lambda v, severity, rate: cls(**{f"min_{parameter}": v, f"max_{parameter}": v},
                                         **fixed, p=1.0)


_ROLLOFF = {"min_rolloff": FILTER_ROLLOFF_DB_PER_OCTAVE,
            "max_rolloff": FILTER_ROLLOFF_DB_PER_OCTAVE}
REVERB_VALUES = (
    # ((room x, y, z) in m, wall energy absorption, source-microphone distance in m)
    ((4.0, 3.5, 2.7), 0.45, 0.5),
    ((5.0, 4.0, 3.0), 0.30, 1.0),
    ((7.0, 5.0, 3.0), 0.22, 1.5),
    ((9.0, 6.0, 3.5), 0.18, 2.0),
    ((12.0, 8.0, 4.0), 0.16, 3.0),
)


def _describe_room(value: Any) -> str:
    (x, y, z), absorption, distance = value
    rt60 = REVERB_RT60_S[REVERB_VALUES.index(value)]
    return (f"room {x:g}x{y:g}x{z:g} m, absorption {absorption:g}, mic {distance:g} m "
            f"(RT60 {rt60:g} s)")


EXACT, SAME, REFERENCE = Fidelity.EXACT, Fidelity.SAME_ALGORITHM, Fidelity.REFERENCE
LINEAR = ("measured once as the reference's response to an impulse, then one FFT "
          "convolution; the filter's steady-state start included")
SPECS: tuple[Spec, ...] = (
    _declare("gaussian_noise", "noise", "SNR dB (white Gaussian)",
             (20.0, 10.0, 5.0, 0.0, -5.0), _snr,
             lambda v, severity, rate: am.AddGaussianSNR(min_snr_db=v, max_snr_db=v, p=1.0),
             SAME, random=True),
    _declare("pink_noise", "noise", "SNR dB (pink, -3 dB/octave)",
             (20.0, 10.0, 5.0, 0.0, -5.0), _snr,
             lambda v, severity, rate: _color_noise(v, -10 * np.log10(2),
                                                    COLOR_NOISE_N_FFT["pink_noise"]),
             SAME, "random-phase FIR", random=True),
    _declare("brown_noise", "noise", "SNR dB (brown, -6 dB/octave)",
             (10.0, 0.0, -5.0, -10.0, -15.0), _snr,
             lambda v, severity, rate: _color_noise(v, -20 * np.log10(2),
                                                    COLOR_NOISE_N_FFT["brown_noise"]),
             SAME, "random-phase FIR", random=True),
    _declare("pitch_shift", "pitch_time", "semitones up", (1.0, 2.0, 4.0, 7.0, 12.0),
             lambda v: f"{v:+g} semitones",
             lambda v, severity, rate: am.PitchShift(
                 min_semitones=v, max_semitones=v, method="signalsmith_stretch", p=1.0),
             REFERENCE, "signalsmith-stretch"),
    _declare("time_stretch", "pitch_time", "speed-up rate (length kept)",
             (1.1, 1.2, 1.4, 1.7, 2.0), lambda v: f"rate {v:g}x",
             lambda v, severity, rate: am.TimeStretch(
                 min_rate=v, max_rate=v, leave_length_unchanged=True,
                 method="signalsmith_stretch", p=1.0),
             REFERENCE, "signalsmith-stretch"),
    _declare("clipping", "distortion", "percent of samples clipped", (4, 8, 14, 22, 30),
             lambda v: f"{v}% of samples clipped",
             _collapsed(am.ClippingDistortion, "percentile_threshold"), EXACT),
    _declare("mp3_compression", "distortion", "kbps", (64, 32, 24, 16, 8),
             lambda v: f"{v} kbps",
             _collapsed(am.Mp3Compression, "bitrate", backend="fast-mp3-augment",
                        preserve_delay=False),
             REFERENCE, "LAME", run=_mp3),
    _declare("low_pass", "filter", "cutoff Hz (24 dB/octave)",
             (4000.0, 2000.0, 1000.0, 500.0, 250.0), lambda v: f"cutoff {v:g} Hz",
             _collapsed(am.LowPassFilter, "cutoff_freq", **_ROLLOFF, zero_phase=False),
             EXACT, LINEAR),
    # (low Hz, high Hz, depth dB): a notch around 1 kHz that widens and deepens
    _declare("band_stop", "filter", "stop band Hz (24 dB/octave), attenuation dB",
             ((841.0, 1189.0, 12.0), (707.0, 1414.0, 18.0), (500.0, 2000.0, 24.0),
              (354.0, 2828.0, 30.0), (250.0, 4000.0, 40.0)),
             lambda v: f"stop {v[0]:g}-{v[1]:g} Hz by {v[2]:g} dB",
             lambda v, severity, rate: _band_stop(v), EXACT, LINEAR, run=_finite_notch),
    _declare("time_mask", "dropout", "fraction of the clip silenced (4 masks)",
             (0.05, 0.10, 0.20, 0.35, 0.50),
             lambda v: f"{v:.0%} masked ({TIME_MASK_COUNT} masks)",
             lambda v, severity, rate: am.TimeMask(
                 min_band_part=v, max_band_part=v, fade_duration=TIME_MASK_FADE_S, p=1.0),
             SAME, run=_time_mask, random=True),
    _declare("reverb", "room", "room m, absorption, mic distance m", REVERB_VALUES,
             _describe_room, _room, EXACT, LINEAR),
)
CORRUPTIONS: dict[str, Spec] = {c.name: c for c in SPECS}
