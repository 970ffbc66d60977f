"""Fidelity of the torch corruption backend to the reference libraries, on real images
(scikit-image's bundled photos, the embedded dataset's digits) and real speech clips.

* deterministic corruptions: PSNR (images) / SNR (audio) of torch output against the
  reference output >= 35 dB at every severity;
* stochastic ones: the mean absolute per-pixel (per-sample) change and the standard
  deviation of the change, over many draws, within 10 % of the reference's;
* batch independence and run-to-run bit-identity on the CPU.
The accuracy check (a trained model under both backends) is in test_backend_accuracy.py.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import skimage.data
import skimage.transform
import torch

from corruptions import _imagecorruptions_compat as compat
from corruptions import backends, registry, scales, torch_audio, torch_av, torch_image
from rambench.datasets import datasets

SEVERITIES = (1, 2, 3, 4, 5)
IMAGE_NAMES = registry.names("image")
AUDIO_NAMES = registry.names("audio")

DETERMINISTIC_IMAGE = ("gaussian_blur", "defocus_blur", "zoom_blur", "motion_blur",
                       "brightness", "saturate", "contrast", "pixelate", "jpeg_compression")
STOCHASTIC_IMAGE = tuple(n for n in IMAGE_NAMES if n not in DETERMINISTIC_IMAGE)
DETERMINISTIC_AUDIO = ("clipping", "low_pass", "band_stop", "reverb", "pitch_shift",
                       "time_stretch", "mp3_compression")
STOCHASTIC_AUDIO = tuple(n for n in AUDIO_NAMES if n not in DETERMINISTIC_AUDIO)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@functools.lru_cache(maxsize=4)
def photos(size: int) -> np.ndarray:
    """Four of scikit-image's bundled colour photos at size x size, uint8 (4, H, W, 3)."""
    images = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(),
              skimage.data.rocket()]
    return np.stack([
        (skimage.transform.resize(im, (size, size), anti_aliasing=True) * 255).round()
        .astype(np.uint8) for im in images])


@functools.lru_cache(maxsize=1)
def avdigits_test():
    return datasets.get("avdigits")().split("test")


def reference(images: np.ndarray, name: str, severity: int, seeds,
              scale: str = "auto") -> np.ndarray:
    return backends.corrupt(images, name, severity, seeds, "reference", kind="image",
                            scale=scale)[0]


def torch_backend(images: np.ndarray, name: str, severity: int, seeds,
                  scale: str = "auto") -> np.ndarray:
    return backends.corrupt(images, name, severity, seeds, "torch", kind="image",
                            scale=scale)[0]


def test_every_corruption_has_a_torch_implementation():
    for c in registry.all_corruptions():
        if c.kind == "av" and c.protocol is None:  # one apply for every event (test_torch_av)
            assert registry.load(c.torch.module, c.torch.function) is torch_av.apply
            continue
        if c.kind == "av":  # a protocol's events: its reference code, on the CPU
            assert c.torch.fidelity is registry.Fidelity.REFERENCE
            continue
        module = torch_image if c.kind == "image" else torch_audio
        assert registry.load(c.torch.module, c.torch.function) is getattr(module, c.name)
        assert c.torch.fidelity in registry.Fidelity
    assert len(IMAGE_NAMES) == 19  # the protocol corruptions are tested in test_protocols
    assert len(AUDIO_NAMES) == 11
    assert set(DETERMINISTIC_IMAGE) | set(STOCHASTIC_IMAGE) == set(IMAGE_NAMES)


# ------------------------------------------------------------------ deterministic images

def _reference_motion_angles(seeds) -> torch.Tensor:
    """The angle the reference draws first after seeding numpy with each seed."""
    angles = []
    for s in seeds:
        with compat.seeded_global_rng(s):
            angles.append(np.random.uniform(-45, 45))
    return torch.tensor(angles, dtype=torch.float64)


