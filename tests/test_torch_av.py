"""Tests of the torch backend of the audio-visual events (corruptions.torch_av): from the
same numpy draws it gives the reference's output up to float32 rounding, and the same
details, whatever the batch.

Inputs are synthetic and built here: textured colour images (gratings plus noise) and
clips of them, and audio of tones plus noise at 16 kHz (one loud clip that saturates, one
silent clip that gets no noise bed).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from corruptions import av_events as av
from corruptions import registry, torch_av
from corruptions.backends import backend_id, corrupt

SR = 16_000
N = 3
SEVERITIES = (1, 3, 5)
LAYOUTS = ("still", "clip", "gray-still", "gray-clip")
# Images: the torch side computes in float32 where the reference does (filters by FFT
# instead of OpenCV's sums, another summation order), so a value lying within ~1e-6 of a
# rounding edge can round the other way: at most one grey level, on few pixels.
MAX_GREY_LEVELS = 1
MIN_IDENTICAL = 0.99
# Audio: both sides compute in float64 (the torch side's RMS sums in another order, its
# mu-law uses torch's log1p/expm1), so the float32 outputs differ by at most about one
# float32 ulp (1.2e-7 near 1); 1e-6 leaves room for a few.
AUDIO_ATOL = 1e-6


def texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    chans = [128 + 60 * np.sin(xx / (3 + k) + seed) + 40 * np.cos(yy / (4 + k)) for k in range(3)]
    img = np.stack(chans, -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def images(layout: str, n: int = N) -> np.ndarray:
    if layout.endswith("clip"):  # T = 3
        out = np.stack([np.stack([texture(32, 40, 10 * i + t) for t in range(3)])
                        for i in range(n)])
    else:
        out = np.stack([texture(40, 48, i) for i in range(n)])
    return out[..., :1].copy() if layout.startswith("gray") else out


def audio(n: int = N, length: int = 2001) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(length) / SR
    clips = [amp * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.3 * amp * rng.standard_normal(length)
             for i, amp in enumerate((0.2, 0.9, 0.0, 0.4)[:n])]  # loud; silent
    return np.asarray(clips, dtype=np.float32)


AUDIO = audio()
POOL = list(audio(4, 2001) * 0.5) + list(AUDIO)
SEEDS = [3, 12345, 2**40 + 7]


def apply_event(name, images, audio, severity, seeds, sample_rate=None, backend="reference",
                **kw):
    """Event `name` on (images, audio): (images, audio, drawn parameters)."""
    (images, audio), drawn = corrupt((images, audio), name, severity, seeds, backend,
                                     kind="av", sample_rate=sample_rate, **kw)
    return images, audio, drawn


def both(name: str, frames: np.ndarray | None, sound: np.ndarray | None, severity: int,
         seeds=SEEDS):
    kw = dict(sample_rate=SR, pool=POOL)
    return (apply_event(name, frames, sound, severity, seeds, **kw),
            apply_event(name, frames, sound, severity, seeds, backend="torch", **kw))


def assert_images_close(ref: np.ndarray, out: np.ndarray) -> None:
    assert out.shape == ref.shape and out.dtype == ref.dtype == np.uint8
    diff = np.abs(ref.astype(np.int16) - out.astype(np.int16))
    assert diff.max() <= MAX_GREY_LEVELS, diff.max()
    assert (diff == 0).mean() >= MIN_IDENTICAL, (diff == 0).mean()


def assert_audio_close(ref: np.ndarray, out: np.ndarray) -> None:
    assert out.shape == ref.shape and out.dtype == ref.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=AUDIO_ATOL)


# ----------------------------------------------------------------------------- fidelity

@pytest.mark.parametrize("name", registry.names("av"))
@pytest.mark.parametrize("severity", SEVERITIES)
def test_torch_backend_matches_the_reference(name, severity):
    for layout in LAYOUTS:
        frames = images(layout)
        (ref_i, ref_a, ref_d), (out_i, out_a, out_d) = both(name, frames, AUDIO, severity)
        assert not np.array_equal(out_i, frames), layout  # corrupted at all
        assert_images_close(ref_i, out_i)
        assert_audio_close(ref_a, out_a)
        assert out_d == ref_d, layout
    assert not np.array_equal(out_a[:2], AUDIO[:2])
    if name != "compression":  # (whose mu-law codes silence as its nearest level, 1/(2 mu))
        np.testing.assert_array_equal(out_a[2], AUDIO[2])  # silent: no bed


@pytest.mark.parametrize("name", registry.names("av"))
def test_the_torch_functions_match_the_numpy_apply_of_the_same_draws(name):
    """torch_av's apply of each side, called directly on a batch: not the reference's code
    behind the backend's name."""
    event = av.EVENTS[name]
    p_image, p_audio = event.image_params[4], event.audio_params[4]
    frames = images("clip")
    pool = av._Pool.build(POOL)
    draws = [av._draw_sample(event, p_image, p_audio, seed, frames.shape[1:4], x, SR,
                             pool, None) for seed, x in zip(SEEDS, AUDIO, strict=True)]
    ref = np.stack([av._image_sample(event, p_image, f, d.image)
                    for f, d in zip(frames, draws, strict=True)])
    x = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255
    out = torch_av.IMAGE[name](x, p_image, [d.image for d in draws])
    assert isinstance(out, torch.Tensor) and out.shape == x.shape
    out = (out.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
    assert_images_close(ref, out)
    ref_a = np.stack([av._audio_sample(event, p_audio, a, d.audio, SR)
                      for a, d in zip(AUDIO, draws, strict=True)])
    assert_audio_close(ref_a, torch_av.apply_audio(name, p_audio, AUDIO,
                                                   [d.audio for d in draws], SR))
    assert set(torch_av.IMAGE) == set(av.EVENTS)
    assert set(torch_av.AUDIO) == {n for n, e in av.EVENTS.items() if e.audio is not None}


def test_audio_only_and_image_only_calls():
    for name in ("underwater", "compression", "interference", "rain"):
        (ref_i, ref_a, ref_d), (out_i, out_a, out_d) = both(name, None, AUDIO, 4)
        assert ref_i is None and out_i is None and out_d == ref_d
        assert_audio_close(ref_a, out_a)
        (ref_i, ref_a, ref_d), (out_i, out_a, out_d) = both(name, images("clip"), None, 4)
        assert ref_a is None and out_a is None and out_d == ref_d
        assert_images_close(ref_i, out_i)


# ------------------------------------------------------------------------- batching

@pytest.mark.parametrize("name", registry.names("av"))
def test_a_samples_output_does_not_depend_on_its_batch(name):
    frames, sound, seeds = images("clip", 4), audio(4), [5, 6, 7, 8]
    batch = apply_event(name, frames, sound, 5, seeds, SR, pool=POOL, backend="torch")
    for i in range(4):
        one = apply_event(name, frames[i:i + 1], sound[i:i + 1], 5, seeds[i:i + 1], SR,
                             pool=POOL, backend="torch")
        np.testing.assert_array_equal(one[0][0], batch[0][i])
        np.testing.assert_array_equal(one[1][0], batch[1][i])
        assert one[2] == {k: v[i:i + 1] for k, v in batch[2].items()}


def test_the_torch_backend_computes_on_the_given_device():
    """backend="torch" runs torch_av on `device`, the reference ignores it: a meta tensor
    has no data, so only the torch backend fails to bring its result back."""
    frames = images("still")
    apply_event("fire", frames, None, 3, SEEDS, backend="reference", device="meta")
    with pytest.raises(NotImplementedError, match="meta"):
        apply_event("fire", frames, None, 3, SEEDS, backend="torch", device="meta")


# ------------------------------------------------------------------ backend naming

def test_unknown_backend_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"'torhc'; did you mean 'torch'\? Valid: reference, "
                                         r"torch"):
        apply_event("rain", images("still"), AUDIO, 1, SEEDS, SR, backend="torhc")
    with pytest.raises(ValueError, match="Valid: reference, torch"):
        backend_id("rain", "av", "numpy")


