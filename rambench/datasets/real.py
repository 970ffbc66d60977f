"""Adapters for the real audio-visual datasets, each reading the layout its distributors
publish (the user downloads the data; rambench never downloads). Prepare with
`rambench prepare NAME --root PATH`; the layouts are in each adapter's `layout` and in
the README."""

from __future__ import annotations

import csv
import gzip
import json
import re
import zlib
from pathlib import Path

import numpy as np

from rambench.datasets.base import datasets
from rambench.datasets.prepared import (
    Adapter,
    Clip,
    PrepareSettings,
    load_defaults,
    prepared_dataset,
)
from rambench.errors import UsageError


def _held_out(key: str, buckets: int = 10) -> bool:
    """A stable ~1/buckets share of keys (val carved from train where no val list exists)."""
    return zlib.crc32(key.encode()) % buckets == 0


def _visual_source(root: Path, clip_id: str, video_dirs: tuple[str, ...],
                   suffixes: tuple[str, ...]) -> dict[str, Path]:
    frames = root / "frames" / clip_id
    if frames.is_dir():
        return {"frames": frames}
    for folder in video_dirs:
        for suffix in suffixes:
            path = root / folder / f"{clip_id}{suffix}"
            if path.exists():
                return {"video": path}
    return {"video": root / video_dirs[0] / f"{clip_id}{suffixes[0]}"}  # reported if unreadable


CREMAD_NAME = re.compile(r"\d+_[A-Z]+_[A-Z]+_[A-Z0-9]+")
FSDD_NAME = re.compile(r"\d_[^_]+_\d+")


class CremaD(Adapter):
    name = "cremad"
    version = "1"
    classes = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
    layout = """\
  ROOT/AudioWAV/1001_DFA_ANG_XX.wav ...     7,442 clips: actor_sentence_emotion_level
  ROOT/VideoFlash/1001_DFA_ANG_XX.flv ...   videos, or instead
  ROOT/frames/1001_DFA_ANG_XX/*.jpg ...     pre-extracted frames, one folder per clip
  ROOT/train.csv, ROOT/test.csv             optional: OGM-GE's split (rows: clip,label)"""

    def scan(self, root: Path):
        wavs = sorted((root / "AudioWAV").glob("*.wav"))
        if not wavs:
            raise self.missing(root, "AudioWAV/*.wav")
        for wav in wavs:
            if not CREMAD_NAME.fullmatch(wav.stem):
                raise UsageError(f"cremad: {wav} is not named actor_sentence_emotion_level "
                                 "(e.g. 1001_DFA_ANG_XX.wav). Expected layout:\n"
                                 f"{self.layout}")
        split_of = self._csv_split(root)
        actors = sorted({w.stem.split("_")[0] for w in wavs})
        test_actors, val_actors = set(actors[::10]), set(actors[5::10])
        if not val_actors and len(actors) >= 3:
            # fewer than 6 actors (a subset): the last training actor validates
            val_actors = {[a for a in actors if a not in test_actors][-1]}
        clips = []
        for wav in wavs:
            clip_id = wav.stem
            actor, _, emotion = clip_id.split("_")[:3]
            if emotion not in self.classes:
                continue
            if split_of:
                split = split_of.get(clip_id)
                if split is None:
                    continue
                if split == "train" and actor in val_actors:
                    split = "val"
            else:
                split = "test" if actor in test_actors else "val" if actor in val_actors \
                    else "train"
            clips.append(Clip(clip_id, self.classes.index(emotion), split, audio=wav,
                              **_visual_source(root, clip_id, ("VideoFlash",), (".flv",))))
        return self.classes, clips

    @staticmethod
    def _csv_split(root: Path) -> dict[str, str]:
        split_of = {}
        for split in ("train", "test"):
            path = root / f"{split}.csv"
            if path.exists():
                with open(path, newline="") as f:
                    for row in csv.reader(f):
                        if row:
                            split_of[Path(row[0]).stem] = split
        return split_of


