"""A study's settings (`rambench.study.Study`) resolved into what runs it: the dataset,
the methods' classes and hyper-parameters, the training settings, the device:
`resolve(study) -> StudySpec`, validated here once.

Training settings: TrainConfig's defaults < the dataset's training defaults < the study's
`set: {train.*}` < its `epochs`; a method's hyper-parameters: its Params defaults < the
study's `set: {method.*}` < a variant label's own values (`raml[norm=hard]`); a tuned
learning rate (`tuned:`) applies to its method.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from corruptions import registry as corruption_registry
from corruptions.scales import resolve_scale
from rambench.check import probe
from rambench.datasets import Dataset, datasets
from rambench.device import resolve_device
from rambench.errors import UsageError
from rambench.grid import Grid
from rambench.identity import (
    MethodId,
    method_code_hash,
    non_default_params,
    parse_label,
    split_adaptation,
)
from rambench.methods import Method, methods
from rambench.methods.adaptation import Adaptation, adaptations
from rambench.params import apply_overrides
from rambench.schema import AVEvent, Condition, Provided, SegmentLoss
from rambench.study import Overrides, Study
from rambench.train import TrainConfig


@dataclass(frozen=True)
class AdaptationSpec:
    """A test-time adaptation as a study applies it: its class and settings (its identity
    is the method's `id.adaptation`)."""

    cls: type[Adaptation]
    params: Any


@dataclass(frozen=True)
class MethodSpec:
    """A method as a study runs it: its identity, class and hyper-parameters, and the
    test-time adaptation its cells go through, if any (`late_fusion+tent`)."""

    id: MethodId
    cls: type[Method]
    params: Any
    # training settings of this method only (e.g. a tuned learning rate, `rambench.tune`)
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    adaptation: AdaptationSpec | None = None

    @property
    def label(self) -> str:
        return self.id.label

    @property
    def family(self) -> str:
        return self.cls.family

    @property
    def adaptation_identity(self) -> dict[str, Any] | None:
        """{name, params, code} of its test-time adaptation (in its cells' keys and
        records); None without one."""
        if self.adaptation is None:
            return None
        return {"name": self.id.adaptation.name, "code": self.id.adaptation.code,
                "params": dataclasses.asdict(self.adaptation.params)}


@dataclass(frozen=True)
class StudySpec:
    """A study resolved: its settings (`study`) and the objects they name."""

    study: Study
    dataset: Dataset
    methods: tuple[MethodSpec, ...]
    train: TrainConfig
    device: torch.device

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.study.seeds

    @property
    def grid(self) -> Grid:
        return self.study.grid

    @property
    def corruption_backend(self) -> str:
        return self.study.corruption_backend

    @property
    def severity_scale(self) -> str:
        return self.study.severity_scale

    @property
    def split(self) -> str:
        """The split the conditions are evaluated on: "test", or "val" to choose settings."""
        return self.study.split

    def train_config(self, method: MethodSpec) -> TrainConfig:
        """The study's training settings with the method's own (e.g. a tuned lr) applied."""
        return dataclasses.replace(self.train, **method.train)

    def scale_of(self, modality: str) -> str:
        """The resolved severity scale of an image modality (`auto`: from its frame size)."""
        shape = self.dataset.modalities[modality].shape  # ([T,] H, W, C)
        return resolve_scale(self.severity_scale, *shape[-3:-1])

    def conditions(self) -> list[Condition]:
        """The grid's conditions, each image corruption with its resolved severity scale."""
        kinds = {m: s.kind for m, s in self.dataset.modalities.items()}
        out = []
        provided = self.dataset.provided()
        for condition in self.grid.conditions(kinds, provided):
            if isinstance(condition, Provided) and self.split != "test":
                raise UsageError(f"grid {self.grid.source}: conditions.provided: the provided "
                                 f"test sets replace the test split's inputs; the study is on "
                                 f"the {self.split} split")
            scaled = [m for m, name in condition.corruptions()
                      if kinds[m] == "image" and corruption_registry.get(name, "image").scaled]
            if isinstance(condition, SegmentLoss) and kinds[condition.test_modality] == \
                    "image" and len(self.dataset.modalities[condition.test_modality].shape) < 4:
                raise UsageError(
                    f"grid {self.grid.source}: conditions.missing_segments: modality "
                    f"{condition.test_modality!r} of {self.dataset.name} holds still images "
                    f"(no time axis): a lost segment needs audio or clips; name one of "
                    f"{', '.join(m for m, k in kinds.items() if k == 'audio')}")
            if isinstance(condition, AVEvent) and corruption_registry.get(
                    condition.event, "av").scaled:
                scaled = [condition.modalities[0]]
            if scaled:
                condition = dataclasses.replace(condition, severity_scale=self.scale_of(scaled[0]))
            out.append(condition)
        return out


def _class_and_name(text: str) -> tuple[type[Method], str]:
    """A registered name or `path/file.py:Class` -> (class, name). A file plug-in is named
    `stem:Class`, unless the same class is also registered (e.g. through an entry point),
    in which case the registered name wins: one class, one identity."""
    if isinstance(text, type):
        return text, _registered_name(text) or text.__name__
    cls = methods.get(text)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        what = "a class" if isinstance(cls, type) else f"a {type(cls).__name__}"
        raise UsageError(f"{text!r} is {what}, not a subclass of rambench.methods.Method")
    if text in methods.names():
        return cls, text
    path_text, attr = text.rsplit(":", 1)
    return cls, _registered_name(cls) or f"{Path(path_text).stem}:{attr}"


def _registered_name(cls: type) -> str | None:
    try:
        source = Path(inspect.getfile(cls)).resolve()
    except TypeError:
        return None
    for name in methods.names():
        other = methods.get(name)
        if other is cls:
            return name
        try:
            same_file = Path(inspect.getfile(other)).resolve() == source
        except TypeError:
            continue
        if same_file and other.__qualname__ == cls.__qualname__:
            return name
    return None


def resolve_methods(requested: Sequence[str | type], overrides: Overrides,
                    dataset: Dataset | None = None) -> list[MethodSpec]:
    """Method names, variant labels (raml[norm=hard]), file.py:Class, classes or 'all' ->
    specs. `overrides` (from --set and the grid) apply to every variant of their scope.
    With a `dataset`, each method's `supports(ctx)` is asked: a method that 'all' brought
    in and that declines the dataset is skipped with a warning; one named explicitly is a
    UsageError giving the reason."""
    import logging

    from rambench.methods import MethodContext

    expanded: list[tuple[str | type, bool]] = []  # (item, whether 'all' brought it in)
    for item in requested:
        expanded += [(n, True) for n in methods.names()] if item == "all" else [(item, False)]
    ctx = MethodContext.from_dataset(dataset, TrainConfig().feature_dim) \
        if dataset is not None else None
    specs: dict[str, MethodSpec] = {}
    scopes_used = {"train"}
    for item, from_all in expanded:
        adapted = None
        if isinstance(item, str):
            item, adapted = split_adaptation(item)
        base, variant = (item, {}) if isinstance(item, type) else parse_label(item)
        cls, name = _class_and_name(base)
        reason = cls.supports(ctx) if ctx is not None else None
        if reason is not None:
            if from_all:
                logging.getLogger("rambench").warning("skipping %s: %s", name, reason)
                scopes_used.update(s for s in (name, cls.__name__) if s in overrides)
                continue
            raise UsageError(f"method {name!r} does not support dataset "
                             f"{dataset.name!r}: {reason}")
        scopes = [s for s in (name, cls.__name__, base if isinstance(base, str) else None)
                  if s in overrides]
        scopes_used.update(scopes)
        values = {k: v for s in scopes for k, v in overrides[s].items()}
        if (values or variant) and not dataclasses.fields(cls.Params):
            raise UsageError(f"method {name!r} has no hyper-parameters to set")
        params = apply_overrides(cls.Params, name, {**values, **variant})
        spec = MethodSpec(MethodId(name, non_default_params(params), method_code_hash(cls)),
                          cls, params)
        if adapted is not None:
            spec = _adapted(spec, adapted, overrides, scopes_used)
        specs.setdefault(spec.label, spec)
    unknown = set(overrides) - scopes_used
    if unknown:
        raise UsageError(f"--set scope(s) {', '.join(sorted(unknown))} match no selected "
                         f"method; scopes: train, "
                         f"{', '.join(dict.fromkeys(s.id.name for s in specs.values()))}")
    return list(specs.values())


def _adapted(spec: MethodSpec, text: str, overrides: Overrides,
             scopes_used: set[str]) -> MethodSpec:
    """`spec` with the test-time adaptation `text` ('tent', 'tent[lr=0.01]') applied."""
    name, variant = parse_label(text)
    if not name:
        raise UsageError(f"method {spec.label}+: name a test-time adaptation after '+' "
                         f"({', '.join(adaptations.names())})")
    cls = adaptations.get(name)
    scopes = [s for s in (name, cls.__name__) if s in overrides]
    scopes_used.update(scopes)
    values = {k: v for s in scopes for k, v in overrides[s].items()}
    params = apply_overrides(cls.Params, name, {**values, **variant})
    adaptation = MethodId(name, non_default_params(params), method_code_hash(cls))
    return dataclasses.replace(spec, id=dataclasses.replace(spec.id, adaptation=adaptation),
                               adaptation=AdaptationSpec(cls, params))


def resolve_train_config(overrides: dict[str, str], epochs: int | None,
                         dataset: Dataset | None = None) -> TrainConfig:
    """Training settings: TrainConfig's defaults < the dataset's < `overrides` < epochs."""
    base = apply_overrides(TrainConfig, f"{dataset.name} train defaults",
                           dataset.train_defaults) if dataset is not None else None
    cfg = apply_overrides(TrainConfig, "train", overrides, base)
    if epochs is not None:
        if epochs < 1:
            raise UsageError(f"--epochs must be at least 1; got {epochs}")
        cfg = dataclasses.replace(cfg, epochs=epochs)
    return cfg


def resolve(study: Study) -> StudySpec:
    """Everything `study` needs, checked: the dataset exists, every method exists, accepts
    its hyper-parameters and the dataset, and runs one step on it (`rambench.check.probe`)."""
    device = resolve_device(study.device)  # a usage error before any data is built
    ds = datasets.get(study.dataset)()
    overrides = {scope: dict(values) for scope, values in study.set.items()}
    cfg = resolve_train_config(overrides.pop("train", {}), study.epochs, ds)
    if study.limit is not None:
        from rambench.datasets.base import SPLITS
        from rambench.datasets.limited import Limited

        sizes = {name: len(ds.split(name)) for name in SPLITS}
        if study.limit >= max(sizes.values()):
            raise UsageError(
                f"--limit {study.limit} keeps every sample of {study.dataset} (splits: "
                + ", ".join(f"{name} {n}" for name, n in sizes.items())
                + "): leave --limit out to run the whole dataset, or give a smaller N")
        ds = Limited(ds, study.limit)
        _check_babble_pool(study, ds)
    if not study.methods:
        raise UsageError(f"no method given: pass --method NAME (see rambench ls methods) or "
                         f"list methods in the study file ({study.grid.source})")
    specs = resolve_methods(list(study.methods), overrides, dataset=ds)
    specs = [dataclasses.replace(m, train={**m.train, "lr": study.tuned[m.label]["lr"]})
             if m.label in study.tuned else m for m in specs]
    for spec in specs:
        probe(spec, ds, cfg)
    return StudySpec(study, ds, tuple(specs), cfg, device)


def _check_babble_pool(study: Study, ds: Dataset) -> None:
    """The crowd event babbles the split's other clips: a split of one clip has none."""
    from corruptions import avrobustbench
    from corruptions.av_events import EVENTS
    from rambench.schema import AVEvent

    def babbles(event: str) -> bool:  # crowd, and AVRobustBench's crowd without recordings
        if event.startswith(avrobustbench.PREFIX):
            return avrobustbench.corruption(event).stand_in == "crowd"
        return event in EVENTS and EVENTS[event].bed_kind == "pool"

    kinds = {m: spec.kind for m, spec in ds.modalities.items()}
    crowd = [c for c in study.grid.conditions(kinds, ds.provided()) if isinstance(c, AVEvent)
             and babbles(c.event) and c.noise_dir is None]
    if crowd and len(ds.split(study.split)) < 2:
        raise UsageError(f"the {crowd[0].event} event babbles the other clips of the "
                         f"{study.split} split, and --limit {study.limit} leaves one: give "
                         f"--limit 2 or more, or av.noise_dir with {crowd[0].event}/*.wav")
