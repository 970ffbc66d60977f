"""A study's settings: one `Study`, whichever way they are given.

A study file (YAML: a preset such as `smoke`, a user's file, or the `study.yaml` a run
saves beside its results) says which dataset, methods, seeds, training settings and test
conditions a study has; `rambench run` options and `rambench.benchmark(...)` arguments
override it. Precedence, lowest first: the dataclass defaults below < the study file < the
command line or API arguments < a variant label's own values (`raml[norm=hard]`, applied
when methods are resolved). A run saves its study as `<out>/<study>/study.yaml`;
`rambench run --study NAME` with no other option runs exactly that again, and worker
processes plan from it.

    description: what the study is for
    dataset: avdigits
    methods: [raml, late_fusion]  # names or variant labels, or name -> {param: [values]}
    seeds: [0, 1, 2]
    epochs: 30                    # overrides train.epochs
    set: {raml.alpha: 0.5}        # like --set
    device: auto
    threads: 1                    # torch threads per process: part of the numbers (CPU)
    corruption_backend: torch     # or reference
    severity_scale: auto          # imagenet | tinyimagenet | cifar | auto
    limit: null                   # a debug subset: the first N samples of every split
    split: test                   # or val: choose settings without the test split
    grid: smoke                   # the name the conditions are known by (tables, records)
    tune: {lr: [1e-3, 2e-3], seed: 0}   # pick each method's lr first (`rambench.tune`)
    tuned: {raml: {lr: 0.002, seed: 0, val_accuracy: {...}}}   # what tuning chose
    reference: late_fusion        # the mCE reference and the method every other
    against: raml                 # is tested against (tables, reports, compare)
    published:                    # values from the literature `rambench reproduce` checks
      late_fusion: {clean: {values: [51.7, 59.8], sources: [where each was published]}}
    conditions: {...}             # the test conditions (`rambench.grid`)
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from corruptions.backends import BACKENDS
from corruptions.registry import unknown_name_message
from corruptions.scales import SCALE_CHOICES
from rambench.errors import UsageError
from rambench.grid import SPLITS, Grid, check_keys, fail, int_list

FILE_NAME = "study.yaml"
KEYS = ("description", "grid", "dataset", "methods", "seeds", "epochs", "set", "device",
        "threads", "corruption_backend", "severity_scale", "limit", "split", "tune", "tuned",
        "reference", "against", "published", "conditions")
TUNE_KEYS = ("lr", "seed")
Overrides = dict[str, dict[str, str]]  # scope -> key -> value (as typed)


@dataclass(frozen=True)
class Study:
    """Everything that determines a study's results but its code. `name` and `out` say where
    it is stored (`<out>/<name>`), not what it computes."""

    grid: Grid
    name: str = "default"
    out: str = "results"
    description: str = ""
    dataset: str = "avdigits"
    methods: tuple[Any, ...] = ()  # names, variant labels, file.py:Class, or classes (API)
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None
    set: Overrides = field(default_factory=dict)
    device: str = "auto"
    # torch threads in every process that trains or evaluates (whichever executor): on a
    # CPU the numbers are bit-identical for the same count, and may differ for another
    threads: int = 1
    corruption_backend: str = "torch"
    severity_scale: str = "auto"
    limit: int | None = None
    split: str = "test"
    tune: dict[str, Any] | None = None  # {lr: [candidates] or None (x0.5, x1, x2), seed}
    tuned: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> choice
    reference: str | None = None
    against: str | None = None
    # method label -> main-table column -> {values: [published values], sources: [...]}
    published: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
                raise UsageError(f"seeds must be integers in 0..{2**32 - 1}; got {seed!r}")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(
                self.epochs, int) or self.epochs < 1):
            raise UsageError(f"--epochs must be at least 1; got {self.epochs!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) \
                or self.threads < 1:
            raise UsageError(f"--threads must be at least 1; got {self.threads!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(
                self.limit, int) or self.limit < 1):
            raise UsageError(f"--limit must be a positive number of samples; got {self.limit!r}")
        if self.corruption_backend not in BACKENDS:
            raise UsageError(unknown_name_message("corruption backend",
                                                  str(self.corruption_backend), BACKENDS))
        if self.severity_scale not in SCALE_CHOICES:
            raise UsageError("--severity-scale: " + unknown_name_message(
                "severity scale", str(self.severity_scale), SCALE_CHOICES))
        if self.split not in SPLITS:
            raise UsageError(unknown_name_message("split", str(self.split), SPLITS))

    @property
    def root(self) -> Path:
        return Path(self.out) / self.name

    def replace(self, **changes: Any) -> Study:
        """This study with `changes`; None values leave a setting as it is, `set` merges
        (the change wins per key)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if "set" in changes:
            merged = {scope: dict(values) for scope, values in self.set.items()}
            for scope, values in changes["set"].items():
                merged.setdefault(scope, {}).update(values)
            changes["set"] = merged
        for key in ("methods", "seeds"):
            if key in changes:
                changes[key] = tuple(dict.fromkeys(changes[key]))
        return dataclasses.replace(self, **changes)

    def to_mapping(self) -> dict[str, Any]:
        """The study file's content (`name` and `out` are where it is saved, not in it)."""
        classes = [m for m in self.methods if not isinstance(m, str)]
        if classes:
            raise UsageError(f"a method given as a class object ({classes[0].__name__}) "
                             "cannot be saved in a study file: name it, or give its file as "
                             "path/to/file.py:ClassName")
        data = {"description": self.description, "grid": self.grid.name,
                "dataset": self.dataset,
                "methods": list(self.methods), "seeds": list(self.seeds),
                "epochs": self.epochs,
                "set": {f"{s}.{k}": v for s, values in self.set.items()
                        for k, v in values.items()},
                "device": self.device, "threads": self.threads,
                "corruption_backend": self.corruption_backend,
                "severity_scale": self.severity_scale, "limit": self.limit,
                "split": self.split, "tune": self.tune, "tuned": self.tuned,
                "reference": self.reference, "against": self.against,
                "published": self.published, "conditions": self.grid.conditions_spec}
        return {k: v for k, v in data.items() if v not in (None, "", {}, [])}

    def save(self) -> Path:
        """Write `<out>/<name>/study.yaml` (atomically)."""
        from rambench._fs import atomic_write_bytes

        path = self.root / FILE_NAME
        text = f"# rambench study {self.name!r}: `rambench run --study {self.name} --out " \
               f"{self.out}` runs it again\n" + yaml.safe_dump(self.to_mapping(),
                                                               sort_keys=False)
        atomic_write_bytes(path, text.encode())
        return path


