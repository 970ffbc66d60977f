"""AVRobustBench's protocol (corruptions/avrobustbench.py) against the formulas of its code
(sarthaxxxxx/AVROBUSTBENCH@83fda5ce7f48c4710bbbdac53128b46678792deb:corruptions/corruptions.py),
worked out by hand on fixed inputs."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from scipy import signal
from scipy.io import wavfile

from corruptions import avrobustbench as avrb
from corruptions import image as image_corruptions
from corruptions import registry
from corruptions.backends import corrupt
from rambench.errors import UsageError
from rambench.grid import expand_conditions

SR = 16_000
KINDS = {"visual": "image", "audio": "audio"}


def quiet(n: int = SR, seed: int = 0) -> np.ndarray:
    """A clip far from clipping, so that SNRs are exact."""
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    return 0.01 * np.sin(2 * np.pi * 440 * t) + 0.002 * rng.standard_normal(n)


def snr_db(clean, noisy) -> float:
    clean = np.asarray(clean, np.float64)
    return 10 * math.log10(np.sum(clean**2) / np.sum((np.asarray(noisy, np.float64) - clean) ** 2))


def run(name, images=None, audio=None, severity=3, seeds=(7,), **kw):
    (out_images, out_audio), drawn = corrupt((images, audio), name, severity, list(seeds),
                                             kind="av", sample_rate=SR, **kw)
    return out_images, out_audio, drawn


def test_the_benchmark_has_its_15_corruptions_and_the_inverted_ladder_by_name():
    assert [n.removeprefix("avrb_") for n in avrb.BENCHMARK] == [
        "gaussian", "impulse", "shot", "speckle", "compression", "snow", "frost", "spatter",
        "wind", "rain", "underwater", "concert", "smoke", "crowd", "interference"]
    assert all(registry.get(n, "av").protocol == "avrobustbench" for n in avrb.BENCHMARK)
    assert "avrb_gaussian_inverted" in registry.names("av", protocols=True)
    assert not any(n.startswith("avrb_") for n in registry.names("av"))  # not in `all`


# ----------------------------------------------------------------------------- audio

def test_add_noise_is_torchaudios_formula():
    x, n = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, -1.0])
    a = math.sqrt(14 / (2 * 10 ** (10 / 10)))  # |x|^2 = 14, |n|^2 = 2, snr 10 dB
    np.testing.assert_allclose(avrb.add_noise(x, n, 10), x + a * n, rtol=1e-15)


def test_scaled_noise_is_the_per_sample_scaler():
    x, n = np.array([0.5, -0.5]), np.array([1.0, 1.0])
    alpha = math.sqrt(0.25 / (10 ** 2 * (1 + 1e-8)))  # P_s 0.25, P_n 1 + 1e-8, snr 20 dB
    np.testing.assert_allclose(avrb.scaled_noise(x, n, 20), x + alpha * n, rtol=1e-15)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_audio_ladders(severity):
    """The benchmark's ladder is 40/30/20/10/0 dB; the released code's is the severity
    itself in dB (inverted: severity 1 is the noisiest)."""
    x = quiet()[None].astype(np.float32)
    _, y, _ = run("avrb_gaussian", audio=x, severity=severity)
    assert snr_db(x[0], y[0]) == pytest.approx((40, 30, 20, 10, 0)[severity - 1], abs=1e-3)
    _, y, _ = run("avrb_gaussian_inverted", audio=x, severity=severity)
    assert snr_db(x[0], y[0]) == pytest.approx(severity, abs=1e-3)


@pytest.mark.parametrize("name", ["avrb_impulse", "avrb_shot", "avrb_speckle"])
def test_noise_audio_at_40_to_0_db(name):
    x = quiet()[None].astype(np.float32)
    for severity, target in zip((1, 2, 3, 4), (40, 30, 20, 10), strict=True):
        _, y, _ = run(name, audio=x, severity=severity)
        # float32 output: the SNR to within the rounding of a 1e-2 clip
        assert snr_db(x[0], y[0]) == pytest.approx(target, abs=0.01), (name, severity)


def test_impulse_noise_is_plus_minus_one_on_five_percent():
    rng = np.random.default_rng(3)
    x = quiet(100_000)
    y = avrb.impulse_audio(x, 5, SR, rng)  # snr 0: alpha = sqrt(P_s / (P_n + 1e-8))
    noise = y - x
    hits = np.abs(noise) > 0
    assert abs(hits.mean() - 0.05) < 5 * math.sqrt(0.05 * 0.95 / len(x))
    np.testing.assert_allclose(np.abs(noise[hits]), np.abs(noise[hits])[0], rtol=1e-12)
    assert np.mean(noise[hits] > 0) == pytest.approx(0.5, abs=0.03)


def test_shot_noise_of_a_constant_clip_uses_one_half():
    """A constant clip has no range: z = 0.5, noise Poisson(25)/50 - 0.5, and a silent
    clip stays silent (P_s = 0)."""
    x = np.full(1000, 0.2)
    y = avrb.shot_audio(x, 5, SR, np.random.default_rng(0))
    noise = np.random.default_rng(0).poisson(25, 1000) / 50 - 0.5
    alpha = math.sqrt(0.04 / (np.mean(noise**2) + 1e-8))
    np.testing.assert_allclose(y, x + alpha * noise, rtol=1e-12)
    np.testing.assert_array_equal(avrb.shot_audio(np.zeros(10), 5, SR,
                                                  np.random.default_rng(0)), 0)


def test_speckle_noise_is_multiplicative():
    x = quiet()
    x[::7] = 0
    y = avrb.speckle_audio(x, 4, SR, np.random.default_rng(1))
    np.testing.assert_array_equal(y[::7], 0)


def test_compression_audio_is_a_6th_order_butterworth_and_severity_1_passes_at_16k():
    x = quiet()
    np.testing.assert_array_equal(avrb.compression_audio(x, 1, SR, None), x)  # 8 kHz = Nyquist
    b, a = signal.butter(6, 6000 / 8000, "low")
    np.testing.assert_allclose(avrb.compression_audio(x, 2, SR, None), signal.lfilter(b, a, x))
    b, a = signal.butter(6, 8000 / 24000, "low")  # at 48 kHz severity 1 filters
    np.testing.assert_allclose(avrb.compression_audio(x, 1, 48_000, None),
                               signal.lfilter(b, a, x))


@pytest.mark.parametrize(("severity", "length", "chunk"),
                         [(1, 160_128, 8006), (3, 160_128, 8006), (5, 160_128, 8006),
                          (1, 16_000, 1600), (5, 16_000, 1600)])
def test_interference_audio_zeroes_2s_chunks_of_the_published_length(severity, length, chunk):
    """Chunks of max(int(L 0.1 s) // 2s, sr // 10) samples (L = 160128 at 16 kHz: 8006 at
    every severity; a 1 s clip: the 0.1 s floor), at 2s distinct starts (may overlap)."""
    x = quiet(length) + 0.5
    y = avrb.interference_audio(x, severity, SR, np.random.default_rng(severity))
    zero = y == 0
    edges = np.flatnonzero(np.diff(np.r_[0, zero.astype(int), 0]))
    runs = edges[1::2] - edges[::2]
    assert zero.sum() <= 2 * severity * chunk and runs.min() >= chunk
    assert sum(math.ceil(r / chunk) for r in runs) <= 2 * severity
    np.testing.assert_array_equal(y[~zero], x[~zero])


def test_recordings_48k_stereo_are_mixed_to_mono_at_the_clip_rate_from_sample_0(tmp_path):
    """An environmental side mixes one of its folder's recordings, mono at the clip's rate,
    tiled from its first sample, at 20..0 dB; the clip keeps its length and rate."""
    folder = tmp_path / "water_drops"
    folder.mkdir()
    t = np.arange(24_000) / 48_000  # 0.5 s: tiled to fill the 1 s clip
    tone = 0.3 * np.sin(2 * np.pi * 500 * t)
    wavfile.write(folder / "drops.wav", 48_000, np.stack([tone, tone], 1).astype(np.float32))
    x = quiet()[None].astype(np.float32)
    for severity, target in zip((1, 3, 5), (20, 10, 0), strict=True):
        _, y, drawn = run("avrb_spatter", audio=x, severity=severity, noise_dir=tmp_path)
        assert y.shape == x.shape and y.dtype == np.float32
        assert drawn["noise_file"] == ["drops.wav"] and drawn["synthetic"] == [False]
        assert snr_db(x[0], y[0]) == pytest.approx(target, abs=0.01)
        added = y[0].astype(np.float64) - x[0]
        n = np.arange(SR) / SR
        expected = np.sin(2 * np.pi * 500 * n)  # the tone at 16 kHz, from its first sample
        corr = np.dot(added, expected) / np.linalg.norm(added) / np.linalg.norm(expected)
        assert corr > 0.999


def test_without_recordings_a_synthetic_stand_in_is_marked():
    x = quiet()[None].astype(np.float32)
    _, y, drawn = run("avrb_rain", audio=x, severity=2)
    assert drawn["synthetic"] == [True] and drawn["noise_file"] == [None]
    assert snr_db(x[0], y[0]) == pytest.approx(15, abs=0.01)
    _, _, drawn = run("avrb_gaussian", audio=x, severity=2)
    assert drawn["synthetic"] == [False]  # needs no asset
    with pytest.raises(ValueError, match="avrb_crowd needs noise_dir"):
        run("avrb_crowd", audio=x)


# ----------------------------------------------------------------------------- images

def texture(h=48, w=48, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 60 * np.sin(xx / (3 + k) + seed) + 40 * np.cos(yy / (4 + k))
                    for k in range(3)], -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


IMAGE = texture()[None]


def test_concert_is_imagenet_c_brightness_and_compression_its_jpeg():
    for severity in (1, 3, 5):
        out, _, _ = run("avrb_concert", images=IMAGE, severity=severity)
        np.testing.assert_array_equal(out[0], image_corruptions.reference(
            "brightness", IMAGE[0], severity, 0, scale="imagenet"))
        out, _, _ = run("avrb_compression", images=IMAGE, severity=severity)
        buffer = io.BytesIO()
        Image.fromarray(IMAGE[0]).save(buffer, format="JPEG",
                                       quality=(25, 18, 15, 10, 7)[severity - 1])
        np.testing.assert_array_equal(out[0], np.asarray(Image.open(buffer)))


def test_underwater_on_a_flat_pixel_by_hand():
    """(R, G, B) = (200, 0, 100) at severity 1: red x 0.9 = 180, contrast 0.9 -> 162,
    0.85 v + 0.15 x 20: R 140.7 -> 141, G 3, B 79.5 -> 80 (cv2 rounds half to even). The
    released code swaps R and B first and gives (72, 3, 156)."""
    flat = np.zeros((1, 40, 40, 3), np.uint8)
    flat[..., 0], flat[..., 2] = 200, 100
    out, _, _ = run("avrb_underwater", images=flat, severity=1)
    np.testing.assert_array_equal(out[0], np.broadcast_to([141, 3, 80], (40, 40, 3)))


def test_smoke_is_blurred_noise_rescaled_by_the_peak():
    frame = texture()
    amount, sigma = avrb.SMOKE[2]
    out = avrb.smoke_image(frame, 3, np.random.default_rng(4))
    from scipy import ndimage

    x = frame / 255
    smoke = ndimage.gaussian_filter(np.random.default_rng(4).random(x.shape[:2]), sigma)[..., None]
    expected = np.clip((x + amount * smoke) * x.max() / (x.max() + amount), 0, 1) * 255
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


def test_rain_only_adds_light_to_the_brightened_scene():
    frame = texture()
    for severity in (1, 5):
        loc, scale, zoom, thresh, radius, sigma, blend = avrb.RAIN[severity - 1]
        out = avrb.rain_image(frame, severity, np.random.default_rng(0)).astype(np.float64)
        x = frame / 255
        gray = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]
        base = np.clip(blend * x + (1 - blend) * np.maximum(x, 1.3 * gray + 0.3), 0, 1) * 255
        assert np.all(out >= np.floor(base - 0.5))
        added = out - base
        streaks = added.min(axis=-1) > 2  # unclipped streak pixels: tinted 0.5 : 0.9 : 1.2
        unclipped = streaks & (out.max(axis=-1) < 254)
        if unclipped.any():
            assert np.all(added[unclipped][:, 2] >= added[unclipped][:, 1] - 1)
            assert np.all(added[unclipped][:, 1] >= added[unclipped][:, 0] - 1)


def test_crowd_pastes_an_opaque_cut_out_of_the_published_size(tmp_path):
    (tmp_path / "crowd_image").mkdir()
    (tmp_path / "crowd_speech").mkdir()
    cut = np.zeros((30, 10, 4), np.uint8)
    cut[..., :3], cut[..., 3] = (10, 20, 30), 255
    Image.fromarray(cut, "RGBA").save(tmp_path / "crowd_image" / "p.png")
    frame = np.full((1, 50, 40, 3), 200, np.uint8)
    for severity in (1, 3, 5):
        out, _, drawn = run("avrb_crowd", images=frame, severity=severity, noise_dir=tmp_path)
        p = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
        pasted = np.all(out[0] == (10, 20, 30), axis=-1)
        ys, xs = np.nonzero(pasted)
        assert (np.ptp(ys) + 1, np.ptp(xs) + 1) == (int(50 * p), int(40 * p))  # aspect not kept
        assert pasted.sum() == int(50 * p) * int(40 * p)
        assert np.all(out[0][~pasted] == 200)
        assert drawn["occluder"] == ["p.png"] and drawn["synthetic"] == [False]


def test_interference_rotates_by_an_integer_angle_in_range():
    frame = texture(40, 40)
    for severity in (1, 5):
        out = avrb.interference_image(frame, severity, np.random.default_rng(severity))
        limit = 6 * severity + 5
        angles = [d for d in range(-limit, limit + 1)
                  if np.array_equal(out, np.asarray(Image.fromarray(frame).rotate(d)))]
        assert angles


def test_image_sides_of_imagenet_c_draw_per_frame_and_are_reproducible():
    clip = np.stack([texture(seed=i) for i in range(3)])[None]  # one 3-frame clip
    a, _, _ = run("avrb_gaussian", images=clip, severity=5, seeds=[1])
    b, _, _ = run("avrb_gaussian", images=clip, severity=5, seeds=[1])
    c, _, _ = run("avrb_gaussian", images=clip, severity=5, seeds=[2])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    noise = a[0].astype(float) - clip[0]
    assert not np.allclose(noise[0], noise[1])  # every frame its own draw
    assert 0.3 * 255 < np.std(noise) < 0.45 * 255  # sigma 0.38, less where clipped


# ----------------------------------------------------------------------------- grid

def test_the_grid_names_the_whole_benchmark_and_checks_its_folders(tmp_path):
    conditions = expand_conditions({"clean": False, "av": {"events": "avrobustbench"}},
                                   KINDS, "g")
    assert len(conditions) == 15 * 5
    assert {c.event for c in conditions} == set(avrb.BENCHMARK)
    with pytest.raises(UsageError, match=r"no folder water_drops/ in"):
        expand_conditions({"av": {"events": ["avrb_spatter"], "noise_dir": str(tmp_path)}},
                          KINDS, "g")
    (tmp_path / "water_drops").mkdir()
    wavfile.write(tmp_path / "water_drops" / "a.wav", 8000, np.full(80, 0.1, np.float32))
    first = expand_conditions({"av": {"events": ["avrb_spatter", "avrb_gaussian"],
                                      "noise_dir": str(tmp_path)}}, KINDS, "g")[1]
    wavfile.write(tmp_path / "water_drops" / "b.wav", 8000, np.full(80, 0.2, np.float32))
    second = expand_conditions({"av": {"events": ["avrb_spatter", "avrb_gaussian"],
                                       "noise_dir": str(tmp_path)}}, KINDS, "g")[1]
    assert first.noise_digest != second.noise_digest  # other recordings, another key


def test_a_study_with_synthetic_stand_ins_says_it_is_not_comparable(tmp_path):
    from rambench.api import benchmark
    from rambench.study import parse

    grid = parse({"conditions": {"clean": True, "av": {
        "events": ["avrb_concert", "avrb_gaussian"], "severities": [1]}}}, "avrb", "avrb.yaml")
    results = benchmark(["late_fusion"], grid=grid, out=tmp_path, study="avrb", epochs=1,
                        device="cpu", limit=24, progress=False)
    notes = [n for n in results.mixed if "NOT comparable" in n]
    assert len(notes) == 1 and notes[0].startswith("avrb_concert: synthetic stand-ins")
    assert "avrb_gaussian" not in notes[0]  # it needs no asset
