"""The results schema (version 2): typed test conditions and the `Record` of one cell.

A record stores, when it is written, everything a reader needs: the condition's kind, the
tested modality's kind (image/audio), the corruption's family and the method's family, so
that no reader decodes placeholder values or asks a registry what the writer knew.

Conditions are a tagged union. Adding a condition type is one class here (with its
`kind`, `label` and the tidy columns it fills) plus its test-input builder in
`rambench.test_inputs`.

Records of schema 1 (one flat dict with sentinel strings) are migrated when read.
"""

from __future__ import annotations

import base64
import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

SCHEMA_VERSION = 2

# ------------------------------------------------------------------------------ conditions


AXES = ("test_modality", "corruption", "severity", "severity_scale", "missing_pattern",
        "missing_rate")


@dataclass(frozen=True)
class Condition:
    """A test condition. A subclass sets `kind`, a `label`, and has the axes among `AXES`
    that it varies as fields or properties; an axis it lacks is None in the export (an
    empty cell), never a placeholder value."""

    kind: ClassVar[str]

    @property
    def label(self) -> str:
        raise NotImplementedError

    def corruptions(self) -> tuple[tuple[str, str], ...]:
        """(modality, corruption) pairs this condition applies (from the corruption
        library's per-modality registry)."""
        return ()

    def tested_modalities(self) -> tuple[str, ...]:
        """The modalities whose inputs this condition changes or removes."""
        pairs = tuple(m for m, _ in self.corruptions())
        modality = getattr(self, "test_modality", None)
        return pairs or ((modality,) if modality else ())

    def axes(self) -> dict[str, Any]:
        """The condition's value on each of `AXES` (None where it has none)."""
        return {axis: getattr(self, axis, None) for axis in AXES}

    # fields added after records of this kind were first stored: left out of the JSON (and
    # so of every key) while None, so that the keys of conditions without them stay the same
    added_fields: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.added_fields:
                continue
            out[f.name] = ([list(p) if isinstance(p, tuple) else p for p in value]
                           if isinstance(value, tuple) else value)
        return out


@dataclass(frozen=True)
class Clean(Condition):
    kind: ClassVar[str] = "clean"

    @property
    def label(self) -> str:
        return "clean"


@dataclass(frozen=True)
class Corrupt(Condition):
    """One modality corrupted for every sample at one severity."""

    kind: ClassVar[str] = "corruption"
    test_modality: str
    corruption: str
    severity: int
    # the image corruptions' constants table (`corruptions.scales`: imagenet | tinyimagenet |
    # cifar, resolved from the image size); None for corruptions without scales (audio)
    severity_scale: str | None = None

    @property
    def label(self) -> str:
        return f"{self.test_modality}:{self.corruption}@{self.severity}"

    def corruptions(self) -> tuple[tuple[str, str], ...]:
        return ((self.test_modality, self.corruption),)


AV_FAMILY = "av_event"  # the corruption family of every co-occurring audio-visual event


@dataclass(frozen=True)
class AVEvent(Condition):
    """One real-world event corrupting the image and the audio of every sample at once, with
    a shared severity (rain on the lens and on the soundtrack, ...; `corruptions.av_events`)."""

    kind: ClassVar[str] = "av"
    event: str
    severity: int
    modalities: tuple[str, str]  # (image modality, audio modality)
    noise_dir: str | None = None  # real recordings <noise_dir>/<event>/*.wav, if given
    noise_digest: str | None = None  # hash of those files' contents: part of the key
    # as `Corrupt.severity_scale`, for events whose image side has a twin in the image
    # grid (compression's JPEG quality); None for the others
    severity_scale: str | None = None
    added_fields: ClassVar[tuple[str, ...]] = ("severity_scale",)

    @property
    def label(self) -> str:
        return f"av:{self.event}@{self.severity}"

    @property
    def test_modality(self) -> str:
        return "+".join(self.modalities)

    @property
    def corruption(self) -> str:
        return self.event

    def tested_modalities(self) -> tuple[str, ...]:
        return self.modalities


@dataclass(frozen=True)
class Drop(Condition):
    """One modality absent for every sample."""

    kind: ClassVar[str] = "drop"
    missing_pattern: ClassVar[str] = "drop"
    test_modality: str

    @property
    def label(self) -> str:
        return f"missing:{self.test_modality}"