def parse(raw: Any, grid_name: str, source: str, **location: Any) -> Study:
    """A study from a study file's content; `grid_name`: what its conditions are called
    unless it says (`grid:`); `source` names it in error messages; `location`: its `name`
    and `out`."""
    raw = check_keys(raw if raw is not None else {}, KEYS, source, "")
    if "conditions" not in raw:
        fail(source, "conditions", "missing: a study must list its test conditions")
    grid_name = raw.get("grid", grid_name)
    if not isinstance(grid_name, str) or not grid_name:
        fail(source, "grid", f"expected the name the conditions are known by; got {grid_name!r}")
    values: dict[str, Any] = {"grid": Grid(grid_name, source, raw["conditions"])}
    for key in ("description", "dataset", "device", "corruption_backend", "severity_scale",
                "split", "reference", "against"):
        if raw.get(key) is not None:
            if not isinstance(raw[key], str) or not raw[key]:
                fail(source, key, f"expected a name; got {raw[key]!r}")
            values[key] = raw[key]
    for key, valid in (("split", SPLITS), ("severity_scale", SCALE_CHOICES),
                       ("corruption_backend", BACKENDS)):
        if key in values and values[key] not in valid:
            fail(source, key, unknown_name_message(key.replace("_", " "), values[key], valid))
    if "seeds" in raw:
        values["seeds"] = tuple(dict.fromkeys(int_list(raw["seeds"], source, "seeds")))
    if "methods" in raw:
        values["methods"] = tuple(dict.fromkeys(method_labels(raw["methods"], source)))
    for key in ("epochs", "limit", "threads"):
        if raw.get(key) is not None:
            number = raw[key]
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                fail(source, key, f"expected a positive integer; got {number!r}")
            values[key] = number
    if "tune" in raw:
        values["tune"] = _tune(raw["tune"], source)
    if raw.get("tuned"):
        if not isinstance(raw["tuned"], dict) or not all(
                isinstance(v, dict) and isinstance(v.get("lr"), (int, float))
                for v in raw["tuned"].values()):
            fail(source, "tuned", "expected a mapping method -> {lr: chosen learning rate}")
        values["tuned"] = dict(raw["tuned"])
    if "set" in raw:
        values["set"] = overrides_of(raw["set"], source)
    if raw.get("published"):
        values["published"] = _published(raw["published"], source)
    try:
        return Study(**values, **location)
    except UsageError as err:
        raise UsageError(f"{source}: {err}") from None


def _tune(value: Any, source: str) -> dict[str, Any]:
    tune = check_keys(value if value is not None else {}, TUNE_KEYS, source, "tune")
    lrs = tune.get("lr")
    if lrs is not None and not (isinstance(lrs, list) and lrs and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in lrs)):
        fail(source, "tune.lr", f"expected a list of positive learning rates; got {lrs!r}")
    seed = tune.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        fail(source, "tune.seed", f"expected a non-negative integer; got {seed!r}")
    return {"lr": lrs, "seed": seed}


