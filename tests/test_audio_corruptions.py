"""Tests of corruptions.audio: the audiomentations-based speech corruptions.

The test signal is synthetic and built here (no data files): a 1 s, 16 kHz vowel-like
harmonic signal (f0 ~120 Hz with vibrato, four formants) under an amplitude envelope, with
leading and trailing silence and a faint noise floor, peak 0.5.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import random
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from scipy.signal import stft

from corruptions import audio, registry, torch_audio

SR = 16_000
SEVERITIES = (1, 2, 3, 4, 5)
NAMES = list(audio.CORRUPTIONS)
VALUES = {name: c.values for name, c in audio.CORRUPTIONS.items()}
REQUIRED = {
    "gaussian_noise", "pink_noise", "brown_noise", "pitch_shift", "time_stretch", "clipping",
    "mp3_compression", "low_pass", "band_stop", "time_mask", "reverb",
}
SEEDED = {"gaussian_noise", "pink_noise", "brown_noise", "time_mask"}  # use the seed
FIXED = set(NAMES) - SEEDED  # a fixed transform per severity: the seed must not matter


def vowel(n: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    formants = ((700, 130), (1220, 70), (2600, 160), (3300, 200))
    x = np.zeros(n)
    for k in range(1, 40):
        fk = k * f0
        amp = sum(np.exp(-0.5 * ((fk - f) / b) ** 2) for f, b in formants) + 0.05
        x += amp / np.sqrt(k) * (fk < 0.95 * SR / 2) * np.sin(k * phase)
    env = np.zeros(n)
    a, b = int(0.2 * n), int(0.75 * n)
    env[a:b] = np.sin(np.linspace(0, np.pi, b - a)) ** 0.5
    x = x * env + 0.003 * rng.standard_normal(n)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


X = vowel()
X_ORIG = X.copy()


def corrupt(name: str, x: np.ndarray, severity: int, seed: int = 0) -> np.ndarray:
    return audio.CORRUPTIONS[name](x, severity, seed, sample_rate=SR)


def band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    f = np.fft.rfftfreq(len(x), 1 / SR)
    p = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    return float(p[(f >= lo) & (f < hi)].sum())


def band_gain_db(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    return 10 * np.log10(band_energy(y, lo, hi) / band_energy(x, lo, hi))


def spectral_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute log-spectrogram difference in dB, floored 60 dB below x's peak."""
    px = np.abs(stft(x, fs=SR, nperseg=512, noverlap=384)[2]) ** 2
    py = np.abs(stft(y, fs=SR, nperseg=512, noverlap=384)[2]) ** 2
    floor = 1e-6 * px.max()
    return float(np.mean(np.abs(10 * np.log10(px + floor) - 10 * np.log10(py + floor))))