def _torch_with_reference_randomness(images, name, severity, seeds, scale="auto"):
    """The torch backend's output; for pixelate, which the CPU runs with Pillow itself, the
    tensor version that other devices run; motion blur at the reference's angles."""
    if name == "pixelate":
        scale = scales.resolve_scale(scale, *images.shape[1:3])
        return backends._images(torch_image.pixelate, images, severity, seeds,
                                torch.device("cpu"), scale)
    if name != "motion_blur":
        return torch_backend(images, name, severity, seeds, scale)
    angles = _reference_motion_angles(seeds)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    scale = scales.resolve_scale(scale, *images.shape[1:3])
    out = torch_image.motion_blur(x, severity, seeds, scale, drawn={"angle": angles})
    return out.to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize(("size", "scale"), [(64, "imagenet"), (64, "tinyimagenet"),
                                             (64, "cifar"), (32, "cifar"), (224, "imagenet")])
@pytest.mark.parametrize("name", DETERMINISTIC_IMAGE)
def test_deterministic_image_corruptions_match_reference_psnr_35(name, size, scale):
    images = photos(size)[:2] if size == 224 else photos(size)
    seeds = list(range(len(images)))
    for severity in SEVERITIES:
        ours = _torch_with_reference_randomness(images, name, severity, seeds, scale)
        ref = reference(images, name, severity, seeds, scale)
        assert psnr(ours, ref) >= 35, (name, severity, psnr(ours, ref))


def test_the_cpu_runs_pillow_itself_for_pixelate_and_jpeg_on_the_arrays():
    """pixelate: Pillow on the CPU, the tensor port on other devices; jpeg_compression:
    Pillow everywhere. Both give the reference's output exactly, grey images included."""
    pixelate, jpeg = (registry.get(n, "image").torch for n in ("pixelate", "jpeg_compression"))
    assert registry.load(pixelate.module, pixelate.array_function("cpu")) is (
        torch_image.pixelate_arrays)
    assert pixelate.array_function("cuda") is None
    assert jpeg.array_function("cpu") == jpeg.array_function("cuda") == "jpeg_compression"
    assert registry.load(jpeg.module, jpeg.array_function("cpu")) is torch_image.jpeg_compression
    colour = photos(64)
    grey = np.rint(colour.mean(-1, keepdims=True)).astype(np.uint8)
    for images in (colour, grey):
        for name in ("pixelate", "jpeg_compression"):
            for scale in ("imagenet", "cifar"):
                for severity in (1, 5):
                    ours = torch_backend(images, name, severity, [0, 1, 2, 3], scale)
                    ref = reference(images, name, severity, [0, 1, 2, 3], scale)
                    assert ours.shape == images.shape and np.array_equal(ours, ref)
                    assert not np.array_equal(ours, images)


def test_the_pixelate_tensor_port_is_pillows_integer_arithmetic():
    """The port that devices other than the CPU run equals Pillow's output exactly on
    square and wide images at every scale and severity; on a tall one, which Pillow 13 may
    resample column-wise first, it is within one grey level."""
    rng = np.random.default_rng(0)
    square = photos(64)
    wide = rng.integers(0, 256, (2, 40, 71, 3), dtype=np.uint8)
    tall = rng.integers(0, 256, (2, 97, 40, 3), dtype=np.uint8)
    for scale in scales.SCALES:
        for severity in SEVERITIES:
            for images in (square, wide, tall):
                port = backends._images(torch_image.pixelate, images, severity, [0, 1],
                                        torch.device("cpu"), scale).astype(int)
                pillow = torch_image.pixelate_arrays(images, severity, [0, 1], scale)
                difference = np.abs(port - pillow).max()
                assert difference <= (1 if images is tall else 0), (scale, severity)
                assert not np.array_equal(pillow, images)