@dataclass(frozen=True)
class RandomMissing(Condition):
    """Each modality of each sample absent at random (at least one kept per sample)."""

    kind: ClassVar[str] = "random_missing"
    missing_pattern: ClassVar[str] = "random"
    missing_rate: float

    @property
    def label(self) -> str:
        return f"missing:rate={self.missing_rate:g}"


@dataclass(frozen=True)
class ModalityMissing(Condition):
    """Each modality of each sample absent at random with its own rate (uneven missing
    rates, as MissBench), at least one modality kept per sample."""

    kind: ClassVar[str] = "modality_missing"
    missing_pattern: ClassVar[str] = "per_modality"
    rates: tuple[tuple[str, float], ...]  # (modality, rate) in the dataset's order

    @property
    def label(self) -> str:
        return "missing:" + ",".join(f"{m}={r:g}" for m, r in self.rates)

    @property
    def test_modality(self) -> str:
        return "+".join(self.tested_modalities())

    def tested_modalities(self) -> tuple[str, ...]:
        return tuple(m for m, r in self.rates if r > 0)


@dataclass(frozen=True)
class SegmentLoss(Condition):
    """A contiguous time segment of one modality lost (zero-filled) for every sample: a span
    of the audio or a run of a clip's frames, its length the severity's fraction
    (`corruptions.missing.SEGMENT_FRACTIONS`), its place drawn per sample."""

    kind: ClassVar[str] = "segment_loss"
    missing_pattern: ClassVar[str] = "segment"
    test_modality: str
    severity: int

    @property
    def label(self) -> str:
        return f"segment:{self.test_modality}@{self.severity}"


@dataclass(frozen=True)
class Provided(Condition):
    """A corrupted test set another benchmark's generators wrote (READ's Kinetics50-C
    frames, say), prepared beside the dataset (`rambench prepare ... --corrupted`): one
    modality's test inputs replaced by it."""

    kind: ClassVar[str] = "provided"
    name: str  # e.g. video-fog-5
    test_modality: str
    corruption: str
    severity: int
    digest: str  # of the prepared array: other files, another key

    @property
    def label(self) -> str:
        return f"provided:{self.name}"


@dataclass(frozen=True)
class Mixed(Condition):
    """Each listed modality of each sample corrupted independently with `probability`
    (the QMF/PDF noisy-modality protocol), all at one severity."""

    kind: ClassVar[str] = "mixed"
    pairs: tuple[tuple[str, str], ...]  # (modality, corruption)
    severity: int
    probability: float = 0.5
    severity_scale: str | None = None  # as `Corrupt.severity_scale`, for its image pairs

    @property
    def label(self) -> str:
        return f"mixed:{self.corruption}@{self.severity}"

    @property
    def test_modality(self) -> str:
        return "+".join(m for m, _ in self.pairs)

    @property
    def corruption(self) -> str:
        return "+".join(c for _, c in self.pairs)

    def corruptions(self) -> tuple[tuple[str, str], ...]:
        return self.pairs


CONDITION_TYPES: dict[str, type[Condition]] = {
    cls.kind: cls for cls in (Clean, Corrupt, AVEvent, Drop, RandomMissing, Mixed,
                              ModalityMissing, SegmentLoss, Provided)}
CONDITION_KINDS = tuple(CONDITION_TYPES)
MISSING_KINDS = ("drop", "random_missing", "modality_missing", "segment_loss")


def condition_from_json(data: dict[str, Any]) -> Condition:
    data = dict(data)
    kind = data.pop("kind")
    if kind not in CONDITION_TYPES:
        raise ValueError(f"unknown condition kind {kind!r}; kinds: {', '.join(CONDITION_KINDS)}")
    for key in ("pairs", "rates"):
        if key in data:
            data[key] = tuple(tuple(p) for p in data[key])
    if "modalities" in data:
        data["modalities"] = tuple(data["modalities"])
    return CONDITION_TYPES[kind](**data)


