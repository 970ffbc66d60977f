"""READ's Kinetics50-C / VGGSound-C corruptions (corruptions/read.py) against its generators
(XLearning-SCU/2024-ICLR-READ@2f11912:make_corruptions/make_c_{video,audio}.py), and the
sample-rate guard: a 48 kHz stereo recording leaves every clip's length and rate as they are."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from scipy import signal
from scipy.io import wavfile

from corruptions import image as image_corruptions
from corruptions import read
from corruptions.backends import corrupt
from rambench.errors import UsageError
from rambench.grid import expand_conditions

SR = 16_000
KINDS = {"visual": "image", "audio": "audio"}


def frames(n=2, size=40):
    rng = np.random.default_rng(0)
    return rng.integers(30, 220, (n, size, size, 3), dtype=np.uint8)


def clips(n=2, length=SR):
    t = np.arange(length) / SR
    return np.stack([0.05 * np.sin(2 * np.pi * (300 + 50 * i) * t) for i in range(n)]
                    ).astype(np.float32)


def run(name, images, audio, severity=5, seeds=(3, 4), **kw):
    (out_images, out_audio), _ = corrupt((images, audio), name, severity, list(seeds),
                                         kind="av", sample_rate=SR, **kw)
    return out_images, out_audio


def test_the_protocol_lists_reads_15_video_and_6_audio_corruptions():
    assert [n.removeprefix("read_video_") for n in read.BENCHMARK[:15]] == list(read.VIDEO)
    assert [n.removeprefix("read_audio_") for n in read.BENCHMARK[15:]] == [
        "gaussian_noise", "traffic", "crowd", "rain", "thunder", "wind"]
    from rambench.study import read as read_study

    preset = read_study("read").grid.conditions(KINDS)[1:]  # after clean
    assert [c.event for c in preset] == [*read.BENCHMARK[:15], "read_audio_gaussian_noise"]
    assert {c.severity for c in preset} == {5}


def test_a_video_corruption_is_imagenet_c_then_jpeg_85_and_leaves_the_audio():
    images, audio = frames(), clips()
    out, sound = run("read_video_brightness", images, audio)  # deterministic
    for i in range(2):
        expected = read.jpeg85(image_corruptions.reference("brightness", images[i], 5, 0,
                                                           scale="imagenet"))
        np.testing.assert_array_equal(out[i], expected)
    np.testing.assert_array_equal(sound, audio)
    name = "read_video_gaussian_noise"  # random: each frame its own seed from the clip's
    out, _ = run(name, images, None, seeds=[9, 9])
    seed = int(np.random.SeedSequence([9, zlib.crc32(name.encode())]).generate_state(1)[0])
    expected = read.jpeg85(image_corruptions.reference("gaussian_noise", images[0], 5, seed,
                                                       scale="imagenet"))
    np.testing.assert_array_equal(out[0], expected)


@pytest.mark.parametrize("severity", [1, 5])
def test_gaussian_audio_is_absolute_and_clipped_as_16_bit_pcm(severity):
    images, audio = frames(), clips()
    out, sound = run("read_audio_gaussian_noise", images, audio, severity=severity)
    np.testing.assert_array_equal(out, images)
    name = "read_audio_gaussian_noise"
    for i, seed in enumerate((3, 4)):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        expected = np.clip(audio[i] + rng.normal(0, read.GAUSSIAN_SIGMA[severity - 1], SR),
                           -1, 1 - 2**-15).astype(np.float32)
        np.testing.assert_array_equal(sound[i], expected)


def test_a_48k_stereo_recording_leaves_every_clips_length_and_rate(tmp_path):
    """READ's mixing turned its clips into 48 kHz stereo; here the recording is mixed to
    mono at the clip's rate, raised by +8 dB at severity 5, from its first sample."""
    n48 = 48_000 // 2  # 0.5 s: tiled to the 1 s clip
    tone = 0.01 * np.sin(2 * np.pi * 500 * np.arange(n48) / 48_000)
    wavfile.write(tmp_path / "rain.wav", 48_000, np.stack([tone, tone], 1
                                                          ).astype(np.float32))
    audio = clips()
    for severity in (1, 5):
        _, sound = run("read_audio_rain", None, audio, severity=severity, noise_dir=tmp_path)
        assert sound.shape == audio.shape and sound.dtype == np.float32
        added = sound.astype(np.float64) - audio
        gain = 10 ** ((1, 2, 4, 6, 8)[severity - 1] / 20)
        mono = signal.resample_poly(tone.astype(np.float32).astype(np.float64), 1, 3)
        expected = gain * np.tile(mono, 2)  # 8000 samples at 16 kHz, from the first, twice
        # float32 rounding of the clip and of the output (values below 0.1)
        np.testing.assert_allclose(added[0], expected, rtol=0, atol=2e-8)
    with pytest.raises(FileNotFoundError, match="weather_audios"):
        run("read_audio_thunder", None, audio, noise_dir=tmp_path)