@pytest.fixture(scope="module")
def outputs() -> dict[tuple[str, int], np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no transform may warn on float32 mono input
        return {(n, s): corrupt(n, X, s) for n in NAMES for s in SEVERITIES}


# ---------------------------------------------------------------------------------------
# registration and tables


def test_registered():
    assert set(NAMES) == REQUIRED
    version = importlib.metadata.version("audiomentations")
    for name in NAMES:
        c = audio.CORRUPTIONS[name]
        assert registry.get(name, "audio") is c
        assert (c.name, c.kind) == (name, "audio") and c.family and c.unit
        assert c.backend == f"audiomentations=={version}"
        assert len(c.severity_table) == 5 and all(isinstance(r, str) for r in c.severity_table)
        assert len(set(c.severity_table)) == 5 and len(c.values) == 5
        assert registry.load(c.torch.module, c.torch.function) is getattr(torch_audio, name)


def test_registry_lookup():
    pytest.importorskip("corruptions.image")  # registry.get loads every built-in module
    assert set(registry.names("audio")) == REQUIRED
    assert registry.get("reverb", "audio") is audio.CORRUPTIONS["reverb"]


def _strictly(values, increasing: bool) -> bool:
    d = np.diff(np.asarray(values, dtype=float))
    return bool(np.all(d > 0) if increasing else np.all(d < 0))


def test_tables_are_monotone():
    t = VALUES
    for name in ("gaussian_noise", "pink_noise", "brown_noise", "mp3_compression", "low_pass"):
        assert _strictly(t[name], increasing=False), name
    for name in ("pitch_shift", "time_stretch", "clipping", "time_mask"):
        assert _strictly(t[name], increasing=True), name
    assert all(v > 1 for v in t["time_stretch"])  # speed-up: nothing is cropped
    assert all(v % 2 == 0 for v in t["clipping"])  # ClippingDistortion uses int(p / 2)
    assert set(t["mp3_compression"]) <= set(audio.am.Mp3Compression.SUPPORTED_BITRATES)
    # band_stop: nested, widening and deepening stop bands
    lows, highs, depths = zip(*t["band_stop"], strict=True)
    assert _strictly(lows, increasing=False) and _strictly(highs, increasing=True)
    assert _strictly(depths, increasing=True)
    # reverb: bigger rooms, less absorption, microphone further away
    rooms, absorption, distance = zip(*t["reverb"], strict=True)
    assert _strictly([np.prod(r) for r in rooms], increasing=True)
    assert _strictly(absorption, increasing=False)
    assert _strictly(distance, increasing=True)


# ---------------------------------------------------------------------------------------
# the contract, for every corruption x severity


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", NAMES)
def test_contract(outputs, name, severity):
    y = outputs[name, severity]
    assert isinstance(y, np.ndarray)
    assert y.dtype == np.float32 and y.shape == X.shape
    assert np.all(np.isfinite(y))
    assert not np.array_equal(y, X)
    assert np.array_equal(X, X_ORIG), "the input was modified in place"


@pytest.mark.parametrize("name", NAMES)
def test_spectral_distance_grows_with_severity(outputs, name):
    d = [spectral_distance(X, outputs[name, s]) for s in SEVERITIES]
    assert np.all(np.diff(d) > 0), d
    assert d[4] > d[0]


@pytest.mark.parametrize("name", ["gaussian_noise", "pink_noise", "brown_noise", "clipping",
                                  "mp3_compression", "time_mask"])
def test_mean_absolute_change_grows_with_severity(outputs, name):
    # Not for pitch/time/filters/reverb: their phase changes swamp the waveform difference.
    mad = [np.mean(np.abs(outputs[name, s] - X)) for s in SEVERITIES]
    assert np.all(np.diff(mad) > 0), mad


# ---------------------------------------------------------------------------------------
# determinism


def _disturb_global_rngs():
    random.seed(12345)
    np.random.seed(54321)
    random.random()
    np.random.standard_normal(17)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name):
    for severity in (1, 5):
        first = corrupt(name, X, severity, seed=7)
        _disturb_global_rngs()
        for other in NAMES:  # other corruptions, severities and seeds in between
            corrupt(other, X, 3, seed=99)
        np.random.standard_normal(3)
        random.random()
        again = corrupt(name, X, severity, seed=7)
        assert np.array_equal(first, again)


def test_global_rng_state_is_restored():
    _disturb_global_rngs()
    py_state, np_state = random.getstate(), np.random.get_state()
    for name in NAMES:
        corrupt(name, X, 2, seed=3)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_seed_changes_output(name):
    a, b = corrupt(name, X, 3, seed=1), corrupt(name, X, 3, seed=2)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_transforms_ignore_the_seed(name):
    assert np.array_equal(corrupt(name, X, 4, seed=1), corrupt(name, X, 4, seed=2**40 + 5))


def test_same_noise_realisation_across_severities():
    # The seed does not depend on the severity: the noise is the same waveform, rescaled.
    n1 = corrupt("gaussian_noise", X, 1, seed=5) - X
    n5 = corrupt("gaussian_noise", X, 5, seed=5) - X
    assert np.corrcoef(n1, n5)[0, 1] > 0.99


