"""Real datasets: decode once with `rambench prepare`, then read memory-mapped arrays.

An adapter knows one dataset's published layout: it lists the clips (`scan`) and decodes
one clip's frames and audio. `prepare` turns that into a versioned cache under
`data_dir()/NAME/`: `visual.npy` (uint8, (N, T, H, W, C), or (N, H, W, C) for one frame),
`audio.npy` (int16, (N, samples)), `labels.npy` and a `manifest.json` with the settings,
the class names, each split's row range, the excluded files and every array's SHA-256.

* Re-running with the same settings and files is a no-op.
* Work in progress lives in `NAME.partial/` with a per-clip "done" mask, flushed as it
  goes; an interrupted prepare continues where it stopped.
* Unreadable files are listed by name in the error; with `skip_bad` they are excluded and
  counted in the manifest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from rambench._fs import sha256_file, user_cache_dir
from rambench.datasets.base import SPLITS, Dataset, ModalitySpec, Split
from rambench.errors import UsageError

DATA_ENV_VAR = "RAMBENCH_DATA_DIR"
DEFAULTS_DIR = Path(__file__).with_name("defaults")


def data_dir() -> Path:
    """$RAMBENCH_DATA_DIR, else ~/.cache/rambench/datasets."""
    return user_cache_dir(DATA_ENV_VAR, "datasets")


def load_defaults(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEFAULTS_DIR / f"{name}.yaml").read_text())


@dataclass(frozen=True)
class Clip:
    id: str
    label: int
    split: str  # train | val | test
    audio: Path | None = None  # an audio file
    video: Path | None = None  # a video file (frames, and audio when `audio` is None)
    frames: Path | None = None  # a folder of frame images


@dataclass(frozen=True)
class PrepareSettings:
    frames: int  # frames per clip
    size: int  # frame side in pixels
    channels: int  # 3 (RGB) or 1 (grey)
    sample_rate: int
    seconds: float
    candidates: int = 3  # frames kept per segment for training clips (one drawn per epoch)
    # each clip's audio scaled to this peak amplitude (None: as recorded). The audio
    # encoders' log-mel floor is absolute, so recordings far quieter than full scale sit
    # near it (AV-MNIST's FSDD clips: RMS 0.007); a silent clip stays silent
    peak: float | None = None


class Adapter(ABC):
    """One dataset's on-disk layout."""

    name: str
    version: str  # bump when decoding or the split rule changes
    layout: str  # the expected directory tree, shown when the root does not match

    @abstractmethod
    def scan(self, root: Path) -> tuple[tuple[str, ...], list[Clip]]:
        """(class names, clips). Raise `missing(root, what)` when the layout is not there."""

    def visual(self, clip: Clip, s: PrepareSettings, candidates: int = 1) -> np.ndarray:
        """(frames * candidates, size, size, channels) uint8, segment by segment."""
        from rambench.datasets import media

        if clip.frames is not None:
            return media.frames_from_folder(clip.frames, s.frames, s.size, s.channels,
                                            candidates)
        return media.frames_from_video(clip.video, s.frames, s.size, s.channels, candidates)

    def audio(self, clip: Clip, s: PrepareSettings) -> np.ndarray:
        from rambench.datasets import media

        if clip.audio is not None:
            return media.read_audio(clip.audio, s.sample_rate, s.seconds)
        return media.audio_from_video(clip.video, s.sample_rate, s.seconds)

    def corrupted_lists(self, root: Path, lists: Path
                        ) -> dict[str, tuple[str, str, int, Path, dict[str, Clip]]]:
        """Corrupted test sets another benchmark's generators wrote, listed under `lists`:
        name -> (modality, corruption, severity, list file, clip id -> its clip)."""
        raise UsageError(f"{self.name}: no corrupted test sets of another benchmark are "
                         "read for this dataset (--corrupted)")

    def missing(self, root: Path, what: str) -> UsageError:
        return UsageError(f"{self.name}: {what} not found under {root}. Expected layout:\n"
                          f"{self.layout}")