@pytest.mark.parametrize("name", ["brightness", "saturate"])
def test_hsv_corruptions_on_greys_black_white_and_pure_colours(name):
    """The torch ports scale channels instead of converting to HSV and back; greys (hue 0
    and saturation 0 in skimage), black and white are the cases that shortcut singles out."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    images[:, :10] = rng.integers(0, 256, (2, 10, 40, 1), dtype=np.uint8)  # greys
    images[:, 10:12], images[:, 12:14] = 0, 255
    images[:, 14:16], images[:, 16:18] = (255, 0, 0), (0, 255, 255)
    for scale in ("imagenet", "cifar"):
        for severity in SEVERITIES:
            ours = torch_backend(images, name, severity, [0, 1], scale).astype(int)
            ref = reference(images, name, severity, [0, 1], scale).astype(int)
            assert np.abs(ours - ref).max() <= 1, (scale, severity)
            assert (ours == ref).mean() > 0.9, (scale, severity)


@pytest.mark.parametrize("name", DETERMINISTIC_IMAGE)
def test_deterministic_on_non_square_images(name):
    images = np.ascontiguousarray(photos(224)[:2, 40:88, 20:100])  # 48 x 80
    for severity in SEVERITIES:
        ours = _torch_with_reference_randomness(images, name, severity, [3, 4])
        assert ours.shape == images.shape
        assert psnr(ours, reference(images, name, severity, [3, 4])) >= 35, (name, severity)


@pytest.mark.parametrize("name", DETERMINISTIC_IMAGE)
def test_deterministic_on_embedded_digits(name):
    """The embedded digits made one-channel (grey) 32x32 images: replicated to RGB and
    averaged back, as the reference."""
    colour = avdigits_test().inputs["visual"][:16]
    images = np.rint(colour.mean(-1, keepdims=True)).astype(np.uint8)
    seeds = list(range(16))
    for severity in SEVERITIES:
        ours = _torch_with_reference_randomness(images, name, severity, seeds)
        assert ours.shape == images.shape and ours.dtype == np.uint8
        assert psnr(ours, reference(images, name, severity, seeds)) >= 35, (name, severity)


def test_glass_blur_reproduces_the_sequential_pixel_moves_exactly():
    """Given the same random offsets, the vectorised chain resolution equals the
    reference's one-pixel-at-a-time loop (a direct Python loop here), on two samples."""
    rng = np.random.default_rng(0)
    h, w, delta = 12, 14, 2
    rows, cols = h - 2 * delta, w - 2 * delta
    images = rng.integers(0, 255, (2, h, w))
    offsets = rng.integers(-delta, delta, (2, rows * cols, 2))
    expected = images.copy()
    for pixels, moves in zip(expected, offsets, strict=True):
        order = [(r, c) for r in range(h - delta, delta, -1) for c in range(w - delta, delta, -1)]
        for (r, c), (dx, dy) in zip(order, moves, strict=True):
            pixels[r, c] = pixels[r + dy, c + dx]
    source = torch_image._resolve_moves(*torch_image._moves(
        torch.from_numpy(offsets), (h, w), (delta + 1, delta + 1), (rows, cols))).numpy()
    got = np.stack([image.reshape(-1)[index] for image, index in zip(images, source,
                                                                       strict=True)])
    assert np.array_equal(got, expected.reshape(2, -1))
    assert (source != np.arange(h * w)).sum() > rows * cols  # most pixels really moved


# --------------------------------------------------------------------- stochastic images

