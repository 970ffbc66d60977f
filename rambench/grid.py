"""Grids: which test conditions to evaluate, as YAML presets or a user's own file.

Schema (every key optional except `conditions`):

    seeds: [0, 1, 2]              # default seeds for `rambench run`
    methods: [raml, late_fusion]  # default methods (a list of names or variant labels, or a
                                  # mapping name -> {param: [values]}: the product of variants)
    epochs: 30                    # overrides train.epochs
    set: {raml.alpha: 0.5}        # like --set
    split: val                    # evaluate on the validation split (default: test), to
                                  # choose settings without looking at the test split
    reference: late_fusion        # the study's mCE reference and the method every other
    against: raml                 # is tested against (tables, reports, compare)
    conditions:
      clean: true
      corruptions:                # modality -> list of corruption names, "all" (the test
        visual: all               # corruptions) or "held_out" (corruptions.registry.HELD_OUT,
                                  # for choosing settings on the validation split)
        audio: [gaussian_noise, reverb]
      severities: [1, 2, 3, 4, 5]
      missing_modalities: all     # each listed modality dropped for every sample
      missing_rates: [0.1, 0.5, 0.9]
      mixed:                      # each modality of each sample corrupted w.p. probability
        corruptions: {visual: gaussian_noise, audio: gaussian_noise}
        severities: [1, 3, 5]
        probability: 0.5
        # or `protocol: qmf`: QMF/PDF's noisy-modality protocol (corruptions.protocols)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from corruptions import registry as corruption_registry
from corruptions.registry import SEVERITIES, unknown_name_message
from corruptions.scales import SCALE_CHOICES
from rambench.datasets.base import SPLITS as DATASET_SPLITS
from rambench.errors import UsageError
from rambench.schema import AVEvent, Clean, Condition, Corrupt, Drop, Mixed, RandomMissing

TOP_KEYS = ("seeds", "methods", "epochs", "set", "conditions", "description",
            "severity_scale", "tune", "split", "reference", "against")
# the splits a grid's conditions can be evaluated on (never the training split)
SPLITS = tuple(sorted(set(DATASET_SPLITS) - {"train"}, reverse=True))
TUNE_KEYS = ("lr", "seed")
CONDITION_KEYS = ("clean", "corruptions", "severities", "missing_modalities", "missing_rates",
                  "mixed", "av")
AV_KEYS = ("events", "severities", "noise_dir")
MIXED_KEYS = ("corruptions", "severities", "probability", "protocol")
# mixed protocols: the corruption each modality kind gets, and the probability
MIXED_PROTOCOLS = {"qmf": ({"image": "qmf_gaussian_noise", "audio": "gaussian_noise"}, 0.5)}


@dataclass
class Grid:
    name: str
    source: str  # where it came from (preset name or file path), for error messages
    raw: dict[str, Any]
    seeds: list[int] | None = None
    methods: list[str] | None = None  # method names and variant labels, e.g. raml[norm=hard]
    epochs: int | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    severity_scale: str | None = None  # imagenet | tinyimagenet | cifar | auto
    tune: dict[str, Any] | None = None  # {lr: [candidates] (default: x0.5, x1, x2), seed}
    split: str = "test"  # "val": choose settings on the validation split, never on test
    reference: str | None = None  # the study's method normalising mCE (tables, reports)
    against: str | None = None  # the study's method every other is tested against

    @property
    def hash(self) -> str:
        return hashlib.sha256(yaml.safe_dump(self.raw, sort_keys=True).encode()).hexdigest()[:12]

    def conditions(self, modality_kinds: dict[str, str]) -> list[Condition]:
        """The grid's test conditions for a dataset with these modalities (name -> kind)."""
        return expand_conditions(self.raw.get("conditions") or {}, modality_kinds, self.source)


def preset_names() -> list[str]:
    folder = resources.files("rambench") / "grids"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_grid(spec: str) -> Grid:
    """A preset name (see `rambench ls grids`) or a path to a YAML file."""
    if spec.endswith(".yaml") and not Path(spec).exists() and spec[:-5] in preset_names():
        spec = spec[:-5]  # `--grid raml-ablation.yaml` names the preset too
    if spec in preset_names():
        text = (resources.files("rambench") / "grids" / f"{spec}.yaml").read_text()
        name, source = spec, f"grid preset {spec!r}"
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
        name, source = path.stem, str(path)
    else:
        raise UsageError(unknown_name_message("grid", spec, preset_names())
                         + " (or give a path to a .yaml file)")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UsageError(f"{source}: not valid YAML: {err}") from None
    return parse_grid(raw, name, source)


def _fail(source: str, key: str, message: str):
    raise UsageError(f"{source}: key '{key}': {message}")