def with_reference_scale(condition: Condition, modality_kind: str | None) -> Condition:
    """A record written before severity scales existed used ImageNet-C's constants for every
    image corruption that has scales: say so on its condition."""
    if not isinstance(condition, (Corrupt, Mixed)) or condition.severity_scale is not None:
        return condition
    from corruptions import registry

    kinds = (modality_kind or "").split("+")
    for (_, name), kind in zip(condition.corruptions(), kinds, strict=False):
        if kind == "image" and name in registry.names("image", protocols=True) and \
                registry.get(name, "image").scaled:
            return dataclasses.replace(condition, severity_scale="imagenet")
    return condition


def _condition_from_schema1(d: dict[str, Any]) -> Condition:
    kind = d["kind"]
    if kind == "clean":
        return Clean()
    if kind == "corruption":
        return Corrupt(d["modality"], d["corruption"], int(d["severity"]))
    if kind == "missing":
        if d["missing_pattern"] == "drop":
            return Drop(d["modality"])
        return RandomMissing(float(d["missing_rate"]))
    return Mixed(tuple(tuple(p) for p in d["mixed"]), int(d["severity"]),
                 float(d.get("mixed_probability", 0.5)))


# ----------------------------------------------------------------------- per-sample data


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """A numpy array as JSON: dtype, shape and base64 of its zlib-compressed bytes."""
    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape),
            "data": base64.b64encode(zlib.compress(array.tobytes(), 6)).decode()}