def check_splits(adapter: Adapter, classes, clips) -> None:
    """Refuse, before decoding anything, a layout whose split rule leaves a split empty or
    a class absent from the training split (e.g. a small subset of a dataset)."""
    counts = {split: sum(c.split == split for c in clips) for split in SPLITS}
    empty = [split for split, n in counts.items() if n == 0]
    if empty:
        raise UsageError(
            f"{adapter.name}: the split rule leaves {', '.join(empty)} empty (clips per split: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f"); add clips (e.g. more speakers or actors) or the split files. Expected "
              f"layout:\n{adapter.layout}")
    seen = {c.label for c in clips if c.split == "train"}
    absent = [classes[i] for i in range(len(classes)) if i not in seen]
    if absent:
        raise UsageError(f"{adapter.name}: no training clip of class(es) "
                         f"{', '.join(map(str, absent))}; every class needs training clips")


@dataclass
class PrepareReport:
    folder: Path
    clips: int
    excluded: int
    already_done: bool


def prepare(adapter: Adapter, root: str | Path, settings: PrepareSettings,
            skip_bad: bool = False, out: Path | None = None,
            progress: bool = True) -> PrepareReport:
    """Decode the dataset under `root` into the cache folder (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{adapter.name}: --root {root} is not a folder. Expected layout:\n"
                         f"{adapter.layout}")
    classes, clips = adapter.scan(root)
    if not clips:
        raise adapter.missing(root, "no clips")
    check_splits(adapter, classes, clips)
    order = {s: i for i, s in enumerate(SPLITS)}
    clips = sorted(clips, key=lambda c: (order[c.split], c.id))  # each split contiguous
    # a setting left at None is left out: one added later keeps the earlier versions
    plan = {"dataset": adapter.name, "adapter_version": adapter.version,
            "settings": {k: v for k, v in asdict(settings).items() if v is not None},
            "classes": list(classes),
            "clips": [c.id for c in clips]}
    plan_hash = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    final = (out or data_dir()) / adapter.name
    manifest_path = final / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("plan_hash") == plan_hash and (skip_bad or not manifest["excluded"]):
            excluded = len(manifest["excluded"])
            return PrepareReport(final, len(clips) - excluded, excluded, True)
        shutil.rmtree(final)  # other settings or files: prepare afresh
    elif final.exists():
        shutil.rmtree(final)  # no manifest: a damaged or incomplete cache
    work = final.with_name(adapter.name + ".partial")
    if work.exists() and _read_json(work / "plan.json").get("plan_hash") != plan_hash:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "plan.json").write_text(json.dumps({"plan_hash": plan_hash, **plan}))

    n = len(clips)
    frame_shape = (settings.size, settings.size, settings.channels)
    visual_shape = (n, *frame_shape) if settings.frames == 1 else \
        (n, settings.frames, *frame_shape)
    samples = int(round(settings.seconds * settings.sample_rate))
    visual = _open(work / "visual.npy", visual_shape, np.uint8)
    # training clips also keep `candidates` frames per segment (one is drawn per epoch)
    n_train = sum(c.split == "train" for c in clips)  # the first rows: splits are sorted
    candidates = settings.candidates if settings.frames > 1 else 1
    train_shape = (n_train, settings.frames, candidates, *frame_shape)
    visual_train = _open(work / "visual_train.npy", train_shape, np.uint8) \
        if candidates > 1 else None
    audio = _open(work / "audio.npy", (n, samples), np.int16)
    done = _open(work / "done.npy", (n,), np.bool_)
    bad: dict[str, str] = {}  # clip id -> why; retried on every run
    todo = [i for i in range(n) if not done[i]]
    bar = tqdm(todo, desc=f"prepare {adapter.name}", unit="clip",
               disable=None if progress else True)
    for count, i in enumerate(bar, start=1):
        clip = clips[i]
        per_segment = candidates if clip.split == "train" else 1
        try:
            frames = adapter.visual(clip, settings, per_segment)
            wave = adapter.audio(clip, settings)
            if settings.peak is not None:
                wave = wave * (settings.peak / max(float(np.abs(wave).max(initial=0.0)),
                                                   1e-12))
        except Exception as err:  # noqa: BLE001 - any decoding failure names the file
            bad[clip.id] = f"{_source(clip)}: {type(err).__name__}: {err}"
            continue
        if per_segment > 1:
            visual_train[i] = frames.reshape(train_shape[1:])
            frames = frames.reshape(train_shape[1:])[:, per_segment // 2]  # the centres
        visual[i] = frames.reshape(visual_shape[1:])
        audio[i] = np.clip(np.round(wave * 32767), -32768, 32767).astype(np.int16)
        done[i] = True
        if count % 64 == 0:
            _flush(visual, visual_train, audio, done)
    _flush(visual, visual_train, audio, done)
    del visual, visual_train, audio, done
    if bad and not skip_bad:
        listed = "\n".join(f"  {why}" for why in list(bad.values())[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise UsageError(f"{adapter.name}: {len(bad)} file(s) could not be read:\n{listed}"
                         f"{more}\nFix or remove them, or pass --skip-bad to leave those "
                         f"clips out (the rest is kept in {work})")

    labels = np.array([c.label for c in clips], dtype=np.int64)
    np.save(work / "labels.npy", labels)
    valid = np.array([c.id not in bad for c in clips])
    np.save(work / "valid.npy", valid)
    (work / "done.npy").unlink()
    splits = {}
    for split in SPLITS:
        rows = [i for i, c in enumerate(clips) if c.split == split]
        splits[split] = [rows[0], rows[-1] + 1] if rows else [0, 0]
    manifest = {
        **plan, "plan_hash": plan_hash, "version": f"{adapter.version}-{plan_hash[:10]}",
        "source_root": str(root.resolve()), "splits": splits,
        "excluded": sorted(bad.values()),
        "arrays": {path.stem: {"shape": list(np.load(path, mmap_mode="r").shape),
                               "sha256": sha256_file(path)}
                   for path in sorted(work.glob("*.npy"))},
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    os.replace(work, final)
    return PrepareReport(final, n - len(bad), len(bad), False)


PROVIDED = "provided"  # the sub-folder of a prepared dataset holding provided test sets


def prepare_provided(adapter: Adapter, root: str | Path, lists: str | Path,
                     out: Path | None = None, progress: bool = True) -> list[str]:
    """Decode corrupted test sets that another benchmark's generators wrote (READ's
    `-C` folders, listed by its JSON lists under `lists`, `adapter.corrupted_lists`) into
    `<prepared dataset>/provided/<name>/`: the corrupted modality of every test clip of
    the prepared dataset, row for row, decoded with its settings. Returns the names."""
    final = (out or data_dir()) / adapter.name
    if not (final / "manifest.json").exists():
        raise UsageError(f"{adapter.name}: prepare the clean dataset first (rambench prepare "
                         f"{adapter.name} --root PATH); its test split orders the provided sets")
    manifest = json.loads((final / "manifest.json").read_text())
    settings = PrepareSettings(**manifest["settings"])
    start, stop = manifest["splits"]["test"]
    test_ids = manifest["clips"][start:stop]
    names = []
    for name, (modality, corruption, severity, path, clips) in \
            adapter.corrupted_lists(Path(root), Path(lists)).items():
        missing = [c for c in test_ids if c not in clips]
        if missing:
            raise UsageError(f"{adapter.name}: {path} lists {len(test_ids) - len(missing)} of "
                             f"the {len(test_ids)} test clips (missing e.g. {missing[0]!r})")
        plan = {"list": sha256_file(path), "dataset": manifest["version"],
                "modality": modality}
        folder = final / PROVIDED / name
        if (folder / "manifest.json").exists() and \
                _read_json(folder / "manifest.json").get("plan") == plan:
            names.append(name)
            continue
        work = folder.with_name(name + ".partial")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        rows = []
        for clip_id in tqdm(test_ids, desc=f"prepare {adapter.name} {name}", unit="clip",
                            disable=None if progress else True):
            clip = clips[clip_id]
            try:
                if modality == "visual":
                    rows.append(adapter.visual(clip, settings, 1).reshape(
                        (settings.size, settings.size, settings.channels) if settings.frames == 1
                        else (settings.frames, settings.size, settings.size, settings.channels)))
                else:
                    wave = adapter.audio(clip, settings)
                    if settings.peak is not None:
                        wave = wave * (settings.peak / max(float(np.abs(wave).max(initial=0)),
                                                           1e-12))
                    rows.append(np.clip(np.round(wave * 32767), -32768, 32767
                                        ).astype(np.int16))
            except Exception as err:  # noqa: BLE001 - any decoding failure names the file
                raise UsageError(f"{adapter.name} {name}: {_source(clip)}: "
                                 f"{type(err).__name__}: {err}") from None
        array_path = work / f"{modality}.npy"
        np.save(array_path, np.stack(rows))
        (work / "manifest.json").write_text(json.dumps({
            "plan": plan, "modality": modality, "corruption": corruption,
            "severity": severity, "source": str(path), "clips": len(rows),
            "sha256": sha256_file(array_path)}, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(work, folder)
        names.append(name)
    return names


@functools.lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    """A file's SHA-256 (16 hex digits), once per version of the file and process."""
    return sha256_file(Path(path))[:16]