def test_backend_ids():
    assert backend_id("rain", "av", "reference", "cpu") == av.BACKEND == "rambench-av/1"
    torch_id = backend_id("rain", "av", "torch", torch.device("cpu"))
    assert torch_id == (f"rambench-av-torch/1 (torch {torch.__version__}, cpu) "
                        f"~ {av.BACKEND}")
    assert backend_id("fire", "av", "torch", "cuda:1").endswith(f", cuda) ~ {av.BACKEND}")


# -------------------------------------------------------------------------- harness

def test_the_harness_passes_the_backend_through(tmp_path):
    from rambench.cache import CorruptionCache
    from rambench.datasets import Split, datasets
    from rambench.identity import corruption_code_hash
    from rambench.plan import condition_backends
    from rambench.schema import AVEvent
    from rambench.test_inputs import build_test_inputs

    dataset = datasets.get("avdigits")()
    test = dataset.split("test")
    split = Split({m: a[:8] for m, a in test.inputs.items()}, test.y[:8])
    cond = AVEvent("rain", 5, ("visual", "audio"))
    key = "3a" * 10  # the seeds derive from it: the same for both backends
    caches = {b: CorruptionCache(tmp_path / b) for b in ("reference", "torch")}
    built = {b: build_test_inputs(dataset, split, cond, 0, key, b, "cpu", cache).inputs
             for b, cache in caches.items()}
    for cache in caches.values():
        cache.flush()
    assert not np.array_equal(built["torch"]["visual"], split.inputs["visual"])
    assert_images_close(built["reference"]["visual"], built["torch"]["visual"])
    assert_audio_close(built["reference"]["audio"], built["torch"]["audio"])
    for backend in ("reference", "torch"):
        meta = json.loads((tmp_path / backend / "corrupted" / key[:2] / key / "visual.json")
                          .read_text())
        assert meta["backend"] == backend_id("rain", "av", backend, "cpu")
    kinds = {"visual": "image", "audio": "audio"}
    ids = {b: condition_backends(cond, kinds, b, torch.device("cpu"))["rain"]
           for b in ("reference", "torch")}
    assert ids["reference"] == f"{av.BACKEND}; code {corruption_code_hash('av', 'reference')}"
    assert ids["torch"] == (f"{backend_id('rain', 'av', 'torch', 'cpu')}; code "
                            f"{corruption_code_hash('av', 'torch')}")
    assert corruption_code_hash("av", "torch") != corruption_code_hash("av", "reference")