def _check_keys(d: Any, allowed: tuple[str, ...], source: str, where: str) -> dict:
    if not isinstance(d, dict):
        _fail(source, where, f"expected a mapping with keys {', '.join(allowed)}")
    for key in d:
        if key not in allowed:
            _fail(source, f"{where}.{key}".lstrip("."),
                  unknown_name_message("key", str(key), allowed))
    return d


def _int_list(value: Any, source: str, key: str, allowed=None) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        _fail(source, key, f"expected a list of integers; got {value!r}")
    if allowed is not None and any(v not in allowed for v in value):
        _fail(source, key, f"allowed values are {list(allowed)}; got {value!r}")
    return list(value)


def parse_grid(raw: Any, name: str, source: str) -> Grid:
    raw = _check_keys(raw if raw is not None else {}, TOP_KEYS, source, "")
    if "conditions" not in raw:
        _fail(source, "conditions", "missing: a grid must list its test conditions")
    grid = Grid(name=name, source=source, raw=raw)
    if "seeds" in raw:
        grid.seeds = _int_list(raw["seeds"], source, "seeds")
    if "methods" in raw:
        grid.methods = _method_labels(raw["methods"], source)
    if "epochs" in raw:
        epochs = raw["epochs"]
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            _fail(source, "epochs", f"expected a positive integer; got {epochs!r}")
        grid.epochs = epochs
    if "tune" in raw:
        tune = _check_keys(raw["tune"] if raw["tune"] is not None else {}, TUNE_KEYS, source,
                           "tune")
        lrs = tune.get("lr")
        if lrs is not None and not (isinstance(lrs, list) and lrs and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                for v in lrs)):
            _fail(source, "tune.lr", f"expected a list of positive learning rates; got {lrs!r}")
        seed = tune.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            _fail(source, "tune.seed", f"expected a non-negative integer; got {seed!r}")
        grid.tune = {"lr": lrs, "seed": seed}
    if "severity_scale" in raw:
        scale = raw["severity_scale"]
        if scale not in SCALE_CHOICES:
            _fail(source, "severity_scale",
                  unknown_name_message("severity scale", str(scale), SCALE_CHOICES))
        grid.severity_scale = scale
    for key in ("reference", "against"):
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key]:
                _fail(source, key, f"expected a method label; got {raw[key]!r}")
            setattr(grid, key, raw[key])
    if "split" in raw:
        if raw["split"] not in SPLITS:
            _fail(source, "split", unknown_name_message("split", str(raw["split"]), SPLITS))
        grid.split = raw["split"]
    if "set" in raw:
        overrides = raw["set"]
        if not isinstance(overrides, dict):
            _fail(source, "set", "expected a mapping of scope.key: value")
        for key in overrides:
            if "." not in str(key):
                _fail(source, f"set.{key}", "expected scope.key, e.g. raml.alpha")
        grid.overrides = {str(k): str(v).lower() if isinstance(v, bool) else str(v)
                          for k, v in overrides.items()}
    return grid


def _method_labels(value: Any, source: str) -> list[str]:
    """`methods:` as labels: a list of names/labels, or name -> {param: value or [values]}
    expanded to the product of its variants (an empty mapping: the defaults)."""
    import itertools

    from rambench.identity import format_value

    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) and v for v in value):
            _fail(source, "methods", f"expected a list of method names; got {value!r}")
        return list(value)
    if not isinstance(value, dict) or not value:
        _fail(source, "methods", "expected a list of method names or a mapping "
                                 "name -> {param: [values]}")
    labels = []
    for name, axes in value.items():
        axes = axes or {}
        if not isinstance(axes, dict):
            _fail(source, f"methods.{name}", f"expected a mapping param -> [values]; "
                                             f"got {axes!r}")
        options = [[(k, v) for v in (vs if isinstance(vs, list) else [vs])]
                   for k, vs in axes.items()]
        for combo in itertools.product(*options):
            inner = ",".join(f"{k}={format_value(v)}" for k, v in combo)
            labels.append(f"{name}[{inner}]" if inner else str(name))
    return labels