def _published(value: Any, source: str) -> dict[str, dict[str, Any]]:
    """`published:`: method -> column -> {values: [numbers], sources: [texts]}, every value
    with a source."""
    if not isinstance(value, dict):
        fail(source, "published", "expected a mapping method -> {column: {values, sources}}")
    out: dict[str, dict[str, Any]] = {}
    for method, columns in value.items():
        if not isinstance(columns, dict) or not columns:
            fail(source, f"published.{method}", "expected a mapping column -> {values, "
                                                 "sources}, e.g. clean: {values: [51.7], "
                                                 "sources: [paper, table 2]}")
        for column, entry in columns.items():
            key = f"published.{method}.{column}"
            entry = check_keys(entry, ("values", "sources"), source, key)
            numbers, sources = entry.get("values"), entry.get("sources")
            if not isinstance(numbers, list) or not numbers or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
                fail(source, f"{key}.values", f"expected a list of numbers; got {numbers!r}")
            if not isinstance(sources, list) or len(sources) != len(numbers) or not all(
                    isinstance(t, str) and t for t in sources):
                fail(source, f"{key}.sources", "expected one source (text) per value")
            out.setdefault(str(method), {})[str(column)] = {
                "values": [float(v) for v in numbers], "sources": list(sources)}
    return out


def overrides_of(value: Any, source: str) -> Overrides:
    """`set:` ({scope.key: value}) as scope -> {key: value as text}."""
    if not isinstance(value, dict):
        fail(source, "set", "expected a mapping of scope.key: value")
    out: Overrides = {}
    for key, item in value.items():
        scope, dot, name = str(key).partition(".")
        if not dot or not scope or not name:
            fail(source, f"set.{key}", "expected scope.key, e.g. raml.alpha")
        out.setdefault(scope, {})[name] = str(item).lower() if isinstance(item, bool) \
            else str(item)
    return out


def method_labels(value: Any, source: str) -> list[str]:
    """`methods:` as labels: a list of names/labels, or name -> {param: value or [values]}
    expanded to the product of its variants (an empty mapping: the defaults)."""
    from rambench.identity import format_value

    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) and v for v in value):
            fail(source, "methods", f"expected a list of method names; got {value!r}")
        return list(value)
    if not isinstance(value, dict) or not value:
        fail(source, "methods", "expected a list of method names or a mapping "
                                "name -> {param: [values]}")
    labels = []
    for name, axes in value.items():
        axes = axes or {}
        if not isinstance(axes, dict):
            fail(source, f"methods.{name}", f"expected a mapping param -> [values]; "
                                            f"got {axes!r}")
        options = [[(k, v) for v in (vs if isinstance(vs, list) else [vs])]
                   for k, vs in axes.items()]
        for combo in itertools.product(*options):
            inner = ",".join(f"{k}={format_value(v)}" for k, v in combo)
            labels.append(f"{name}[{inner}]" if inner else str(name))
    return labels


def preset_names() -> list[str]:
    folder = resources.files("rambench") / "grids"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read(spec: str, **location: Any) -> Study:
    """A preset name (see `rambench ls grids`) or a path to a study file."""
    if spec.endswith(".yaml") and not Path(spec).exists() and spec[:-5] in preset_names():
        spec = spec[:-5]  # `--grid raml-ablation.yaml` names the preset too
    if spec in preset_names():
        text = (resources.files("rambench") / "grids" / f"{spec}.yaml").read_text()
        grid_name, source = spec, f"grid preset {spec!r}"
    elif spec.endswith((".yaml", ".yml")) or Path(spec).exists():
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"grid file {spec} does not exist"
                             + (" (it is a folder)" if path.is_dir() else ""))
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise UsageError(f"{spec}: not a UTF-8 text file (byte {err.start}); a grid is "
                             "YAML text") from None
        grid_name, source = path.stem, str(path)
    else:
        raise UsageError(unknown_name_message("grid", spec, preset_names())
                         + " (or give a path to a .yaml file)")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UsageError(f"{source}: not valid YAML: {err}") from None
    return parse(raw, grid_name, source, **location)


def stored(out: str | Path, name: str) -> Study | None:
    """The study saved at `<out>/<name>/study.yaml`, or None."""
    path = Path(out) / name / FILE_NAME
    return read(str(path), name=name, out=str(out)) if path.is_file() else None


def build(grid: str | Study | None = None, *, name: str = "default", out: str | Path = "results",
          methods: Any = None, dataset: str | None = None, seeds: Any = None,
          assignments: Any = (), epochs: int | None = None, device: str | None = None,
          corruption_backend: str | None = None, severity_scale: str | None = None,
          limit: int | None = None, tune: bool = False, threads: int | None = None) -> Study:
    """The study the command line or the API asks for: the study file `grid` (a preset, a
    path, or a `Study`; None: the study stored under `<out>/<name>` if there is one, else
    the `smoke` preset), with every option given (not None) overriding it."""
    from rambench.params import parse_assignments
    from rambench.store import check_study_name

    check_study_name(name)
    if isinstance(grid, Study):
        base = grid
    else:
        base = (stored(out, name) if grid is None else None) or read(grid or "smoke")
    if isinstance(methods, (str, type)):
        methods = [methods]
    command = assignments if isinstance(assignments, dict) else parse_assignments(assignments)
    return dataclasses.replace(base, name=name, out=str(out)).replace(
        methods=methods or None, dataset=dataset, seeds=seeds or None, set=command or None,
        epochs=epochs, device=device, corruption_backend=corruption_backend,
        severity_scale=severity_scale, limit=limit, threads=threads,
        tune={"lr": None, "seed": 0} if tune and base.tune is None else None)
