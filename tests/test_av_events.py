"""Tests of corruptions.av_events: co-occurring audio-visual corruptions, through the one
entry point (`corruptions.backends.corrupt`).

Inputs are synthetic and built here: a textured colour image (sinusoidal gratings plus
noise, so blurs and JPEG have something to act on), and audio made of tones plus a little
noise at 16 kHz.
"""

from __future__ import annotations

import dataclasses
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from corruptions import av_events as av
from corruptions import registry
from corruptions.backends import corrupt

SR = 16_000
SEVERITIES = (1, 2, 3, 4, 5)
REQUIRED = {"rain", "wind", "crowd", "underwater", "fire", "interference", "compression",
            "sensor_noise"}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "av-events.md"


def texture(h: int = 48, w: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    chans = [128 + 60 * np.sin(xx / (3 + k) + seed) + 40 * np.cos(yy / (4 + k)) for k in range(3)]
    img = np.stack(chans, -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def tones(n: int, length: int = SR // 2, seed: int = 0, amp: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length) / SR
    out = [amp * np.sin(2 * np.pi * (150 + 40 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
           + 0.3 * amp * rng.standard_normal(length) for i in range(n)]
    return np.asarray(out, dtype=np.float32)


N = 4
IMAGES = np.stack([texture(seed=i) for i in range(N)])
AUDIO = tones(N)
POOL = list(tones(6, seed=1)) + list(AUDIO)  # the split: others plus the samples themselves
SEEDS = [11, 22, 33, 44]


def per_sample(drawn: dict[str, list]) -> list[dict]:
    """Columns of drawn parameters as one dict per sample."""
    return [dict(zip(drawn, values, strict=True)) for values in zip(*drawn.values(), strict=True)]


def apply_event(name, images, audio, severity, seeds, sample_rate=None, backend="reference",
                **kw):
    """Event `name` on (images, audio): (images, audio, each sample's drawn parameters)."""
    (images, audio), drawn = corrupt((images, audio), name, severity, seeds, backend,
                                     kind="av", sample_rate=sample_rate, **kw)
    return images, audio, per_sample(drawn)


def run(name, images=IMAGES, audio=AUDIO, severity=3, seeds=SEEDS, **kw):
    kw.setdefault("pool", POOL)
    return apply_event(name, images, audio, severity, seeds, SR, **kw)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean = clean.astype(np.float64)
    return 10 * math.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2))


# ------------------------------------------------------------------------- declarations

def test_required_events_declared_in_one_frozen_object():
    assert REQUIRED <= set(av.EVENTS)
    for name, event in av.EVENTS.items():
        assert event.name == name and event.description
        assert len(event.image_params) == len(event.audio_params) == 5
        # every severity declares the same parameters
        assert all(p.keys() == event.image_params[0].keys() for p in event.image_params)
        assert all(p.keys() == event.audio_params[0].keys() for p in event.audio_params)
        assert event.has_bed == ("snr_db" in event.audio_params[0] or event.bed_kind == "pool")
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.name = "x"
        with pytest.raises(TypeError):
            event.image_params[0]["x"] = 1  # read-only
        # declared as a spec of kind "av", whose parameters are the event's
        spec = registry.get(name, "av")
        assert (spec.kind, spec.description, spec.backend) == ("av", event.description,
                                                                av.BACKEND)
        assert [(v["image"], v["audio"]) for v in spec.values] == list(
            zip(event.image_params, event.audio_params, strict=True))
    assert registry.names("av") == list(av.EVENTS)


def test_docs_table_matches_the_declarations():
    text = DOCS.read_text()
    for name in av.EVENTS:
        assert f"### {name}" in text, name
        assert av.markdown_table(name) in text, f"docs/av-events.md table of {name} is stale"


def test_corruptions_package_does_not_import_rambench():
    code = ("import sys, corruptions.av_events, corruptions.backends; "
            "from corruptions import registry; registry.all_corruptions(); "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'rambench']")
    subprocess.run([sys.executable, "-c", code], check=True)


# -------------------------------------------------------------------------- determinism

@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_deterministic_and_independent_of_batch(name):
    images, audio, details = run(name)
    again = run(name)
    np.testing.assert_array_equal(images, again[0])
    np.testing.assert_array_equal(audio, again[1])
    assert details == again[2]
    # reversed batch, single samples, and a shuffled pool give the same per-sample output
    order = [3, 1, 0, 2]
    rev = run(name, images=IMAGES[order], audio=AUDIO[order], seeds=[SEEDS[i] for i in order],
              pool=POOL[::-1])
    np.testing.assert_array_equal(rev[0], images[order])
    np.testing.assert_array_equal(rev[1], audio[order])
    one = run(name, images=IMAGES[2:3], audio=AUDIO[2:3], seeds=[SEEDS[2]])
    np.testing.assert_array_equal(one[0][0], images[2])
    np.testing.assert_array_equal(one[1][0], audio[2])
    # the seed matters for the seeded sides
    other = run(name, seeds=[s + 1 for s in SEEDS])
    if name != "compression":  # compression is deterministic on both sides
        assert not (np.array_equal(other[0], images) and np.array_equal(other[1], audio))


def test_no_global_rng_use():
    state = np.random.get_state()
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    run("rain")
    run("interference")
    assert np.random.random() == expected
    np.random.set_state(state)


# ----------------------------------------------------------------------- shapes, dtypes

@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("layout", ["still-rgb", "still-gray", "clip-rgb", "clip-gray"])
def test_shapes_and_dtypes_preserved(name, layout):
    images = np.stack([texture(40, 56, seed=i) for i in range(2)])
    if layout.endswith("gray"):
        images = images[..., :1].copy()
    if layout.startswith("clip"):
        images = np.stack([images, np.roll(images, 3, axis=2), images[:, ::-1]], axis=1)
    audio = tones(2, length=3001)
    before = images.copy(), audio.copy()
    out_i, out_a, details = apply_event(name, images, audio, 5, [1, 2], SR, pool=POOL)
    assert out_i.shape == images.shape and out_i.dtype == np.uint8
    assert out_a.shape == audio.shape and out_a.dtype == np.float32
    assert np.all(np.isfinite(out_a)) and np.abs(out_a).max() <= 1.0
    assert len(details) == 2 and [d["seed"] for d in details] == [1, 2]
    assert not np.array_equal(out_i, images)
    np.testing.assert_array_equal(images, before[0])  # inputs untouched
    np.testing.assert_array_equal(audio, before[1])


def test_one_side_only():
    images, audio, _ = apply_event("rain", IMAGES, None, 2, SEEDS)
    assert audio is None and images.shape == IMAGES.shape
    both, _, _ = apply_event("rain", IMAGES, AUDIO, 2, SEEDS, SR)
    np.testing.assert_array_equal(images, both)  # the image does not depend on the audio
    images, audio, _ = apply_event("sensor_noise", None, AUDIO, 2, SEEDS, SR)
    assert images is None and audio.shape == AUDIO.shape


def test_bad_inputs_are_refused():
    with pytest.raises(KeyError, match="did you mean"):
        run("rian")
    with pytest.raises(ValueError, match="severity"):
        run("rain", severity=0)
    with pytest.raises(ValueError, match="seeds"):
        run("rain", seeds=[1, 2])
    with pytest.raises(ValueError, match="uint8"):
        run("rain", images=IMAGES.astype(np.float32))
    with pytest.raises(ValueError, match="float32"):
        run("rain", audio=AUDIO.astype(np.float64))
    with pytest.raises(ValueError, match="pool"):
        run("crowd", pool=None)
    with pytest.raises(ValueError, match="sample_rate"):
        apply_event("rain", IMAGES, AUDIO, 1, SEEDS)


# ---------------------------------------------------------------- severity monotonicity

@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_severity_monotone_on_both_modalities(name):
    seeds = [[100 * k + i for i in range(N)] for k in range(3)]
    image_change, audio_snr = [], []
    for severity in SEVERITIES:
        changes, snrs = [], []
        for s in seeds:
            images, audio, _ = run(name, severity=severity, seeds=s)
            changes.append(np.abs(images.astype(float) - IMAGES).mean())
            snrs += [snr_db(AUDIO[i], audio[i]) for i in range(N)]
        image_change.append(np.mean(changes))
        audio_snr.append(np.mean(snrs))
    assert np.all(np.diff(image_change) > 0), (name, image_change)
    assert np.all(np.diff(audio_snr) < 0), (name, audio_snr)
    assert image_change[0] > 0.5 and audio_snr[-1] < 15, (name, image_change, audio_snr)


# ---------------------------------------------------------------------- crowd babble

def test_crowd_babble_uses_only_other_pool_clips():
    length = 2000
    t = np.arange(length)
    bins = [40, 55, 70, 85, 100]  # integer cycles per clip: circular tiling keeps them pure
    pool = [(0.05 * np.sin(2 * np.pi * b * t / length)).astype(np.float32) for b in bins]
    own = 2
    sample = pool[own][None].copy()
    duplicate = pool[own].copy()
    pool_with_dup = [*pool, duplicate]  # a bitwise copy of the sample: also excluded
    for severity in SEVERITIES:  # up to 8 talkers from 4 eligible clips
        for seed in range(5):
            _, out, details = apply_event("crowd", None, sample, severity, [seed], SR,
                                             pool=pool_with_dup)
            chosen = details[0]["audio"]["babble_pool_indices"]
            talkers = av.EVENTS["crowd"].audio_params[severity - 1]["talkers"]
            assert own not in chosen and len(pool) not in chosen
            assert len(chosen) == min(talkers, 4) == len(set(chosen))
            spectrum = np.abs(np.fft.rfft(out[0].astype(np.float64) - sample[0]))
            energy = {b: spectrum[b] for b in bins}
            total = np.sum(spectrum)
            for i, b in enumerate(bins):
                if i in chosen:
                    assert energy[b] > 0.05 * total
                else:  # neither the sample itself nor unchosen clips leak into the babble
                    assert energy[b] < 1e-3 * total, (severity, seed, i, chosen)
            # nothing but the chosen tones
            assert sum(energy[bins[i]] for i in chosen) > 0.99 * total


def test_crowd_babble_with_pool_labels_never_uses_the_samples_class():
    """Pool labels: the babble draws only clips of other classes (on spoken digits the
    crowd must not say the sample's digit); without labels, same-class clips are eligible."""
    length = 2000
    rng = np.random.default_rng(0)
    pool = [(0.05 * rng.standard_normal(length)).astype(np.float32) for _ in range(12)]
    labels = [i % 3 for i in range(12)]  # classes 0, 1, 2, four clips each
    seen_same_class = False
    for own in range(12):
        for seed in range(4):
            sample = pool[own][None].copy()
            _, _, labelled = apply_event("crowd", None, sample, 5, [seed], SR, pool=pool,
                                         pool_labels=labels)
            chosen = labelled[0]["audio"]["babble_pool_indices"]
            assert len(chosen) == 8 == len(set(chosen))  # all 8 clips of the other classes
            assert all(labels[j] != labels[own] for j in chosen)
            _, _, unlabelled = apply_event("crowd", None, sample, 5, [seed], SR, pool=pool)
            seen_same_class |= any(labels[j] == labels[own] and j != own
                                   for j in unlabelled[0]["audio"]["babble_pool_indices"])
    assert seen_same_class
    with pytest.raises(ValueError, match="and of another class"):
        apply_event("crowd", None, pool[0][None], 1, [0], SR, pool=pool[:3],
                    pool_labels=[0, 0, 0])
    with pytest.raises(ValueError, match="2 pool labels for 3 pool clips"):
        apply_event("crowd", None, pool[0][None], 1, [0], SR, pool=pool[:3],
                    pool_labels=[0, 1])


def test_crowd_without_other_clips_is_refused():
    with pytest.raises(ValueError, match="other than"):
        apply_event("crowd", None, AUDIO[:1], 1, [0], SR, pool=[AUDIO[0], AUDIO[0] * 0])


# ------------------------------------------------------------------------- noise_dir

def test_noise_dir_48k_stereo_keeps_16k_mono_clip_lengths(tmp_path):
    folder = tmp_path / "noise" / "rain"
    folder.mkdir(parents=True)
    t = np.arange(int(2.5 * 48_000)) / 48_000
    tone = np.sin(2 * np.pi * 1000 * t)  # 1 kHz: lands at 3 kHz if the rate were ignored
    stereo = np.stack([0.6 * tone, 0.4 * tone], axis=1)
    wavfile.write(folder / "long.wav", 48_000, (stereo * 32767).astype(np.int16))
    short = stereo[: int(0.1 * 48_000)]  # shorter than the clips: must be tiled
    wavfile.write(folder / "short.wav", 48_000, (short * 32767).astype(np.int16))
    for length in (SR, SR // 4 + 3):
        audio = tones(3, length=length)
        seeds = list(range(10, 13))
        for severity in (1, 5):
            _, out, details = apply_event("rain", None, audio, severity, seeds, SR,
                                             noise_dir=tmp_path / "noise")
            assert out.shape == audio.shape and out.dtype == np.float32
            assert np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0
            for i, d in enumerate(details):
                assert d["audio"]["bed"] in ("file:rain/long.wav", "file:rain/short.wav")
                residual = out[i].astype(np.float64) - audio[i]
                spectrum = np.abs(np.fft.rfft(residual))
                peak_hz = np.argmax(spectrum) * SR / length
                assert abs(peak_hz - 1000) < 20, peak_hz
                if severity == 1:  # no clipping at 20 dB: the declared SNR holds
                    assert snr_db(audio[i], out[i]) == pytest.approx(20, abs=0.05)


def test_noise_dir_formats_and_missing_folder(tmp_path):
    (tmp_path / "wind").mkdir()
    rng = np.random.default_rng(0)
    wavfile.write(tmp_path / "wind" / "a.wav", 8000,
                  rng.uniform(-0.5, 0.5, 1000).astype(np.float32))
    wavfile.write(tmp_path / "wind" / "b.wav", 22_050,
                  rng.integers(0, 255, (3000, 2), dtype=np.uint8))
    audio = tones(4, length=5000)
    _, out, details = apply_event("wind", None, audio, 3, [0, 1, 2, 3], SR,
                                     noise_dir=tmp_path)
    assert out.shape == audio.shape and np.all(np.isfinite(out))
    assert {d["audio"]["bed"] for d in details} <= {"file:wind/a.wav", "file:wind/b.wav"}
    with pytest.raises(FileNotFoundError, match="rain"):
        apply_event("rain", None, audio, 3, [0, 1, 2, 3], SR, noise_dir=tmp_path)
    # events without a bed ignore noise_dir
    apply_event("compression", None, audio, 3, [0, 1, 2, 3], SR, noise_dir=tmp_path)


def test_load_noise_converts_pcm_and_resamples(tmp_path):
    data = np.array([[16384, -16384], [32767, -32768]] * 300, dtype=np.int16)
    wavfile.write(tmp_path / "x.wav", 48_000, data)
    x = av.load_noise(tmp_path / "x.wav", 48_000)
    np.testing.assert_allclose(x[:2], [0.0, (32767 - 32768) / 2 / 32768])
    y = av.load_noise(tmp_path / "x.wav", 16_000)
    assert len(y) == 200
    np.testing.assert_array_equal(av.fit_length(np.arange(5.0), 12, 3),
                                  [3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4])


# --------------------------------------------------------------- hand-computed checks

def test_mu_law_quantisation_hand_computed():
    mu = 255
    y = math.log(1 + mu * 0.5) / math.log(1 + mu)  # 0.875693...
    q = round((y + 1) / 2 * mu)
    assert q == 239
    expected = ((1 + mu) ** (2 * q / mu - 1) - 1) / mu  # 0.496677...
    assert av.mu_law_quantize(np.array([0.5]), 8)[0] == pytest.approx(expected, rel=1e-12)
    assert av.mu_law_quantize(np.array([-0.5]), 8)[0] == pytest.approx(-expected, rel=1e-12)
    assert expected == pytest.approx(0.496677, abs=1e-6)
    np.testing.assert_allclose(av.mu_law_quantize(np.array([-1.0, 1.0, 3.0]), 4), [-1, 1, 1])
    for bits in (4, 8):
        levels = np.unique(av.mu_law_quantize(np.linspace(-1, 1, 20001), bits))
        assert len(levels) == 2**bits


def _pil_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


# the published JPEG qualities of the image grid (Hendrycks' generators) per image size
PUBLISHED_JPEG = {32: (80, 65, 58, 50, 40), 64: (65, 58, 50, 40, 25),
                  224: (25, 18, 15, 10, 7)}


@pytest.mark.parametrize("size", sorted(PUBLISHED_JPEG))
def test_compression_image_is_pil_jpeg_at_the_quality_of_the_image_scale(size):
    """The event's JPEG side takes the image grid's quality for the image size (CIFAR-10-C
    at 32 px, Tiny-ImageNet-C at 64 px, ImageNet-C at 224 px), as the image grid does."""
    images = np.stack([texture(size, size, seed=i) for i in range(2)])
    for severity in SEVERITIES:
        out, _, _ = run("compression", images=images, audio=None, severity=severity,
                        seeds=SEEDS[:2])
        for i in range(2):
            np.testing.assert_array_equal(
                out[i], _pil_jpeg(images[i], PUBLISHED_JPEG[size][severity - 1]))


def test_an_explicit_scale_overrides_the_image_size():
    out, _, _ = run("compression", images=IMAGES[:1], audio=None, severity=5, seeds=[1],
                    scale="imagenet")
    np.testing.assert_array_equal(out[0], _pil_jpeg(IMAGES[0], 7))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


def test_at_32_px_compression_severity_1_is_milder_than_the_image_grids_jpeg_severity_5():
    images = np.stack([texture(32, 32, seed=i) for i in range(N)])
    event, _, _ = run("compression", images=images, audio=None, severity=1)
    grid, _ = corrupt(images, "jpeg_compression", 5, SEEDS, kind="image")
    assert np.mean([_psnr(images[i], event[i]) for i in range(N)]) > \
        np.mean([_psnr(images[i], grid[i]) for i in range(N)])


def test_compression_audio_is_band_limited():
    # severity 1 codes at 8 kHz: a 6 kHz tone is removed, a 1 kHz tone kept
    t = np.arange(SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 6000 * t))[None]
    _, out, _ = apply_event("compression", None, x.astype(np.float32), 1, [0], SR)
    spectrum = np.abs(np.fft.rfft(out[0]))
    assert spectrum[6000] < 0.01 * spectrum[1000]
    assert spectrum[1000] > 0.9 * np.abs(np.fft.rfft(x[0]))[1000]


def test_sensor_noise_snr_matches_declaration():
    quiet = tones(3, length=SR, amp=0.05)
    for severity in SEVERITIES:
        _, out, _ = apply_event("sensor_noise", None, quiet, severity, [5, 6, 7], SR)
        declared = av.EVENTS["sensor_noise"].audio_params[severity - 1]["snr_db"]
        for i in range(3):
            assert snr_db(quiet[i], out[i]) == pytest.approx(declared, abs=0.01)
            noise = out[i].astype(np.float64) - quiet[i]
            assert abs(noise.mean()) < 0.05 * noise.std()  # zero-mean white noise


def test_underwater_image_hand_computed_on_a_flat_image():
    """A flat image is unchanged by the blur and its mean is itself, so the colour cast,
    the contrast around the mean luminance and the haze can be computed by hand."""
    flat = np.full((1, 32, 40, 3), (200, 150, 100), dtype=np.uint8)
    for severity in SEVERITIES:
        p = av.EVENTS["underwater"].image_params[severity - 1]
        out, _, _ = apply_event("underwater", flat, None, severity, [0])
        rgb = np.array([200, 150, 100]) / 255 * [p["red_gain"], p["green_gain"], 1]
        luma = rgb @ [0.299, 0.587, 0.114]
        rgb = luma + p["contrast"] * (rgb - luma)
        rgb = rgb * (1 - p["haze"]) + p["haze"] * np.array(av.UNDERWATER_WATER_RGB)
        expected = np.rint(np.clip(rgb, 0, 1) * 255)
        assert np.all(np.abs(out[0].reshape(-1, 3) - expected) <= 1), (severity, expected)


def test_underwater_audio_is_a_resonant_low_pass():
    b, a = av.resonant_lowpass(800, 2.5, SR)
    from scipy.signal import freqz
    f, h = freqz(b, a, worN=[100, 780, 3200], fs=SR)
    gain = np.abs(h)
    assert gain.max() <= 1 + 1e-9
    assert gain[1] > 0.9 and gain[1] > 2 * gain[0]  # a resonance peak near the cutoff
    assert gain[2] < 0.1  # two octaves above: muffled


def test_interference_dropouts_and_glitched_frames_line_up():
    length = 9000
    x = (0.2 + 0.1 * np.sin(np.arange(length) / 7))[None].astype(np.float32)  # never zero
    clip = np.stack([texture(seed=k) for k in range(10)])[None]  # 10 frames
    for severity in SEVERITIES:
        images, out, details = apply_event("interference", clip, x, severity, [3], SR)
        p = av.EVENTS["interference"].audio_params[severity - 1]
        spans = details[0]["audio"]["dropouts"]
        assert len(spans) == p["dropouts"]
        mask = np.zeros(length, bool)
        for a, b in spans:
            mask[a:b] = True
        assert np.all(out[0][mask] == 0) and np.all(out[0][~mask] == x[0][~mask])
        assert mask.mean() == pytest.approx(p["dropout_fraction"], abs=2 / length * len(spans))
        hit = details[0]["image"]["glitched_frames"]
        fractions = details[0]["shared"]["dropouts"]
        for k in range(10):
            overlaps = any(a < (k + 1) / 10 and b > k / 10 for a, b in fractions)
            assert (k in hit) == overlaps
            if k not in hit:
                np.testing.assert_array_equal(images[0, k], clip[0, k])
        assert hit  # every dropout lies in some frame


def test_rain_drops_fall_in_clips_and_are_nested_over_severity():
    clip = np.repeat(texture(64, 64)[None, None], 3, axis=1)
    images, _, details = apply_event("rain", clip, None, 4, [9])
    assert not np.array_equal(images[0, 0], images[0, 1])  # the streaks move
    counts = [apply_event("rain", clip[:, :1], None, s, [9])[2][0]["image"]["drops"]
              for s in SEVERITIES]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    angles = {apply_event("rain", clip[:, :1], None, s, [9])[2][0]["image"]["rain_angle_deg"]
              for s in SEVERITIES}
    assert len(angles) == 1  # the draw does not depend on the severity


def test_read_only_frames_of_a_prepared_dataset_are_corrupted_without_a_warning():
    """Prepared datasets are read-only memory maps: the torch backend reads them as they are,
    and says nothing about it (the harness's corrupt_event)."""
    import warnings

    from rambench.test_inputs import corrupt_event

    frames = IMAGES[:, None].copy()  # (B, T=1, H, W, C)
    frames.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, _, _ = corrupt_event("fire", frames, AUDIO, 3, SEEDS, SR, pool=POOL,
                                     backend="torch")
    assert images.shape == frames.shape and not np.array_equal(images, frames)