def test_the_grid_checks_reads_recordings(tmp_path):
    with pytest.raises(UsageError, match=r"read_audio_traffic, read_audio_crowd, "
                                         r"read_audio_rain, read_audio_thunder, "
                                         r"read_audio_wind mix READ's recordings"):
        expand_conditions({"av": {"events": "read"}}, KINDS, "g")
    for name in ("traffic", "crowd", "rain", "thunder", "wind"):
        wavfile.write(tmp_path / f"{name}.wav", 8000, np.full(80, 0.1, np.float32))
    assert len(expand_conditions({"clean": False, "av": {
        "events": "read", "severities": [5], "noise_dir": str(tmp_path)}}, KINDS, "g")) == 21
    (tmp_path / "traffic.wav").unlink()
    with pytest.raises(UsageError, match=r"no traffic.wav in"):
        expand_conditions({"av": {"events": ["read_audio_traffic"],
                                  "noise_dir": str(tmp_path)}}, KINDS, "g")
    wavfile.write(tmp_path / "traffic.wav", 8000, np.full(80, 0.1, np.float32))
    first = expand_conditions({"av": {"events": ["read_audio_traffic"],
                                      "noise_dir": str(tmp_path)}}, KINDS, "g")[1]
    wavfile.write(tmp_path / "traffic.wav", 8000, np.full(80, 0.2, np.float32))
    second = expand_conditions({"av": {"events": ["read_audio_traffic"],
                                       "noise_dir": str(tmp_path)}}, KINDS, "g")[1]
    assert first.noise_digest != second.noise_digest