def _flush(*arrays) -> None:
    for array in arrays:
        if array is not None:
            array.flush()


def _source(clip: Clip) -> str:
    return str(clip.frames or clip.video or clip.audio or clip.id)


def _open(path: Path, shape: tuple[int, ...], dtype) -> np.memmap:
    if path.exists():
        array = np.load(path, mmap_mode="r+")
        if array.shape == shape and array.dtype == dtype:
            return array
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class PreparedDataset(Dataset):
    """A dataset read from its `rambench prepare` cache; subclasses name the adapter."""

    adapter: Adapter
    defaults: dict[str, Any]

    def __init__(self, folder: Path | None = None):
        folder = folder or data_dir() / self.name
        path = folder / "manifest.json"
        if not path.exists():
            raise UsageError(
                f"dataset {self.name!r} is not prepared (no {path}). Run\n"
                f"  rambench prepare {self.name} --root PATH\n"
                f"where PATH holds the dataset as distributed:\n{self.adapter.layout}")
        self.folder = folder
        self.manifest = json.loads(path.read_text())
        self.version = self.manifest["version"]
        self.class_names = tuple(self.manifest["classes"])
        s = PrepareSettings(**self.manifest["settings"])
        self.modalities = self.modality_specs(s)
        self._arrays = {name: self._verified(folder / f"{name}.npy", info)
                        for name, info in self.manifest["arrays"].items()}

    def _verified(self, path: Path, info: dict) -> np.ndarray:
        """The array at `path`, memory-mapped, after checking its SHA-256 against the
        manifest; the check is remembered (by size and modification time) in a stamp file,
        so a large cache is hashed once, not on every run. A damaged array removes the
        manifest, so that `rambench prepare` rebuilds the cache."""
        stamp = path.with_name(path.name + ".verified")
        try:
            st = path.stat()
            mark = f"{st.st_size}:{st.st_mtime_ns}:{info['sha256']}"
            if not (stamp.exists() and stamp.read_text() == mark):
                if sha256_file(path) != info["sha256"]:
                    raise ValueError("checksum mismatch")
                try:
                    stamp.write_text(mark)
                except OSError:  # a read-only cache: verify again next time
                    pass
            array = np.load(path, mmap_mode="r")
            if list(array.shape) != info["shape"]:
                raise ValueError(f"shape {list(array.shape)}, expected {info['shape']}")
        except (OSError, ValueError) as err:
            (self.folder / "manifest.json").unlink(missing_ok=True)
            raise UsageError(f"dataset {self.name!r}: the prepared array {path} is damaged "
                             f"({err}); run `rambench prepare {self.name} --root PATH` again "
                             "to rebuild it") from None
        return array

    @classmethod
    def settings(cls, **overrides: Any) -> PrepareSettings:
        values = {**cls.defaults["prepare"], **{k: v for k, v in overrides.items()
                                                  if v is not None}}
        return PrepareSettings(**values)

    @classmethod
    def modality_specs(cls, s: PrepareSettings) -> dict[str, ModalitySpec]:
        frame = (s.size, s.size, s.channels)
        encoders = cls.defaults["encoders"]
        return {
            "visual": ModalitySpec("visual", "image", frame if s.frames == 1
                                   else (s.frames, *frame), encoders["visual"]),
            "audio": ModalitySpec("audio", "audio", (int(round(s.seconds * s.sample_rate)),),
                                  encoders["audio"], s.sample_rate,
                                  tuple(sorted(cls.defaults.get("spectrogram", {}).items()))),
        }

    def provided(self) -> dict[str, dict[str, Any]]:
        """The corrupted test sets prepared beside this dataset (`prepare_provided`): name
        -> modality, corruption, severity and a digest of its array (part of every key)."""
        out = {}
        for path in sorted((self.folder / PROVIDED).glob("*/manifest.json")):
            info = _read_json(path)
            if info.get("plan", {}).get("dataset") == self.version:  # of this preparation
                out[path.parent.name] = {k: info[k] for k in ("modality", "corruption",
                                                               "severity")}
                out[path.parent.name]["digest"] = info["sha256"][:16]
        return out

    def provided_inputs(self, name: str) -> np.ndarray:
        """A provided test set's array, row for row the test split's clips (audio as
        float32 in [-1, 1], as `split` gives it)."""
        info = self.provided()[name]
        path = self.folder / PROVIDED / name / f"{info['modality']}.npy"
        st = path.stat()
        if _digest(str(path), st.st_mtime_ns, st.st_size) != info["digest"]:
            raise UsageError(f"dataset {self.name!r}: the provided test set {path} is damaged "
                             "(checksum mismatch); prepare it again (rambench prepare "
                             f"{self.name} --root PATH --corrupted LISTS)")
        array = np.load(path, mmap_mode="r")
        start, stop = self.manifest["splits"]["test"]
        valid = np.asarray(self._arrays["valid"][start:stop])
        array = array[valid] if not valid.all() else array
        return np.asarray(array, dtype=np.float32) / 32767 if info["modality"] == "audio" \
            else array

    def split(self, name: str) -> Split:
        start, stop = self.manifest["splits"][name]
        valid = np.asarray(self._arrays["valid"][start:stop])
        rows = slice(start, stop) if valid.all() else np.arange(start, stop)[valid]
        audio = np.asarray(self._arrays["audio"][rows], dtype=np.float32) / 32767
        visual = self._arrays["visual"][rows]
        if name == "train" and "visual_train" in self._arrays:
            visual = SegmentSampler(self._arrays["visual_train"], np.arange(start, stop)[rows])
        return Split({"visual": visual, "audio": audio},
                     np.asarray(self._arrays["labels"][rows]))