class KineticsSounds(Adapter):
    name = "ks"
    version = "1"
    layout = """\
  ROOT/classes.txt                    the 31 class names, one per line
  ROOT/train.txt, ROOT/test.txt       rows: clip_id,class_name (ROOT/val.txt optional)
  ROOT/audio/<clip_id>.wav            audio
  ROOT/frames/<clip_id>/*.jpg         pre-extracted frames, or instead
  ROOT/videos/<clip_id>.mp4           the clips"""

    def scan(self, root: Path):
        if not (root / "classes.txt").exists():
            raise self.missing(root, "classes.txt")
        classes = tuple(line.strip() for line in (root / "classes.txt").read_text().splitlines()
                        if line.strip())
        clips = []
        for split in ("train", "val", "test"):
            path = root / f"{split}.txt"
            if not path.exists():
                if split == "val":
                    continue
                raise self.missing(root, f"{split}.txt")
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                if "," not in line:
                    raise UsageError(f"ks: {path}: line {line!r} is not clip_id,class_name. "
                                     f"Expected layout:\n{self.layout}")
                clip_id, label = (p.strip() for p in line.split(",", 1))
                if label not in classes:
                    raise self.missing(root, f"class {label!r} of {path.name} in classes.txt")
                s = split
                if split == "train" and not (root / "val.txt").exists() and _held_out(clip_id):
                    s = "val"
                clips.append(Clip(clip_id, classes.index(label), s,
                                  audio=root / "audio" / f"{clip_id}.wav",
                                  **_visual_source(root, clip_id, ("videos",),
                                                   (".mp4", ".mkv", ".avi", ".webm"))))
        return classes, clips


class AVE(Adapter):
    name = "ave"
    version = "1"
    layout = """\
  ROOT/Annotations.txt                  Category&VideoID&Quality&StartTime&EndTime
  ROOT/trainSet.txt, valSet.txt, testSet.txt   the same fields, one video per line
  ROOT/AVE/<VideoID>.mp4                the 4,143 ten-second videos
  ROOT/audio/<VideoID>.wav              optional; otherwise the video's audio track"""

    def scan(self, root: Path):
        if not (root / "Annotations.txt").exists():
            raise self.missing(root, "Annotations.txt")
        classes = tuple(sorted({row[0] for row in self._rows(root / "Annotations.txt")}))
        clips = []
        for split, file in (("train", "trainSet.txt"), ("val", "valSet.txt"),
                            ("test", "testSet.txt")):
            if not (root / file).exists():
                raise self.missing(root, file)
            for category, video_id, *_ in self._rows(root / file):
                wav = root / "audio" / f"{video_id}.wav"
                clips.append(Clip(video_id, classes.index(category), split,
                                  audio=wav if wav.exists() else None,
                                  video=root / "AVE" / f"{video_id}.mp4"))
        return classes, clips

    @staticmethod
    def _rows(path: Path) -> list[list[str]]:
        return [line.strip().split("&") for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("Category&")]


