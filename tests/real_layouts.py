"""Tiny copies of the real datasets in their published on-disk layouts, made of real
files: JPEG frames (Pillow), WAV audio (soundfile), FLV / MP4 videos with and without an
audio track (PyAV), MNIST idx files. Each clip's content depends on its label, so a model
can learn something from one epoch."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile
from PIL import Image


def tone(label: int, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (300 + 150 * label) * t)).astype(np.float32)


def frame(label: int, index: int, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(100 * label + index)
    image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    image[:, : (label + 1) * size // 8, label % 3] = 220  # a label-dependent bar
    return image


def write_wav(path: Path, label: int, seconds: float = 1.2, rate: int = 22050) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), tone(label, seconds, rate), rate)


def write_frames(folder: Path, label: int, count: int = 5) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(frame(label, i)).save(folder / f"{i:04d}.jpg", quality=90)


def write_video(path: Path, label: int, codec: str = "mpeg4", count: int = 8,
                audio_seconds: float | None = None) -> None:
    """A short real video (and, with audio_seconds, an AAC audio track at 16 kHz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=10)
        video.width, video.height, video.pix_fmt = 48, 48, "yuv420p"
        audio = None
        if audio_seconds:
            audio = container.add_stream("aac", rate=16000)
            audio.layout = "mono"
        for i in range(count):
            f = av.VideoFrame.from_ndarray(frame(label, i), format="rgb24")
            for packet in video.encode(f):
                container.mux(packet)
        if audio is not None:
            samples = av.AudioFrame.from_ndarray(tone(label, audio_seconds, 16000)[None],
                                                 format="flt", layout="mono")
            samples.sample_rate = 16000
            for packet in [*audio.encode(samples), *audio.encode(None)]:
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)


def cremad(root: Path) -> list[str]:
    """12 actors, 2 clips each; frames folders for some clips, FLV videos for the others."""
    emotions = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
    ids = []
    for a in range(12):
        for j in range(2):
            label = (a + j) % 6
            clip = f"{1001 + a}_IEO_{emotions[label]}_XX"
            ids.append(clip)
            write_wav(root / "AudioWAV" / f"{clip}.wav", label)
            if (a + j) % 2:
                write_frames(root / "frames" / clip, label)
            else:
                write_video(root / "VideoFlash" / f"{clip}.flv", label, codec="flv")
    return ids


def ks(root: Path) -> None:
    classes = ["playing drums", "dog barking", "chainsaw"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for split, n in (("train", 12), ("test", 6)):
        rows = []
        for i in range(n):
            label = i % 3
            clip = f"{split}{i:02d}"
            rows.append(f"{clip},{classes[label]}")
            write_wav(root / "audio" / f"{clip}.wav", label)
            if i % 2:
                write_frames(root / "frames" / clip, label)
            else:
                write_video(root / "videos" / f"{clip}.mp4", label)
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")


def ave(root: Path) -> None:
    categories = ["Church bell", "Dog", "Helicopter"]
    root.mkdir(parents=True, exist_ok=True)
    header = "Category&VideoID&Quality&StartTime&EndTime"
    lines = {"train": [], "val": [], "test": []}
    for i in range(18):
        split = "train" if i < 10 else "val" if i < 13 else "test"
        label = i % 3
        video_id = f"vid{i:03d}"
        lines[split].append(f"{categories[label]}&{video_id}&good&0&10")
        write_video(root / "AVE" / f"{video_id}.mp4", label, audio_seconds=1.5)
    (root / "Annotations.txt").write_text(
        "\n".join([header, *lines["train"], *lines["val"], *lines["test"]]) + "\n")
    for split, file in (("train", "trainSet.txt"), ("val", "valSet.txt"),
                        ("test", "testSet.txt")):
        (root / file).write_text("\n".join(lines[split]) + "\n")


def _idx(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def avmnist(root: Path) -> None:
    rng = np.random.default_rng(0)
    for part, n in (("train", 40), ("t10k", 10)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 4:24, 2 + 2 * label:6 + 2 * label] = 250
        _idx(root / "mnist" / f"{part}-images-idx3-ubyte", images)
        _idx(root / "mnist" / f"{part}-labels-idx1-ubyte", labels)
    for speaker in ("ana", "ben", "cyd"):
        for digit in range(10):
            write_wav(root / "fsdd" / "recordings" / f"{digit}_{speaker}_0.wav", digit,
                      seconds=0.6, rate=8000)


def ks50(root: Path) -> list[str]:
    """READ's layout: its class list, its JSON lists with data_path/ paths, frame_<k>
    folders. Returns the mids in index order."""
    import json

    mids = ["pumping_fist", "petting_cat", "diving_cliff"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "class_labels_indices_ks50.csv").write_text(
        "index,mid\n" + "".join(f"{i},{m}\n" for i, m in enumerate(mids)))
    for split, n in (("train", 12), ("test", 6)):
        entries = []
        for i in range(n):
            label, clip = i % 3, f"{split}-{i:02d}_x"
            write_wav(root / "audio_val256_k=50" / f"{clip}.wav", label, rate=16000)
            for k in range(10):
                folder = root / "image_mulframe_val256_k=50" / f"frame_{k}"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(frame(label, k)).save(folder / f"{clip}.jpg")
            entries.append({"video_id": clip, "wav": f"data_path/audio_val256_k=50/{clip}.wav",
                            "video_path": "data_path/image_mulframe_val256_k=50/",
                            "labels": mids[label]})
        (root / f"ks50_{split}_refer.json").write_text(json.dumps({"data": entries}))
    return mids


LAYOUTS = {"cremad": cremad, "ks": ks, "ave": ave, "avmnist": avmnist}