def test_deterministic_across_processes(tmp_path):
    """Catches RNGs seeded from OS entropy (e.g. in compiled extensions) and hash seeds."""
    np.save(tmp_path / "x.npy", X)
    code = (
        "import json, sys, hashlib, numpy as np\n"
        "from corruptions import audio\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "print(json.dumps({n: hashlib.sha256(c(x, 3, 11, sample_rate=16000).tobytes())"
        ".hexdigest() for n, c in audio.CORRUPTIONS.items()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    ours = {n: hashlib.sha256(corrupt(n, X, 3, 11).tobytes()).hexdigest() for n in NAMES}
    assert theirs == ours


def test_thread_safe():
    jobs = [(n, s, seed) for n in NAMES for s in (2, 5) for seed in (0, 1)]
    expected = {job: corrupt(job[0], X, job[1], job[2]) for job in jobs}
    results: dict = {}

    def work(chunk):
        for job in chunk:
            results[job] = corrupt(job[0], X, job[1], job[2])

    threads = [threading.Thread(target=work, args=(jobs[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[job], expected[job]) for job in jobs)


# ---------------------------------------------------------------------------------------
# what each corruption does


@pytest.mark.parametrize("name", ["gaussian_noise", "pink_noise", "brown_noise"])
def test_noise_snr_matches_table(outputs, name):
    for severity, snr in zip(SEVERITIES, VALUES[name], strict=True):
        noise = outputs[name, severity].astype(np.float64) - X
        measured = 10 * np.log10(np.sum(X.astype(np.float64) ** 2) / np.sum(noise**2))
        assert abs(measured - snr) < 0.5, (severity, snr, measured)


def test_noise_colours(outputs):
    def low_share(name):  # share of the added noise's power below 500 Hz
        noise = outputs[name, 3] - X
        return band_energy(noise, 0, 500) / band_energy(noise, 0, SR / 2)

    white, pink, brown = (low_share(n) for n in ("gaussian_noise", "pink_noise", "brown_noise"))
    assert white < 0.1 < pink < brown
    noise = outputs["pink_noise", 3] - X  # ~ -3 dB/octave: 3 octaves from 250-500 Hz
    per_hz_lo = band_energy(noise, 250, 500) / 250
    per_hz_hi = band_energy(noise, 2000, 4000) / 2000
    slope = 10 * np.log10(per_hz_hi / per_hz_lo) / 3
    assert -4.5 < slope < -1.5, slope


def test_low_pass_removes_energy_above_cutoff(outputs):
    for severity, cutoff in zip(SEVERITIES, VALUES["low_pass"], strict=True):
        y = outputs["low_pass", severity]
        assert band_gain_db(X, y, 1.5 * cutoff, SR / 2) < -15, cutoff
        assert band_gain_db(X, y, cutoff, SR / 2) < -5, cutoff
        assert abs(band_gain_db(X, y, 0, cutoff / 2)) < 1, cutoff


def test_band_stop_attenuates_the_band_by_its_depth_only(outputs):
    for severity, (lo, hi, depth) in zip(SEVERITIES, VALUES["band_stop"],
                                         strict=True):
        y = outputs["band_stop", severity]
        centre, quarter = np.sqrt(lo * hi), (hi / lo) ** 0.25
        # in the middle half of the band (in octaves): depth dB down, within 4 dB
        gain = band_gain_db(X, y, centre / quarter, centre * quarter)
        assert -depth - 4 < gain < -depth + 4, (lo, hi, depth, gain)
        assert abs(band_gain_db(X, y, 0, lo / 2)) < 1, (lo, hi)
        assert abs(band_gain_db(X, y, min(2 * hi, 7000), SR / 2)) < 1, (lo, hi)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_time_mask_fraction(seed):
    quarters = np.array_split(np.arange(len(X)), audio.TIME_MASK_COUNT)
    fade = int(round(audio.TIME_MASK_FADE_S * SR))
    for severity, fraction in zip(SEVERITIES, VALUES["time_mask"], strict=True):
        y = corrupt("time_mask", X, severity, seed)
        changed, zero = y != X, y == 0
        assert abs(changed.mean() - fraction) < 0.005, (fraction, changed.mean())
        assert fraction - 2 * fade * audio.TIME_MASK_COUNT / len(X) - 0.002 < zero.mean()
        assert zero.mean() <= fraction
        for q in quarters:  # one contiguous mask per quarter
            idx = q[changed[q]]
            assert len(idx) > 0 and idx[-1] - idx[0] + 1 == len(idx)
            assert abs(len(idx) / len(q) - fraction) < 0.005


def test_time_mask_position_depends_on_seed():
    masks = [corrupt("time_mask", X, 3, seed) == 0 for seed in range(4)]
    assert len({m.tobytes() for m in masks}) == 4


def test_time_stretch_speeds_up_and_zero_pads(outputs):
    for severity, rate in zip(SEVERITIES, VALUES["time_stretch"], strict=True):
        y = outputs["time_stretch", severity]
        end = int(np.ceil(len(X) / rate))
        assert np.all(y[end:] == 0) and np.any(y[end - 100:end] != 0), rate


def test_pitch_shift_moves_f0_up(outputs):
    seg = slice(int(0.35 * SR), int(0.6 * SR))  # voiced middle, f0 120-140 Hz

    def f0(x):  # autocorrelation peak between 50 and 500 Hz
        s = x[seg].astype(np.float64)
        ac = np.correlate(s, s, "full")[len(s) - 1:]
        lag_min, lag_max = SR // 500, SR // 50
        return SR / (lag_min + np.argmax(ac[lag_min:lag_max]))

    base = f0(X)
    for severity, semitones in zip(SEVERITIES, VALUES["pitch_shift"],
                                   strict=True):
        ratio = f0(outputs["pitch_shift", severity]) / base
        assert abs(12 * np.log2(ratio) - semitones) < 0.75, (semitones, ratio)


def test_clipping_clips_the_table_share(outputs):
    for severity, percent in zip(SEVERITIES, VALUES["clipping"], strict=True):
        y = outputs["clipping", severity]
        clipped = np.mean((y == y.max()) | (y == y.min()))
        assert abs(clipped - percent / 100) < 0.01, (percent, clipped)
        assert np.ptp(y) > 0  # never collapses to a constant


def test_mp3_lowers_quality_and_keeps_timing(outputs):
    sdr = []
    for severity in SEVERITIES:
        y = outputs["mp3_compression", severity].astype(np.float64)
        sdr.append(10 * np.log10(np.sum(X.astype(np.float64) ** 2) / np.sum((y - X) ** 2)))
    assert np.all(np.diff(sdr) < 0) and sdr[0] > 15, sdr  # delay-compensated: high SDR


@pytest.mark.parametrize("n", [1, 100, 1599, 1600])
def test_short_clips(n):
    x = vowel(n)
    for name in NAMES:
        for severity in (1, 5):
            y = corrupt(name, x, severity)
            assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))


def test_reverb_keeps_level_and_adds_a_growing_tail(outputs):
    tail = slice(int(0.8 * SR), None)  # after the vowel has ended
    energies = []
    for severity in SEVERITIES:
        y = outputs["reverb", severity]
        level_db = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(X**2.0))
        assert abs(level_db) < 1.5, (severity, level_db)
        energies.append(np.mean(y[tail].astype(np.float64) ** 2))
    assert np.all(np.diff(energies) > 0), energies


def test_reverb_rt60_matches_table():
    import pyroomacoustics as pra

    for severity, rt60 in zip(SEVERITIES, audio.REVERB_RT60_S, strict=True):
        corrupt("reverb", X, severity)  # builds the cached transform
        rir = audio._TRANSFORMS["reverb", severity, SR].room.rir[0][0]
        assert np.sum(rir**2) == pytest.approx(1.0)  # unit energy
        assert pra.experimental.measure_rt60(rir, fs=SR) == pytest.approx(rt60, rel=0.05)


def test_reverb_leaves_pyroomacoustics_state_alone():
    import pyroomacoustics as pra
    from pyroomacoustics.random import generator

    rng_before = generator._rng
    threads_before = pra.constants.get("num_threads")
    state_before = None if rng_before is None else rng_before.bit_generator.state
    y = audio.CORRUPTIONS["reverb"](vowel(8000), 2, 0, sample_rate=8000)  # a new RIR
    assert y.shape == (8000,) and np.all(np.isfinite(y))
    assert generator._rng is rng_before and pra.constants.get("num_threads") == threads_before
    if rng_before is not None:
        assert rng_before.bit_generator.state == state_before


# ---------------------------------------------------------------------------------------
# input checks


def test_bad_inputs():
    c = audio.CORRUPTIONS["gaussian_noise"]
    with pytest.raises(ValueError):
        c(X.astype(np.float64), 1, 0, sample_rate=SR)
    with pytest.raises(ValueError):
        c(np.stack([X, X]), 1, 0, sample_rate=SR)
    with pytest.raises(ValueError):
        c(X, 6, 0, sample_rate=SR)
    with pytest.raises(ValueError):
        c.reference(X, 0, 0, sample_rate=SR)
    with pytest.raises(TypeError):
        c(X, 1, 0)  # the sample rate is required
    assert c(np.zeros(0, np.float32), 1, 0, sample_rate=SR).shape == (0,)
    # any integer seed works: negative, beyond 64 bits, numpy integers
    for seed in (-1, 2**70 + 3, np.uint32(4)):
        assert np.array_equal(c(X, 2, seed, sample_rate=SR), c(X, 2, seed, sample_rate=SR))
    with pytest.raises(TypeError):
        c(X, 2, 1.5, sample_rate=SR)