class AVMNIST(Adapter):
    """MNIST images paired with Free Spoken Digit Dataset recordings of the same digit.

    Speakers are split disjointly (sorted names: the last is test, the one before val);
    MNIST's t10k images are the test split, its last 5,000 training images val. Where only
    the t10k files are at hand (the training images are 47 MB, and many mirrors leave them
    out), the t10k images are split instead: the first 80 % train, the next 10 % val, the
    last 10 % test. Each image gets a recording of its digit from its split's speakers,
    drawn with a fixed seed."""

    name = "avmnist"
    version = "1"
    classes = tuple(str(d) for d in range(10))
    layout = """\
  ROOT/mnist/train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]   (optional)
  ROOT/mnist/t10k-images-idx3-ubyte[.gz],  t10k-labels-idx1-ubyte[.gz]
  ROOT/fsdd/recordings/{digit}_{speaker}_{index}.wav   Free Spoken Digit Dataset"""

    def scan(self, root: Path):
        self._root = root  # `visual` reads the images from here
        wavs = sorted((root / "fsdd" / "recordings").glob("*_*_*.wav"))
        if not wavs:
            raise self.missing(root, "fsdd/recordings/*.wav")
        for wav in wavs:
            if not FSDD_NAME.fullmatch(wav.stem):
                raise UsageError(f"avmnist: {wav} is not named digit_speaker_index (e.g. "
                                 f"7_jackson_32.wav). Expected layout:\n{self.layout}")
        speakers = sorted({w.stem.split("_")[1] for w in wavs})
        if len(speakers) < 3:
            raise self.missing(root, "recordings of at least 3 speakers")
        speaker_split = {s: "train" for s in speakers[:-2]}
        speaker_split.update({speakers[-2]: "val", speakers[-1]: "test"})
        by_split_digit: dict[tuple[str, int], list[Path]] = {}
        for w in wavs:
            digit, speaker, _ = w.stem.split("_")
            by_split_digit.setdefault((speaker_split[speaker], int(digit)), []).append(w)
        rng = np.random.default_rng(0)
        clips = []
        parts: tuple[tuple[str, str | None], ...] = (("train", None), ("t10k", "test"))
        if not self._exists(root, "train-labels-idx1-ubyte"):
            parts = (("t10k", None),)  # t10k alone: split 80 / 10 / 10
        for part, split_of in parts:
            labels = self._idx(root, f"{part}-labels-idx1-ubyte")
            n_val = 5000 if split_of is None and len(labels) > 10000 else len(labels) // 10
            n_test = len(labels) // 10 if len(parts) == 1 else 0
            for i, label in enumerate(labels.tolist()):
                split = split_of or ("test" if i >= len(labels) - n_test else
                                     "val" if i >= len(labels) - n_test - n_val else "train")
                pool = by_split_digit.get((split, label))
                if not pool:
                    raise self.missing(root, f"a recording of digit {label} for the "
                                             f"{split} speakers")
                clips.append(Clip(f"{part}-{i:05d}", label, split,
                                  audio=pool[int(rng.integers(len(pool)))]))
        return self.classes, clips

    def visual(self, clip: Clip, s: PrepareSettings, candidates: int = 1) -> np.ndarray:
        from PIL import Image

        part, index = clip.id.split("-")
        image = Image.fromarray(self._images(self._root, part)[int(index)])
        return np.asarray(image.resize((s.size, s.size), Image.BILINEAR))[None, ..., None]

    def _images(self, root: Path, part: str) -> np.ndarray:
        cache = self.__dict__.setdefault("_image_cache", {})
        if part not in cache:
            cache[part] = self._idx(root, f"{part}-images-idx3-ubyte")
        return cache[part]

    @staticmethod
    def _exists(root: Path, stem: str) -> bool:
        return any(path.exists() for path in (root / "mnist" / stem,
                                              root / "mnist" / f"{stem}.gz"))

    def _idx(self, root: Path, stem: str) -> np.ndarray:
        """An MNIST idx file (optionally gzipped) as a uint8 array."""
        for path in (root / "mnist" / stem, root / "mnist" / f"{stem}.gz"):
            if path.exists():
                data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" \
                    else path.read_bytes()
                dims = data[3]
                shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
                return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
        raise self.missing(root, f"mnist/{stem}[.gz]")