def _names(value: Any, valid: list[str], what: str, source: str, key: str) -> list[str]:
    """'all', one name or a list of names, each checked against `valid`."""
    if value == "all":
        return list(valid)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        _fail(source, key, f"expected 'all' or a list of {what} names ({', '.join(valid)})")
    for name in value:
        if name not in valid:
            _fail(source, key, unknown_name_message(what, str(name), valid))
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
    spec: Any, kinds: dict[str, str], source: str
) -> list[Condition]:
    spec = _check_keys(spec, CONDITION_KEYS, source, "conditions")
    out: list[Condition] = []
    if spec.get("clean", True):
        out.append(Clean())
    severities = _int_list(spec.get("severities", list(SEVERITIES)), source,
                           "conditions.severities", SEVERITIES)
    corruptions = spec.get("corruptions") or {}
    if not isinstance(corruptions, dict):
        _fail(source, "conditions.corruptions", "expected a mapping modality -> corruptions")
    for modality, names in corruptions.items():
        key = f"conditions.corruptions.{modality}"
        if modality not in kinds:
            _fail(source, key, unknown_name_message("modality", str(modality), kinds))
        for name in _corruption_names(names, kinds[modality], source, key):
            out += [Corrupt(modality, name, s) for s in severities]
    for modality in _modality_list(spec.get("missing_modalities", []), kinds, source,
                                   "conditions.missing_modalities"):
        out.append(Drop(modality))
    rates = spec.get("missing_rates", [])
    if not isinstance(rates, list) or not all(
        isinstance(r, (int, float)) and 0 < r < 1 for r in rates
    ):
        _fail(source, "conditions.missing_rates", f"expected rates in (0, 1); got {rates!r}")
    out += [RandomMissing(float(r)) for r in rates]
    if "mixed" in spec:
        out += _mixed_conditions(spec["mixed"], kinds, source)
    if "av" in spec:
        out += _av_conditions(spec["av"], kinds, source)
    return out


def _av_conditions(spec: Any, kinds: dict[str, str], source: str) -> list[Condition]:
    """Co-occurring audio-visual events on the dataset's first image and audio modality."""
    spec = _check_keys(spec if spec is not None else {}, AV_KEYS, source, "conditions.av")
    image = [m for m, k in kinds.items() if k == "image"]
    audio = [m for m, k in kinds.items() if k == "audio"]
    if not image or not audio:
        found = ", ".join(f"{m} ({k})" for m, k in kinds.items())
        _fail(source, "conditions.av", f"audio-visual events need an image and an audio "
                                       f"modality; this dataset has {found}")
    events = _names(spec.get("events", "all"), corruption_registry.names("av"),
                    "audio-visual event", source, "conditions.av.events")
    severities = _int_list(spec.get("severities", list(SEVERITIES)), source,
                           "conditions.av.severities", SEVERITIES)
    noise_dir = digest = None
    if spec.get("noise_dir") is not None:
        folder = Path(str(spec["noise_dir"])).expanduser().resolve()
        if not folder.is_dir():
            _fail(source, "conditions.av.noise_dir", f"no such folder: {folder}")
        noise_dir, digest = str(folder), _folder_digest(folder, events)
    return [AVEvent(e, s, (image[0], audio[0]), noise_dir, digest)
            for e in events for s in severities]


def _folder_digest(folder: Path, events: list[str]) -> str:
    """A hash of the recordings an AV condition reads, so that new files mean new results."""
    sha = hashlib.sha256()
    for event in events:
        for path in sorted((folder / event).glob("*.wav")) if (folder / event).is_dir() else []:
            sha.update(f"{event}/{path.name}".encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def _mixed_conditions(spec: Any, kinds: dict[str, str], source: str) -> list[Condition]:
    spec = _check_keys(spec, MIXED_KEYS, source, "conditions.mixed")
    default = {m: "gaussian_noise" for m in kinds}
    if "protocol" in spec:
        protocol = spec["protocol"]
        if protocol not in MIXED_PROTOCOLS:
            _fail(source, "conditions.mixed.protocol",
                  unknown_name_message("protocol", str(protocol), MIXED_PROTOCOLS))
        for key in ("corruptions", "probability"):
            if key in spec:
                _fail(source, f"conditions.mixed.{key}",
                      f"set by protocol {protocol!r}; leave it out")
        by_kind, probability = MIXED_PROTOCOLS[protocol]
        default = {m: by_kind[kind] for m, kind in kinds.items()}
        spec = {**spec, "probability": probability}
    chosen = spec.get("corruptions", default)
    if not isinstance(chosen, dict):
        _fail(source, "conditions.mixed.corruptions", "expected a mapping modality -> name")
    pairs = []
    for modality, name in chosen.items():
        key = f"conditions.mixed.corruptions.{modality}"
        if modality not in kinds:
            _fail(source, key, unknown_name_message("modality", str(modality), kinds))
        pairs.append((modality, _corruption_names(name, kinds[modality], source, key)[0]))
    probability = spec.get("probability", 0.5)
    if not isinstance(probability, (int, float)) or not 0 < probability <= 1:
        _fail(source, "conditions.mixed.probability", f"expected (0, 1]; got {probability!r}")
    severities = _int_list(spec.get("severities", list(SEVERITIES)), source,
                           "conditions.mixed.severities", SEVERITIES)
    return [Mixed(tuple(pairs), s, float(probability)) for s in severities]