def decode_array(data: dict[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(data["data"]))
    return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"])


def pack_bits(correct: np.ndarray) -> str:
    return base64.b64encode(np.packbits(correct.astype(bool)).tobytes()).decode()


def unpack_bits(text: str, n: int) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    return np.unpackbits(raw, count=n).astype(bool)


FULL_PROBABILITIES_UP_TO = 64  # classes; above this, the top TOP_K are kept
TOP_K = 5


@dataclass(frozen=True)
class Predictions:
    """Each test sample's label and predicted class probabilities.

    Up to `FULL_PROBABILITIES_UP_TO` classes every probability is kept (float16). With more
    classes the `TOP_K` most probable classes are kept, plus the label's own probability
    and the sum of squared probabilities, so that accuracy, top-k accuracy, confidence
    calibration (ECE), NLL and the Brier score stay exact. On a 300-class test set of
    15,000 clips that is 28 bytes per sample (about 0.4 MB per cell before compression)
    instead of 600 bytes (9 MB per cell, 1.8 GB for a 200-cell grid)."""

    labels: np.ndarray  # int (N,)
    classes: np.ndarray  # int (N, k): class ids, most probable first
    probabilities: np.ndarray  # float16 (N, k), aligned with `classes`
    label_probability: np.ndarray  # float32 (N,)
    squared_sum: np.ndarray  # float32 (N,): sum over all classes of p^2
    num_classes: int

    @classmethod
    def from_probabilities(cls, probs: np.ndarray, labels: np.ndarray) -> Predictions:
        probs = np.asarray(probs, dtype=np.float32)
        n, num_classes = probs.shape
        k = num_classes if num_classes <= FULL_PROBABILITIES_UP_TO else TOP_K
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(probs, order, axis=1)
        dtype = np.uint8 if num_classes <= 256 else np.uint16
        return cls(np.asarray(labels, dtype=dtype), order.astype(dtype),
                   top.astype(np.float16), probs[np.arange(n), labels].astype(np.float32),
                   (probs ** 2).sum(axis=1).astype(np.float32), num_classes)

    @property
    def predicted(self) -> np.ndarray:
        return self.classes[:, 0]

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities[:, 0].astype(np.float32)

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    def to_json(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes,
                **{name: encode_array(getattr(self, name)) for name in
                   ("labels", "classes", "probabilities", "label_probability", "squared_sum")}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Predictions:
        arrays = {k: decode_array(v) for k, v in data.items() if k != "num_classes"}
        return cls(num_classes=int(data["num_classes"]), **arrays)


# -------------------------------------------------------------------------------- metrics


# per-cell metrics (accuracy stored; calibration and macro-F1 computed from the predictions)
# are defined in rambench.metrics.cell


# -------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class MethodInfo:
    """How a record names its method: the label tables show (e.g. raml[norm=hard]), the
    registered name, the hyper-parameters, the hash of the method's code and its family."""

    label: str
    name: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    code: str | None = None  # None: written before method code was recorded (schema 1)
    # the modalities the method reads (a unimodal reference reads one); None: written
    # before rambench recorded them (`UNIMODAL_BEFORE_RECORDED` fills in its own)
    modalities: tuple[str, ...] | None = None
    # the test-time adaptation the cell went through: {name, params, code}; None: none
    adaptation: dict[str, Any] | None = None


@dataclass(frozen=True)
class Record:
    """One evaluated cell: a trained (method, seed) on one test condition."""

    key: str
    study: str
    dataset: str
    dataset_version: str
    method: MethodInfo
    seed: int
    condition: Condition
    modality_kind: str | None  # kind of the tested modality: image | audio | image+audio
    corruption_family: str | None
    corruption_backend: str
    metrics: dict[str, float]
    n: int
    correct: np.ndarray  # bool (n,)
    predictions: Predictions | None = None  # None in schema 1 records
    details: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    split: str = "test"  # the split evaluated: "test", or "val" in a study choosing settings

    @property
    def numerics(self) -> str:
        """The numerics environment it was computed in (`numerics_of`)."""
        return numerics_of(self.provenance)

    @property
    def coordinates(self) -> tuple[str, str, int, str]:
        """What a table row and column name: (dataset, method label, seed, condition).
        Two records with the same coordinates are two versions of one result."""
        return (self.dataset, self.method.label, self.seed, self.condition.label)

    @property
    def current_since(self) -> str:
        """When this record became its cell's current result: when it was written, or when
        a run of its code and settings found it stored and made it current again."""
        return self.provenance.get("current_since") or self.provenance.get("created") or ""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema, "key": self.key, "study": self.study,
            "dataset": self.dataset, "dataset_version": self.dataset_version,
            "method": dataclasses.asdict(self.method), "seed": self.seed,
            "condition": self.condition.to_json(), "modality_kind": self.modality_kind,
            "corruption_family": self.corruption_family,
            "corruption_backend": self.corruption_backend, "metrics": dict(self.metrics),
            "n": self.n, "correct": pack_bits(self.correct),
            "predictions": self.predictions.to_json() if self.predictions else None,
            "details": self.details, "train_config": self.train_config,
            "provenance": self.provenance, "split": self.split,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """A record of any schema version, migrated to this one."""
        version = data.get("schema", 1)
        if version == 1:
            return _from_schema1(data)
        if version != SCHEMA_VERSION:
            raise ValueError(f"record schema {version} is newer than this rambench reads "
                             f"({SCHEMA_VERSION}); upgrade rambench")
        predictions = data.get("predictions")
        return cls(
            key=data["key"], study=data["study"], dataset=data["dataset"],
            dataset_version=data["dataset_version"], method=_method_info(data["method"]),
            seed=int(data["seed"]),
            condition=with_reference_scale(condition_from_json(data["condition"]),
                                           data["modality_kind"]),
            modality_kind=data["modality_kind"], corruption_family=data["corruption_family"],
            corruption_backend=data["corruption_backend"], metrics=dict(data["metrics"]),
            n=int(data["n"]), correct=unpack_bits(data["correct"], int(data["n"])),
            predictions=Predictions.from_json(predictions) if predictions else None,
            details=data.get("details", {}), train_config=data.get("train_config", {}),
            provenance=data.get("provenance", {}), split=data.get("split", "test"))


EXPORT_COLUMNS = [
    "study", "dataset", "method", "method_family", "family", "method_modalities", "seed",
    "condition",
    "condition_kind", "test_modality", "modality_kind", "corruption", "corruption_family",
    "severity", "severity_scale", "missing_pattern", "missing_rate", "metric", "value", "n",
    "higher_is_better", "split", "corruption_backend", "key", "code_version",
    "training_status",
]
# `family` is the former name of `method_family`, kept for one release.


def _from_schema1(d: dict[str, Any]) -> Record:
    """Schema 1: a flat dict; the condition as {kind, modality, corruption, severity,
    missing_pattern, missing_rate[, mixed, mixed_probability]} with "none"/"all"
    placeholders; no modality kind, corruption family or method code. The kinds and
    families are looked up once here, from the registries, as schema 1 did at report time."""
    condition = _condition_from_schema1(d["test_condition"])
    modality = condition.axes()["test_modality"]
    kinds = [_schema1_modality_kind(d["dataset"], m) for m, _ in condition.corruptions()] or (
        [_schema1_modality_kind(d["dataset"], modality)] if modality else [])
    families = [_schema1_family(name, kind) for (_, name), kind in
                zip(condition.corruptions(), kinds, strict=False)]
    provenance = dict(d.get("provenance", {}))
    method = d["method"] if d.get("train_condition", "clean") == "clean" else \
        f"{d['method']}@{d['train_condition']}"
    return Record(
        key=d["key"], study=d["study"], dataset=d["dataset"],
        dataset_version=d["dataset_version"],
        method=_method_info({"label": method, "name": d["method"], "family": d["family"],
                             "params": d.get("method_params", {}), "code": None}),
        seed=int(d["seed"]),
        condition=with_reference_scale(condition, "+".join(k or "" for k in kinds)),
        modality_kind="+".join(kinds) if all(kinds) and kinds else None,
        corruption_family="+".join(dict.fromkeys(families)) if families else None,
        # records from before the torch backend existed used the reference
        corruption_backend=d.get("corruption_backend", "reference"),
        metrics=dict(d["metrics"]), n=int(d["n"]), correct=unpack_bits(d["correct"], d["n"]),
        predictions=None, details=d.get("details", {}),
        train_config=d.get("train_config", {}), provenance=provenance, schema=1)


# The kinds of the modalities of the datasets schema 1 was written for (avdigits, cremad,
# avmnist and the prepared real datasets all name them so).
SCHEMA1_MODALITY_KINDS = {"visual": "image", "audio": "audio"}
# The built-in unimodal references, whose records were written before MethodInfo said
# which modalities a method reads.
UNIMODAL_BEFORE_RECORDED = {"audio_only": ("audio",), "visual_only": ("visual",)}


def _method_info(data: dict[str, Any]) -> MethodInfo:
    modalities = data.get("modalities")
    if modalities is None:
        modalities = UNIMODAL_BEFORE_RECORDED.get(data["name"])
    return MethodInfo(**{**data, "modalities": tuple(modalities) if modalities else None})


def _schema1_modality_kind(dataset: str, modality: str) -> str | None:
    return SCHEMA1_MODALITY_KINDS.get(modality)


def _schema1_family(name: str, kind: str | None) -> str | None:
    from corruptions import registry

    try:
        return registry.get(name, kind).family if kind else None
    except KeyError:
        return None


def make_record(**overrides: Any) -> Record:
    """A valid record with small defaults, for tests: one clean cell of 4 samples."""
    n = overrides.pop("n", None)
    correct = overrides.pop("correct", None)
    accuracy = overrides.pop("accuracy", None)
    if correct is None:
        n = n or 4
        k = round((0.5 if accuracy is None else accuracy) * n)
        correct = np.arange(n) < k
    correct = np.asarray(correct, dtype=bool)
    method = overrides.pop("method", "m")
    if isinstance(method, str):
        method = MethodInfo(method, method.split("[")[0], overrides.pop("method_family", "f"),
                            modalities=overrides.pop("modalities", None))
    fields: dict[str, Any] = {
        "key": "k", "study": "s", "dataset": "d", "dataset_version": "1", "method": method,
        "seed": 0, "condition": Clean(), "modality_kind": None, "corruption_family": None,
        "corruption_backend": "torch", "metrics": {"accuracy": float(correct.mean())},
        "n": len(correct), "correct": correct,
        "provenance": {"code_version": "test", "created": "2026-01-01T00:00:00"},
    }
    fields.update(overrides)
    return Record(**fields)


def numerics_of(provenance: dict[str, Any]) -> str:
    """A record's numerics environment (`rambench.provenance.numerics`: what its last digits
    depend on besides code, settings and seed); for a record written before it was kept, its
    torch and numpy versions and its device (which names the CPU's thread count)."""
    if provenance.get("numerics"):
        return str(provenance["numerics"])
    packages = provenance.get("packages") or {}
    return (f"torch {packages.get('torch', '?')}; numpy {packages.get('numpy', '?')}; "
            f"{provenance.get('device', '?')}")