def test_reads_data_layout_prepares_with_its_lists_and_frame_folders(tmp_path):
    """ks50 reads READ's layout: its class list by index, its JSON lists (paths under
    data_path/), each clip's frames from frame_0..frame_9 in time order."""
    from rambench.datasets import datasets
    from tests import real_layouts
    from tests.helpers import invoke_cli

    mids = real_layouts.ks50(tmp_path / "raw")
    out = invoke_cli("prepare", "ks50", "--root", "raw", "--size", "32", "--data-dir", "data",
                     cwd=tmp_path).stdout
    assert "18 clips prepared" in out or "clips prepared in" in out
    dataset = datasets.get("ks50")(tmp_path / "data" / "ks50")
    assert dataset.class_names == tuple(mids)
    sizes = {s: len(dataset.split(s)) for s in ("train", "val", "test")}
    assert sizes["test"] == 6 and sizes["train"] + sizes["val"] == 12 and sizes["val"] >= 1
    test = dataset.split("test")
    assert list(test.y) == [i % 3 for i in range(6)]
    visual = np.asarray(test.inputs["visual"])
    assert visual.shape[1:] == (3, 32, 32, 3)
    # frame k of a label-l clip has the bar of label l: the frames are the listed clip's
    for i, label in enumerate(test.y):
        bar = visual[i, :, :, : (label + 1) * 32 // 8 - 1, label % 3]
        assert bar.mean() > 150, (i, label)
    adapter = datasets.get("ks50").adapter
    clip = next(c for c in adapter.scan(tmp_path / "raw")[1] if c.split == "test")
    files = adapter.visual(clip, datasets.get("ks50").settings(size=32, frames=10))
    assert len(files) == 10


def test_sets_reads_generators_wrote_are_prepared_and_evaluated(tmp_path, monkeypatch):
    """READ's -C folders, listed by its video|audio/<corruption>/severity_<s>.json: each
    decoded row for row with the test split (`--corrupted`), then a grid's `provided: all`
    evaluates them with the dataset's trained model."""
    import json as jsonlib

    from PIL import Image

    from rambench.datasets import datasets
    from tests import real_layouts
    from tests.helpers import invoke_cli

    raw = tmp_path / "raw"
    real_layouts.ks50(raw)
    test = jsonlib.loads((raw / "ks50_test_refer.json").read_text())["data"]
    dark = raw / "image_mulframe_val256_k-C" / "fog" / "severity_5"
    video, audio = [], []
    for i, entry in enumerate(test):  # clip i's corrupted frames are flat at 7 + 20 i
        for k in range(10):
            folder = dark / f"frame_{k}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((48, 48, 3), 7 + 20 * i, np.uint8)).save(
                folder / f"{entry['video_id']}.jpg")
        wav = raw / "audio-C" / "rain" / "severity_5" / f"{entry['video_id']}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        wavfile.write(wav, 16_000, np.zeros(16_000, np.float32))
        video.append({**entry, "video_path": "data_path/image_mulframe_val256_k-C/fog/"
                                             "severity_5/"})
        audio.append({**entry, "wav": f"data_path/audio-C/rain/severity_5/"
                                      f"{entry['video_id']}.wav"})
    lists = tmp_path / "json"
    for side, corruption, entries in (("video", "fog", video), ("audio", "rain", audio)):
        (lists / side / corruption).mkdir(parents=True)
        (lists / side / corruption / "severity_5.json").write_text(
            jsonlib.dumps({"data": entries[::-1]}))  # any order: matched by id
    out = invoke_cli("prepare", "ks50", "--root", "raw", "--size", "32", "--data-dir", "data",
                     "--corrupted", str(lists), cwd=tmp_path).stdout
    assert "2 provided test sets (audio-rain-5, video-fog-5)" in out
    dataset = datasets.get("ks50")(tmp_path / "data" / "ks50")
    provided = dataset.provided()
    assert {k: (v["modality"], v["corruption"], v["severity"]) for k, v in provided.items()} \
        == {"video-fog-5": ("visual", "fog", 5), "audio-rain-5": ("audio", "rain", 5)}
    frames = dataset.provided_inputs("video-fog-5")
    clean = dataset.split("test")
    assert frames.shape == np.asarray(clean.inputs["visual"]).shape
    order = [sorted(e["video_id"] for e in test).index(e["video_id"]) for e in test]
    for i, row in zip(order, range(len(test)), strict=True):  # row of clip i: its frames
        assert np.abs(frames[i].astype(int) - (7 + 20 * row)).max() <= 2  # JPEG-decoded
    np.testing.assert_array_equal(dataset.provided_inputs("audio-rain-5"), 0)
    # a study evaluates them beside the clean test set
    monkeypatch.setenv("RAMBENCH_DATA_DIR", str(tmp_path / "data"))
    grid = tmp_path / "g.yaml"
    grid.write_text("dataset: ks50\nconditions:\n  clean: true\n  provided: all\n")
    invoke_cli("run", "--method", "late_fusion", "--grid", str(grid), "--study", "p",
               "--out", str(tmp_path), "--epochs", "1", cwd=tmp_path)
    rows = invoke_cli("table", "--study", "p", "--out", str(tmp_path), "--view",
                      "conditions", cwd=tmp_path).stdout
    assert "provided video-fog-5" in rows and "provided audio-rain-5" in rows
    bad = invoke_cli("run", "--method", "late_fusion", "--grid", str(grid), "--dataset",
                     "avdigits", "--out", str(tmp_path), "--study", "q", cwd=tmp_path,
                     check=False)
    assert bad.exit_code == 2 and "this dataset has no provided test sets" in bad.stderr
