"""Grids: the test conditions of a study (the `conditions:` block of a study file,
`rambench.study`), expanded for a dataset's modalities.

    conditions:
      clean: true
      corruptions:                # modality -> list of corruption names, "all" (the test
        visual: all               # corruptions) or "held_out" (corruptions.registry.HELD_OUT,
                                  # for choosing settings on the validation split)
        audio: [gaussian_noise, reverb]
      severities: [1, 2, 3, 4, 5]
      av: {events: all, severities: [1, 3, 5]}   # co-occurring audio-visual events
                                  # (`events: avrobustbench`: AVRobustBench's 15 pairs)
      missing_modalities: all     # each listed modality dropped for every sample
      missing_rates: [0.1, 0.5, 0.9]
      missing: {visual: 0.3, audio: 0.7}   # a rate per modality (or a list of such maps)
      missing_segments: {modalities: all, severities: [1, 3, 5]}   # a time segment lost
                                  # (all: the audio modalities; clips are named)
      mixed:                      # each modality of each sample corrupted w.p. probability
        corruptions: {visual: gaussian_noise, audio: gaussian_noise}
        severities: [1, 3, 5]
        probability: 0.5
        # or `protocol: qmf`: QMF/PDF's noisy-modality protocol (corruptions.protocols)

Everything is checked here, before any work: names, non-empty lists, one corruption per
modality in `mixed`, and `av.noise_dir`'s recordings (each a readable, non-empty, finite WAV,
listed as the events list them, `corruptions.av_events.noise_files`, and hashed into the key).
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.io import wavfile

from corruptions import avrobustbench, read
from corruptions import registry as corruption_registry
from corruptions.av_events import EVENTS as AV_EVENTS
from corruptions.av_events import noise_files
from corruptions.registry import SEVERITIES, unknown_name_message
from rambench.datasets.base import SPLITS as DATASET_SPLITS
from rambench.errors import UsageError
from rambench.schema import (
    AVEvent,
    Clean,
    Condition,
    Corrupt,
    Drop,
    Mixed,
    ModalityMissing,
    Provided,
    RandomMissing,
    SegmentLoss,
)

# the splits a study's conditions can be evaluated on (never the training split)
SPLITS = tuple(sorted(set(DATASET_SPLITS) - {"train"}, reverse=True))
CONDITION_KEYS = ("clean", "corruptions", "severities", "missing_modalities", "missing_rates",
                  "missing", "missing_segments", "mixed", "av", "provided")
SEGMENT_KEYS = ("modalities", "severities")
AV_KEYS = ("events", "severities", "noise_dir")
# `av: {events: <protocol>}`: every event of a paper's protocol
AV_PROTOCOLS = {avrobustbench.PROTOCOL: avrobustbench.BENCHMARK, read.PROTOCOL: read.BENCHMARK}
MIXED_KEYS = ("corruptions", "severities", "probability", "protocol")
# mixed protocols: the corruption each modality kind gets, and the probability
MIXED_PROTOCOLS = {"qmf": ({"image": "qmf_gaussian_noise", "audio": "gaussian_noise"}, 0.5)}


@dataclass(frozen=True)
class Grid:
    """A study's test conditions as written, and the name they are known by (a preset's
    name, a file's stem)."""

    name: str
    source: str  # where it came from (preset name or file path), for error messages
    conditions_spec: Any

    @property
    def hash(self) -> str:
        text = yaml.safe_dump(self.conditions_spec, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def conditions(self, modality_kinds: dict[str, str],
                   provided: dict[str, dict[str, Any]] | None = None) -> list[Condition]:
        """The test conditions for a dataset with these modalities (name -> kind) and these
        provided test sets (`Dataset.provided`)."""
        return expand_conditions(self.conditions_spec or {}, modality_kinds, self.source,
                                 provided)


def fail(source: str, key: str, message: str):
    raise UsageError(f"{source}: key '{key}': {message}")


def check_keys(d: Any, allowed: tuple[str, ...], source: str, where: str) -> dict:
    if not isinstance(d, dict):
        fail(source, where, f"expected a mapping with keys {', '.join(allowed)}")
    for key in d:
        if key not in allowed:
            fail(source, f"{where}.{key}".lstrip("."),
                 unknown_name_message("key", str(key), allowed))
    return d


def int_list(value: Any, source: str, key: str, allowed=None,
             nonempty: bool = False) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        fail(source, key, f"expected a list of integers; got {value!r}")
    if nonempty and not value:
        choices = f": allowed values are {list(allowed)}" if allowed is not None else ""
        fail(source, key, f"the list is empty; give at least one value{choices}")
    if allowed is not None and any(v not in allowed for v in value):
        fail(source, key, f"allowed values are {list(allowed)}; got {value!r}")
    _once(value, source, key)
    return list(value)


def _once(values: list, source: str, key: str) -> None:
    """A value listed twice would plan the same cell twice."""
    for v in values:
        if values.count(v) > 1:
            fail(source, key, f"{v!r} is listed {values.count(v)} times; list it once")


def _names(value: Any, valid: list[str], what: str, source: str, key: str) -> list[str]:
    """'all', one name or a non-empty list of names, each checked against `valid`."""
    if value == "all":
        return list(valid)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        fail(source, key, f"expected 'all' or a list of {what} names ({', '.join(valid)}); "
                          f"got {value!r}")
    if not value:
        fail(source, key, f"the list is empty; name at least one {what} ({', '.join(valid)}) "
                          f"or 'all', or leave the key out")
    for name in value:
        if not isinstance(name, str) or name not in valid:
            fail(source, key, unknown_name_message(what, str(name), valid))
    _once(value, source, key)
    return list(value)


def _modality_list(value: Any, kinds: dict[str, str], source: str, key: str) -> list[str]:
    return _names(value, list(kinds), "modality", source, key)


def _corruption_names(value: Any, kind: str, source: str, key: str) -> list[str]:
    """'all' (the test corruptions of `kind`), 'held_out' (those kept for validation), or
    names, which may also name protocol corruptions such as qmf_gaussian_noise."""
    if value == "all":
        return corruption_registry.test_names(kind)
    if value == "held_out":
        return list(corruption_registry.HELD_OUT.get(kind, ()))
    return _names(value, corruption_registry.names(kind, protocols=True),
                  f"{kind} corruption", source, key)


def expand_conditions(
    spec: Any, kinds: dict[str, str], source: str,
    provided: dict[str, dict[str, Any]] | None = None,
) -> list[Condition]:
    spec = check_keys(spec, CONDITION_KEYS, source, "conditions")
    out: list[Condition] = []
    if not isinstance(spec.get("clean", True), bool):
        fail(source, "conditions.clean", f"expected true or false; got {spec['clean']!r}")
    if spec.get("clean", True):
        out.append(Clean())
    severities = int_list(spec.get("severities", list(SEVERITIES)), source,
                           "conditions.severities", SEVERITIES, nonempty=True)
    corruptions = spec.get("corruptions", {})
    if not isinstance(corruptions, dict) or ("corruptions" in spec and not corruptions):
        fail(source, "conditions.corruptions",
             f"expected a mapping modality -> corruptions ({', '.join(kinds)}), or leave the "
             f"key out; got {corruptions!r}")
    for modality, names in corruptions.items():
        key = f"conditions.corruptions.{modality}"
        if modality not in kinds:
            fail(source, key, unknown_name_message("modality", str(modality), kinds))
        for name in _corruption_names(names, kinds[modality], source, key):
            out += [Corrupt(modality, name, s) for s in severities]
    if "missing_modalities" in spec:
        for modality in _modality_list(spec["missing_modalities"], kinds, source,
                                       "conditions.missing_modalities"):
            out.append(Drop(modality))
    rates = spec.get("missing_rates", [])
    if not isinstance(rates, list) or not all(
        isinstance(r, (int, float)) and not isinstance(r, bool) and 0 < r < 1 for r in rates
    ):
        fail(source, "conditions.missing_rates", f"expected rates in (0, 1); got {rates!r}")
    if "missing_rates" in spec and not rates:
        fail(source, "conditions.missing_rates", "the list is empty; give rates in (0, 1), "
                                                 "e.g. [0.1, 0.5, 0.9], or leave the key out")
    out += [RandomMissing(float(r)) for r in rates]
    if "missing" in spec:
        out += _uneven_missing(spec["missing"], kinds, source)
    if "missing_segments" in spec:
        out += _segment_conditions(spec["missing_segments"], kinds, source)
    if "mixed" in spec:
        out += _mixed_conditions(spec["mixed"], kinds, source)
    if "av" in spec:
        out += _av_conditions(spec["av"], kinds, source)
    if "provided" in spec:
        out += _provided_conditions(spec["provided"], provided or {}, source)
    return out


def _provided_conditions(spec: Any, provided: dict[str, dict[str, Any]], source: str
                         ) -> list[Condition]:
    """`provided: all` or names: the dataset's provided test sets (`Dataset.provided`)."""
    if not provided:
        fail(source, "conditions.provided", "this dataset has no provided test sets; "
                                            "`rambench prepare NAME --root PATH --corrupted "
                                            "LISTS` decodes another benchmark's")
    return [Provided(name, info["modality"], info["corruption"], int(info["severity"]),
                     info["digest"])
            for name in _names(spec, sorted(provided), "provided test set", source,
                               "conditions.provided")
            for info in [provided[name]]]


def _uneven_missing(spec: Any, kinds: dict[str, str], source: str) -> list[Condition]:
    """`missing: {visual: 0.3, audio: 0.7}` (or a list of such maps): each modality missing
    at its own rate (0 for one not listed), at least one kept per sample."""
    key = "conditions.missing"
    maps = spec if isinstance(spec, list) else [spec]
    if not maps:
        fail(source, key, "the list is empty; give a map modality -> rate, e.g. "
                          "{visual: 0.3, audio: 0.7}, or leave the key out")
    out = []
    for rates in maps:
        if not isinstance(rates, dict) or not rates:
            fail(source, key, f"expected a map modality -> missing rate in [0, 1) for one or "
                              f"more of {', '.join(kinds)}; got {rates!r}")
        for modality, rate in rates.items():
            if modality not in kinds:
                fail(source, f"{key}.{modality}",
                     unknown_name_message("modality", str(modality), kinds))
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or \
                    not 0 <= rate < 1:
                fail(source, f"{key}.{modality}", f"expected a rate in [0, 1); got {rate!r}")
        if not any(rates.values()):
            fail(source, key, f"every rate of {rates} is 0: nothing would be missing")
        out.append(ModalityMissing(tuple((m, float(rates.get(m, 0))) for m in kinds)))
    _once([c.rates for c in out], source, key)
    return out


def _segment_conditions(spec: Any, kinds: dict[str, str], source: str) -> list[Condition]:
    """`missing_segments: {modalities: all, severities: [...]}`: a time segment of one
    modality lost (`all`: the audio modalities; an image modality must hold clips, which
    the study checks against the dataset)."""
    spec = check_keys(spec if spec is not None else {}, SEGMENT_KEYS, source,
                      "conditions.missing_segments")
    chosen = spec.get("modalities", "all")
    modalities = ([m for m, k in kinds.items() if k == "audio"] if chosen == "all" else
                  _modality_list(chosen, kinds, source, "conditions.missing_segments.modalities"))
    severities = int_list(spec.get("severities", list(SEVERITIES)), source,
                          "conditions.missing_segments.severities", SEVERITIES, nonempty=True)
    return [SegmentLoss(m, s) for m in modalities for s in severities]


def _av_conditions(spec: Any, kinds: dict[str, str], source: str) -> list[Condition]:
    """Co-occurring audio-visual events on the dataset's first image and audio modality."""
    spec = check_keys(spec if spec is not None else {}, AV_KEYS, source, "conditions.av")
    image = [m for m, k in kinds.items() if k == "image"]
    audio = [m for m, k in kinds.items() if k == "audio"]
    if not image or not audio:
        found = ", ".join(f"{m} ({k})" for m, k in kinds.items())
        fail(source, "conditions.av", f"audio-visual events need an image and an audio "
                                       f"modality; this dataset has {found}")
    events = spec.get("events", "all")
    if events == "all":  # rambench's events (a protocol's are asked for by its name)
        events = corruption_registry.names("av")
    elif isinstance(events, str) and events in AV_PROTOCOLS:  # e.g. AVRobustBench's 15
        events = list(AV_PROTOCOLS[events])
    events = _names(events, corruption_registry.names("av", protocols=True),
                    "audio-visual event", source, "conditions.av.events")
    severities = int_list(spec.get("severities", list(SEVERITIES)), source,
                           "conditions.av.severities", SEVERITIES, nonempty=True)
    noise_dir = digest = None
    if spec.get("noise_dir") is not None:
        folder = Path(str(spec["noise_dir"])).expanduser().resolve()
        if not folder.is_dir():
            fail(source, "conditions.av.noise_dir", f"no such folder: {folder}")
        _check_noise_dir(folder, events, source)
        noise_dir, digest = str(folder), _folder_digest(folder, events, source)
    elif unheard := [e for e in events if e.startswith(read.PREFIX) and read.noise_file(e)]:
        fail(source, "conditions.av.events",
             f"{', '.join(unheard)} mix READ's recordings (<name>.wav of its weather_audios/ "
             f"folder), which have no stand-in: give that folder as av.noise_dir, or leave "
             f"them out")
    return [AVEvent(e, s, (image[0], audio[0]), noise_dir, digest)
            for e in events for s in severities]


NOISE_KEY = "conditions.av.noise_dir"


def noise_subfolder(event: str) -> str | None:
    """The folder under `noise_dir` that holds `event`'s recordings (None: READ's files lie
    in `noise_dir` itself): the event's name for rambench's events, AVRobustBench's own
    folder names (`water_drops`, `crowd_speech`, ...) for its protocol."""
    if event.startswith(avrobustbench.PREFIX):
        return avrobustbench.noise_folder(event)
    if event.startswith(read.PREFIX):
        return None  # files directly in noise_dir
    return event  # (a bed-less event's files are hashed too, as stored keys were)


def _event_files(folder: Path, event: str) -> list[Path]:
    """The recordings of `event` under `folder`, listed exactly as the events read them
    (`corruptions.av_events.noise_files`: `*.wav` in any case, regular files, sorted), and
    for AVRobustBench's crowd its cut-outs (`crowd_image/*.png`); none where the folder is
    missing or holds none."""
    sub = noise_subfolder(event)
    found = []
    if sub is not None and (folder / sub).is_dir():
        try:
            found = noise_files(folder, sub)
        except FileNotFoundError:
            found = []
    if event == avrobustbench.spec_name("crowd"):
        found += sorted((folder / avrobustbench.CROWD_IMAGES).glob("*.png"))
    if event.startswith(read.PREFIX) and (file := read.noise_file(event)) and \
            (folder / file).is_file():
        found.append(folder / file)
    return found


def _folder_digest(folder: Path, events: list[str], source: str = "") -> str:
    """A hash of the recordings an AV condition reads, so that new files mean new results:
    per event in the grid's order, per file in `noise_files`' order, "event/name" then the
    file's bytes (for lowercase `.wav` files the same as before `.WAV` files were hashed)."""
    sha = hashlib.sha256()
    for event in events:
        for path in _event_files(folder, event):
            try:
                data = path.read_bytes()
            except OSError as err:
                fail(source, NOISE_KEY, f"{event}/{path.name} cannot be read ({err})")
            sha.update(f"{path.parent.name}/{path.name}".encode())
            sha.update(data)
    return sha.hexdigest()[:16]


def _check_noise_dir(folder: Path, events: list[str], source: str) -> None:
    """Before any work: every selected event with a noise bed finds `<folder>/<event>/`
    holding at least one `.wav` (any case), and each such entry is a readable WAV file with
    at least one sample, all finite. Events without a bed read no recordings."""
    for event in events:
        if event.startswith(read.PREFIX):  # READ's weather_audios/<name>.wav
            if (file := read.noise_file(event)) is None:
                continue
            if not (folder / file).is_file():
                fail(source, NOISE_KEY, f"no {file} in {folder}: {event} reads READ's "
                                        f"recording <noise_dir>/{file} (its weather_audios/)")
            if problem := _wav_problem(folder / file):
                fail(source, NOISE_KEY, f"{file} {problem}")
            continue
        name = noise_subfolder(event)
        if name is None or (event in AV_EVENTS and not AV_EVENTS[event].has_bed):
            continue
        sub = folder / name
        if not sub.is_dir():
            fail(source, NOISE_KEY, f"no folder {name}/ in {folder}: the {event} event reads "
                                    f"its noise from <noise_dir>/{name}/*.wav")
        # every entry the events' listing could take, and those it would skip silently
        entries = sorted(p for p in sub.glob("*") if p.suffix.lower() == ".wav")
        if not entries:
            fail(source, NOISE_KEY, f"{name}/ in {folder} holds no .wav file; the {event} "
                                    f"event needs at least one recording")
        for path in entries:
            problem = _wav_problem(path)
            if problem:
                fail(source, NOISE_KEY, f"{name}/{path.name} {problem}")


def _wav_problem(path: Path) -> str | None:
    """What is wrong with the noise recording at `path`, or None."""
    if path.is_symlink() and not path.exists():
        return f"is a dangling symlink (to {path.readlink()})"
    if not path.is_file():
        return "is not a regular file"
    st = path.stat()
    return _wav_content_problem(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _wav_content_problem(path: str, mtime_ns: int, size: int) -> str | None:
    """As `_wav_problem`, for a regular file (cached per version of the file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # WavFileWarning: chunks it skips
            _, data = wavfile.read(path)
    except OSError as err:
        return f"cannot be read ({err})"
    except Exception as err:  # scipy raises ValueError, EOFError, struct.error, ...
        return f"is not a WAV file ({type(err).__name__}: {err})"
    data = np.asarray(data)
    if data.size == 0:
        return "holds no audio (0 frames)"
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        return "holds non-finite samples (NaN or inf)"
    return None


def _mixed_conditions(spec: Any, kinds: dict[str, str], source: str) -> list[Condition]:
    spec = check_keys(spec, MIXED_KEYS, source, "conditions.mixed")
    default = {m: "gaussian_noise" for m in kinds}
    if "protocol" in spec:
        protocol = spec["protocol"]
        if not isinstance(protocol, str) or protocol not in MIXED_PROTOCOLS:
            fail(source, "conditions.mixed.protocol",
                  unknown_name_message("protocol", str(protocol), MIXED_PROTOCOLS))
        for key in ("corruptions", "probability"):
            if key in spec:
                fail(source, f"conditions.mixed.{key}",
                      f"set by protocol {protocol!r}; leave it out")
        by_kind, probability = MIXED_PROTOCOLS[protocol]
        default = {m: by_kind[kind] for m, kind in kinds.items()}
        spec = {**spec, "probability": probability}
    chosen = spec.get("corruptions", default)
    if not isinstance(chosen, dict) or not chosen:
        fail(source, "conditions.mixed.corruptions",
             f"expected a mapping modality -> one corruption name, for one or more of "
             f"{', '.join(kinds)} (e.g. {{{next(iter(kinds))}: gaussian_noise}}); "
             f"got {chosen!r}")
    pairs = []
    for modality, name in chosen.items():
        key = f"conditions.mixed.corruptions.{modality}"
        if modality not in kinds:
            fail(source, key, unknown_name_message("modality", str(modality), kinds))
        names = _corruption_names(name, kinds[modality], source, key)
        if len(names) != 1:  # a Mixed condition corrupts each modality with one corruption
            fail(source, key, f"a mixed condition corrupts each modality with one "
                              f"corruption; {modality} lists {len(names)} "
                              f"([{', '.join(names)}]): name one")
        pairs.append((modality, names[0]))
    probability = spec.get("probability", 0.5)
    if not isinstance(probability, (int, float)) or isinstance(probability, bool) \
            or not 0 < probability <= 1:
        fail(source, "conditions.mixed.probability",
             f"expected a number in (0, 1]; got {probability!r}")
    severities = int_list(spec.get("severities", list(SEVERITIES)), source,
                           "conditions.mixed.severities", SEVERITIES, nonempty=True)
    return [Mixed(tuple(pairs), s, float(probability)) for s in severities]