def test_poisson_of_levels_inverts_the_poisson_cdf():
    """Each draw is the number of k with F(k) <= u, F the Poisson CDF of mean
    rate * level / 255 (worked out here from the pmf's formula, exp(-lam) lam^k / k!):
    just over and just under CDF values, in table bins and in bins that hold a
    CDF value; and over 200k draws per level the frequencies match the pmf."""
    from math import exp, factorial

    from corruptions import _torch_ops as ops

    def cdf(lam, k):
        return sum(exp(-lam) * lam ** i / factorial(i) for i in range(k + 1))

    rate = 12.0
    cases = []  # (level, u, expected count)
    for level in (1, 37, 128, 255):
        lam = rate * level / 255
        for k in range(6):
            f = cdf(lam, k)
            if cdf(lam, k - 1) < f - 1e-6 and f + 1e-6 < min(cdf(lam, k + 1), 1.0):
                cases += [(level, f + 1e-6, k + 1), (level, f - 1e-6, k)]
        cases += [(level, 0.0, 0), (level, 0.5, next(k for k in range(99) if cdf(lam, k) > 0.5))]
    cases.append((0, 0.999, 0))  # a black pixel stays black
    levels = torch.tensor([c[0] for c in cases], dtype=torch.float32)
    u = torch.tensor([c[1] for c in cases], dtype=torch.float32)
    got = ops.poisson_of_levels(levels, rate, u).tolist()
    assert got == [k for level, x, k in cases]
    assert len(cases) > 40
    assert len({float(x) * ops.POISSON_BINS // 1 for _, x, _ in cases}) > 10

    generator = torch.Generator().manual_seed(0)
    for level in (3, 200):
        lam = rate * level / 255
        draws = ops.poisson_of_levels(torch.full((200_000,), float(level)), rate,
                                      torch.rand(200_000, generator=generator))
        freq = torch.bincount(draws.long(), minlength=30)[:30].double() / 200_000
        pmf = torch.tensor([exp(-lam) * lam ** k / factorial(k) for k in range(30)])
        assert (freq - pmf).abs().max() < 0.004, (level, (freq - pmf).abs().max())



def _change_stats(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    change = out.astype(np.float64) - clean.astype(np.float64)
    return float(np.abs(change).mean()), float(change.std())


@pytest.mark.parametrize("scale", scales.SCALES)
@pytest.mark.parametrize("name", STOCHASTIC_IMAGE)
def test_stochastic_image_corruptions_match_reference_statistics(name, scale):
    """48 draws (4 photos x 12 seeds) at 64x64, every severity and scale: the mean absolute
    change and the standard deviation of the change are within 10 % of the reference's."""
    images = np.repeat(photos(64), 12, axis=0)
    seeds = list(range(len(images)))
    for severity in SEVERITIES:
        ours = _change_stats(torch_backend(images, name, severity, seeds, scale), images)
        ref = _change_stats(reference(images, name, severity, seeds, scale), images)
        for got, want, what in zip(ours, ref, ("mean |change|", "std change"), strict=True):
            assert abs(got - want) <= 0.10 * want, (name, severity, what, got, want)


@pytest.mark.parametrize("name", ["gaussian_noise", "glass_blur", "snow", "fog",
                                  "elastic_transform", "frost", "spatter"])
def test_stochastic_statistics_on_embedded_digits(name):
    images = avdigits_test().inputs["visual"][:256]  # mud spatter needs ~250 draws
    seeds = list(range(256))
    for severity in (1, 3, 5):
        ours = _change_stats(torch_backend(images, name, severity, seeds), images)
        ref = _change_stats(reference(images, name, severity, seeds), images)
        for got, want in zip(ours, ref, strict=True):
            assert abs(got - want) <= 0.10 * want, (name, severity, got, want)


# ------------------------------------------------------------------------------- audio

@functools.lru_cache(maxsize=1)
def clips() -> np.ndarray:
    return avdigits_test().inputs["audio"][:32]


def audio(name: str, severity: int, backend: str, seeds=None, x=None) -> np.ndarray:
    x = clips() if x is None else x
    seeds = list(range(len(x))) if seeds is None else seeds
    return backends.corrupt(x, name, severity, seeds, backend, kind="audio",
                            sample_rate=16000)[0]


@pytest.mark.parametrize("name", DETERMINISTIC_AUDIO)
def test_deterministic_audio_matches_reference_snr_35(name):
    for severity in SEVERITIES:
        ours, ref = audio(name, severity, "torch"), audio(name, severity, "reference")
        snr = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2)
                            / max(np.sum((ours - ref).astype(np.float64) ** 2), 1e-30))
        assert snr >= 35, (name, severity, snr)


def _octave_band_db(change: np.ndarray) -> np.ndarray:
    """Mean power of the change in the 7 octave bands from 62.5 Hz to 8 kHz, in dB."""
    power = np.abs(np.fft.rfft(change, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(change.shape[-1], 1 / 16000)
    edges = 62.5 * 2.0 ** np.arange(7)
    return np.array([10 * np.log10(power[:, (freqs >= lo) & (freqs < 2 * lo)].mean())
                     for lo in edges])


@pytest.mark.parametrize("name", STOCHASTIC_AUDIO)
def test_stochastic_audio_matches_reference_statistics(name):
    """128 draws (32 clips x 4 seeds). For the noises also the colour: the mean noise power
    per octave band within 1 dB of the reference's (two reference runs with other seeds
    differ by up to 0.5 dB at this count: the noise FIR is random per clip)."""
    tiled = np.tile(clips(), (4, 1))
    x = tiled.astype(np.float64)
    for severity in SEVERITIES:
        ours = audio(name, severity, "torch", x=tiled) - x
        ref = audio(name, severity, "reference", x=tiled) - x
        for got, want in ((np.abs(ours).mean(), np.abs(ref).mean()), (ours.std(), ref.std())):
            assert abs(got - want) <= 0.10 * want, (name, severity, got, want)
        if name != "time_mask":
            bands = np.abs(_octave_band_db(ours) - _octave_band_db(ref))
            assert bands.max() < 1.0, (name, severity, bands)


# ------------------------------------------------------------- seeds, batches, devices

@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_image_sample_does_not_depend_on_its_batch(name):
    images = photos(64)
    seeds = [11, 12, 13, 14]
    whole = torch_backend(images, name, 3, seeds)
    assert np.array_equal(whole, torch_backend(images, name, 3, seeds))  # run to run
    for i in (0, 3):
        assert np.array_equal(whole[i], torch_backend(images[i:i + 1], name, 3, [seeds[i]])[0])
    if name not in DETERMINISTIC_IMAGE or name == "motion_blur":
        assert not np.array_equal(whole[0], torch_backend(images[:1], name, 3, [99])[0])


@pytest.mark.parametrize("name", AUDIO_NAMES)
def test_audio_sample_does_not_depend_on_its_batch(name):
    whole = audio(name, 3, "torch", list(range(100, 132)))
    assert np.array_equal(whole, audio(name, 3, "torch", list(range(100, 132))))
    single, _ = backends.corrupt(clips()[5:6], name, 3, [105], "torch", kind="audio",
                                 sample_rate=16000)
    assert np.array_equal(whole[5], single[0])


def test_chunking_does_not_change_results(monkeypatch):
    images = np.repeat(photos(64), 3, axis=0)
    seeds = list(range(12))
    whole = torch_backend(images, "snow", 4, seeds)
    monkeypatch.setattr(backends, "CHUNK_ELEMENTS", 64 * 64 * 3 * 5)  # chunks of 5 images
    assert np.array_equal(whole, torch_backend(images, "snow", 4, seeds))


def test_backend_ids_name_library_version_and_device():
    ref = backends.backend_id("fog", "image", "reference")
    assert ref.startswith("imagecorruptions==")
    ours = backends.backend_id("fog", "image", "torch", "cpu")
    assert f"torch {torch.__version__}" in ours and "cpu" in ours and ref in ours
    assert backends.backend_id("fog", "image", "torch", "cuda") != ours
    with pytest.raises(ValueError, match="unknown corruption backend 'jax'.*reference, torch"):
        backends.backend_id("fog", "image", "jax")


def test_bad_inputs_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match="at least 32"):
        torch_backend(np.zeros((1, 16, 16, 3), np.uint8), "fog", 1, [0])
    with pytest.raises(ValueError, match="severity"):
        torch_backend(photos(64), "fog", 6, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="seeds for"):
        torch_backend(photos(64), "fog", 1, [0])
    with pytest.raises(KeyError, match="did you mean 'fog'"):
        torch_backend(photos(64), "fogg", 1, [0, 1, 2, 3])


@pytest.mark.parametrize("backend", backends.BACKENDS)
def test_clips_are_corrupted_frame_by_frame_inside_the_library(backend):
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    clips = np.broadcast_to(frame, (2, 3, 32, 32, 3)).copy()  # every frame the same image
    out, _ = backends.corrupt(clips, "gaussian_noise", 3, [7, 8], backend, kind="image")
    assert out.shape == clips.shape and out.dtype == np.uint8
    for i, seed in enumerate([7, 8]):
        for t in range(3):
            alone, _ = backends.corrupt(frame[None], "gaussian_noise", 3,
                                        [backends.frame_seed(seed, t)], backend, kind="image")
            assert np.array_equal(out[i, t], alone[0])
    assert not np.array_equal(out[0, 0], out[0, 1])  # each frame draws its own noise


def test_reference_corruptions_in_worker_processes_give_the_in_process_outputs():
    from corruptions import reference_pool

    images = np.concatenate([photos(32)] * 3)  # 12 images: the first here, 11 in workers
    audio = np.random.default_rng(3).standard_normal((11, 4000)).astype(np.float32) * 0.1
    seeds = list(range(100, 112))
    for kind, samples, name, context in (
            ("image", images, "jpeg_compression", {"scale": "cifar"}),
            ("image", images, "spatter", {"scale": "cifar"}),
            ("audio", audio, "mp3_compression", {"sample_rate": 16000})):
        function = registry.get(name, kind).reference
        alone = reference_pool.reference_map(function, samples, 2, seeds[:len(samples)],
                                             workers=1, **context)
        pooled = reference_pool.reference_map(function, samples, 2, seeds[:len(samples)],
                                              workers=3, min_seconds=0, **context)
        assert pooled.shape == samples.shape and np.array_equal(pooled, alone), name
        assert not np.array_equal(alone, samples)
    assert reference_pool._WORKERS  # the second call did use worker processes
    reference_pool.shutdown()


MP3 = registry.get("mp3_compression", "audio").reference


def test_a_failing_reference_worker_reports_its_error_and_the_next_call_starts_afresh():
    from corruptions import reference_pool

    clips = [np.full(4000, 0.1, dtype=np.float32) for _ in range(9)]
    clips[2] = clips[2].astype(np.float64)  # invalid: sent to a worker process
    with pytest.raises(RuntimeError, match="must be float32"):
        reference_pool.reference_map(MP3, clips, 2, range(9),
                                     workers=2, min_seconds=0, sample_rate=16000)
    assert not reference_pool._WORKERS  # stopped: nothing left half-read in their pipes
    clips[2] = clips[2].astype(np.float32)
    pooled = reference_pool.reference_map(MP3, clips, 2, range(9),
                                          workers=2, min_seconds=0, sample_rate=16000)
    alone = reference_pool.reference_map(MP3, clips, 2, range(9),
                                         workers=1, sample_rate=16000)
    assert reference_pool._WORKERS and np.array_equal(pooled, alone)
    reference_pool.shutdown()


def test_a_killed_reference_worker_is_replaced(monkeypatch):
    """A worker killed while idle is replaced before the next call uses it; one that dies
    during a call makes that call fail with a clear error and the next one start afresh."""
    from corruptions import reference_pool

    clips = np.random.default_rng(0).standard_normal((9, 4000)).astype(np.float32) * 0.1
    args = (MP3, clips, 2, range(9))
    first = reference_pool.reference_map(*args, workers=2, min_seconds=0, sample_rate=16000)
    killed = reference_pool._WORKERS[0].process
    killed.kill()
    killed.join()
    again = reference_pool.reference_map(*args, workers=2, min_seconds=0, sample_rate=16000)
    assert np.array_equal(again, first)
    assert reference_pool._WORKERS and reference_pool._WORKERS[0].process is not killed

    dying = reference_pool._WORKERS[0].process
    dying.kill()
    dying.join()
    monkeypatch.setattr(dying, "is_alive", lambda: True)  # it dies after the check
    with pytest.raises(RuntimeError, match="worker process died"):
        reference_pool.reference_map(*args, workers=2, min_seconds=0, sample_rate=16000)
    assert not reference_pool._WORKERS
    reference_pool.shutdown()