class ReadLayout(Adapter):
    """The data layout of READ's benchmarks (XLearning-SCU/2024-ICLR-READ: its
    `json_csv_files/` lists and the frames and audio of its data download): Kinetics50 and
    VGGSound, the clean clips its Kinetics50-C / VGGSound-C are made from (`--grid read`
    corrupts them as READ's generators do). The lists give each clip's `video_id`, its
    `wav`, its `video_path` (a folder of `frame_0` ... `frame_9` sub-folders holding
    `<video_id>.jpg`) and its class (`labels`, a `mid` of the class list); paths are read as
    listed, under ROOT, or under ROOT without their first folder (READ writes them under
    `data_path/`). Without a validation list, a fixed 1/10 of train (by a hash of the id)."""

    version = "1"

    def __init__(self, name: str, classes_csv: str, prefix: str):
        self.name, self.classes_csv, self.prefix = name, classes_csv, prefix
        self.layout = f"""\
  ROOT/{classes_csv}                 index,mid[,display_name]: the classes
  ROOT/{prefix}_train_refer.json, ROOT/{prefix}_test_refer.json   (optional {prefix}_val_refer.json)
                                     {{"data": [{{"video_id", "wav", "video_path", "labels"}}]}}
  ROOT/<wav>                         16 kHz audio, as listed (a leading data_path/ is dropped)
  ROOT/<video_path>/frame_<k>/<video_id>.jpg   the clip's frames, k = 0..9"""

    def _path(self, root: Path, listed: str) -> Path:
        path = Path(listed)
        tail = Path(*path.parts[1:]) if len(path.parts) > 1 else path
        for candidate in (path, root / path, root / tail):
            if candidate.exists():
                return candidate
        return root / tail  # reported if unreadable

    def scan(self, root: Path):
        if not (root / self.classes_csv).exists():
            raise self.missing(root, self.classes_csv)
        with open(root / self.classes_csv, newline="") as f:
            rows = [row for row in csv.DictReader(f)]
        mids = [row["mid"] for row in sorted(rows, key=lambda r: int(r["index"]))]
        clips = []
        for split in ("train", "val", "test"):
            path = root / f"{self.prefix}_{split}_refer.json"
            if not path.exists():
                if split == "val":
                    continue
                raise self.missing(root, path.name)
            for entry in json.loads(path.read_text())["data"]:
                clip_id, label = entry["video_id"], entry["labels"]
                if label not in mids:
                    raise self.missing(root, f"class {label!r} of {path.name} in "
                                             f"{self.classes_csv}")
                s = split
                if split == "train" and not (root / f"{self.prefix}_val_refer.json").exists() \
                        and _held_out(clip_id):
                    s = "val"
                clips.append(Clip(clip_id, mids.index(label), s,
                                  audio=self._path(root, entry["wav"]),
                                  frames=self._path(root, entry["video_path"])))
        return tuple(mids), clips

    def corrupted_lists(self, root: Path, lists: Path):
        """READ's lists of the sets its generators wrote (its data_process scripts):
        `lists/video/<corruption>/severity_<s>.json` (corrupted frames, clean audio) and
        `lists/audio/<corruption>/severity_<s>.json` (corrupted audio, clean frames), named
        `video-<corruption>-<s>` and `audio-<corruption>-<s>`."""
        found = {}
        for path in sorted(lists.glob("*/*/severity_*.json")):
            side, corruption = path.parent.parent.name, path.parent.name
            if side not in ("video", "audio") or not path.stem[9:].isdigit():
                continue
            clips = {}
            for entry in json.loads(path.read_text())["data"]:
                clips[entry["video_id"]] = Clip(
                    entry["video_id"], 0, "test", audio=self._path(root, entry["wav"]),
                    frames=self._path(root, entry["video_path"]))
            found[f"{side}-{corruption}-{path.stem[9:]}"] = (
                "visual" if side == "video" else "audio", corruption, int(path.stem[9:]),
                path, clips)
        if not found:
            raise UsageError(f"{self.name}: no READ lists (video|audio/<corruption>/"
                             f"severity_<s>.json) under {lists}")
        return found

    def visual(self, clip: Clip, s: PrepareSettings, candidates: int = 1) -> np.ndarray:
        from rambench.datasets import media

        folders = sorted((d for d in clip.frames.glob("frame_*") if d.name[6:].isdigit()),
                         key=lambda d: int(d.name[6:]))
        files = [d / f"{clip.id}.jpg" for d in folders if (d / f"{clip.id}.jpg").exists()]
        if not files:
            raise ValueError(f"no frame_<k>/{clip.id}.jpg under {clip.frames}")
        return media.frames_from_files(files, s.frames, s.size, s.channels, candidates)


DESCRIPTIONS = {
    "cremad": "CREMA-D: 7,442 clips of 91 actors, 6 emotions (frames + speech)",
    "ks": "Kinetics-Sounds: 31 action classes with characteristic sounds",
    "ave": "AVE: 4,143 ten-second videos, 28 audio-visual event classes",
    "avmnist": "AV-MNIST: MNIST digits paired with spoken digits (FSDD)",
    "ks50": "Kinetics50: READ's 50 Kinetics-400 classes (its data layout; Kinetics50-C)",
    "vggsound": "VGGSound: 309 classes of READ's copy (its data layout; VGGSound-C)",
}

for _adapter in (CremaD(), KineticsSounds(), AVE(), AVMNIST(),
                 ReadLayout("ks50", "class_labels_indices_ks50.csv", "ks50"),
                 ReadLayout("vggsound", "class_labels_indices_vgg.csv", "vgg")):
    assert load_defaults(_adapter.name)  # every adapter has its YAML defaults
    datasets.register(_adapter.name)(prepared_dataset(_adapter, DESCRIPTIONS[_adapter.name]))