class SegmentSampler:
    """The training clips' frames: indexing returns (B, T, H, W, C) with, for every clip
    and segment, one of the stored candidate frames drawn at random. The draws follow a
    generator that `train` seeds with the run's seed (`reseed`)."""

    def __init__(self, candidates: np.ndarray, rows: np.ndarray, seed: int = 0):
        self.candidates = candidates  # (N_train, T, R, H, W, C)
        self.rows = rows
        n, t, _, *frame = candidates.shape
        self.shape = (len(rows), t, *frame)
        self.dtype = candidates.dtype
        self.ndim = len(self.shape)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx) -> np.ndarray:
        rows = self.rows[np.atleast_1d(np.arange(len(self))[idx])]
        t, r = self.candidates.shape[1:3]
        pick = self.rng.integers(r, size=(len(rows), t))
        out = np.stack([self.candidates[row][np.arange(t), p] for row, p in zip(rows, pick,
                                                                              strict=True)])
        return out[0] if isinstance(idx, int | np.integer) else out


def prepared_dataset(adapter: Adapter, description: str) -> type[PreparedDataset]:
    """The Dataset class of an adapter, with its YAML defaults."""
    defaults = load_defaults(adapter.name)
    cls = type(f"{adapter.name.capitalize()}Dataset", (PreparedDataset,), {
        "name": adapter.name, "adapter": adapter, "defaults": defaults,
        "description": description, "version": f"{adapter.version}-unprepared",
        "class_names": tuple(defaults.get("classes", ())),
        "train_defaults": defaults.get("train", {}),
    })
    cls.modalities = cls.modality_specs(cls.settings())
    return cls
