"""Planning: training jobs, cells and their content-hash keys; what is done, what is stale.

A key hashes everything that determines a result, in canonical JSON, so the same cell
gets the same key however the command that asked for it was spelled, and a different key
as soon as anything that determines it changes: the method's code, the harness code, a
hyper-parameter, the training settings, the data or the corruption backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from corruptions import registry as corruption_registry
from corruptions.backends import backend_id
from rambench.cache import KEY_LENGTH
from rambench.config import MethodSpec, StudySpec
from rambench.datasets.limited import is_limited
from rambench.errors import UsageError
from rambench.identity import DRAW_SALTS, corruption_code_hash, format_value, harness_id
from rambench.migrate import legacy_cell, same_backend, same_harness, same_method_code
from rambench.schema import AVEvent, Condition, Record
from rambench.store import STUDY_NAME, Store


def content_key(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class Job:
    """One training run: (dataset, method with its code and hyper-parameters, training
    settings, seed, harness)."""

    dataset: str
    dataset_version: str
    method: MethodSpec = field(hash=False)
    train_config: dict[str, Any] = field(hash=False)
    seed: int = 0
    harness: str = ""

    @property
    def key(self) -> str:
        import dataclasses

        return content_key({
            "dataset": [self.dataset, self.dataset_version], "method": self.method.id.name,
            "code": self.method.id.code, "params": dataclasses.asdict(self.method.params),
            "train": self.train_config, "seed": self.seed, "harness": self.harness,
        })

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.key == self.key


@dataclass(frozen=True)
class Cell:
    job: Job
    condition: Condition
    backends: dict[str, str] = field(hash=False, default_factory=dict)  # corruption -> backend
    split: str = "test"  # or "val" (grids that choose settings)
    inputs_code: str = ""  # the harness version that builds test inputs (identity)
    # corruption -> backend with the code's hash replaced by `identity.DRAW_SALTS`
    draw_backends: dict[str, str] = field(hash=False, default_factory=dict)

    def _data_payload(self, backends: dict[str, str], inputs_code: str) -> dict[str, Any]:
        split = {} if self.split == "test" else {"split": self.split}
        return {"dataset": [self.job.dataset, self.job.dataset_version], "seed": self.job.seed,
                "condition": self.condition.to_json(), "backends": backends, **split,
                "inputs_code": inputs_code}

    @property
    def data_key(self) -> str:
        """Key of the test *inputs*: shared by every method, so all see identical data."""
        return content_key(self._data_payload(self.backends, self.inputs_code))

    @property
    def draw_key(self) -> str:
        """What the test inputs' per-sample seeds come from: the data key without the
        code's identity, so that a change of code keeps the random draws."""
        return content_key(self._data_payload(self.draw_backends, DRAW_SALTS["inputs"]))

    @property
    def key(self) -> str:
        payload: dict[str, Any] = {"job": self.job.key, "data": self.data_key}
        adaptation = self.job.method.adaptation_identity
        if adaptation is not None:  # the same trained model, adapted on this cell's inputs
            payload["adaptation"] = adaptation
        return content_key(payload)

    @property
    def coordinates(self) -> tuple[str, str, int, str]:
        """As `Record.coordinates`: the table position this cell fills."""
        return (self.job.dataset, self.job.method.label, self.job.seed, self.condition.label)


@dataclass
class Stale:
    """A planned cell whose stored result came from other code or settings."""

    cell: Cell
    stored: Record

    @property
    def reason(self) -> str:
        old = self.stored
        if not same_method_code(old.method.code, self.cell.job.method):
            return "method code changed"
        adaptation = self.cell.job.method.id.adaptation
        if adaptation is not None and (old.method.adaptation or {}).get("code") != \
                adaptation.code:
            return "adaptation code changed"
        if not same_harness(old.provenance.get("harness"), self.cell.job.harness):
            return "harness code changed"
        old_scale = getattr(old.condition, "severity_scale", None)
        if old_scale != getattr(self.cell.condition, "severity_scale", None):
            return "severity scale changed"
        old_backends = old.provenance.get("corruption_backends")
        if old_backends is not None and (old_backends.keys() != self.cell.backends.keys() or
                                         not all(same_backend(old_backends[k], v)
                                                 for k, v in self.cell.backends.items())):
            return "corruption code changed"
        new = self.cell.job.train_config
        changed = [f"{name} {format_value(old.train_config.get(name))} -> "
                   f"{format_value(new.get(name))}"
                   for name in sorted({*old.train_config, *new})
                   if old.train_config.get(name) != new.get(name)]
        if changed:
            return "trained with " + ", ".join(changed)
        return "settings changed"


@dataclass
class Plan:
    spec: StudySpec
    cells: list[Cell]
    todo: list[Cell]
    stale: list[Stale]  # planned cells whose stored result is of other code or settings
    reused_stale: bool
    store: Store
    # stored results of this plan that a later run of other code or settings superseded;
    # running the plan makes them current again (e.g. after a change was reverted)
    superseded: list[Record] = field(default_factory=list)
    # stored results of this plan's cells under an earlier identity scheme's key, of the
    # same code (`rambench.migrate`), with the cell as that scheme keyed it: running the
    # plan re-keys them
    carried: list[tuple[Record, Cell, Cell]] = field(default_factory=list)
    forced: bool = False
    # what `_timings` found (computed once: a timing run takes seconds)
    _timed: tuple | None = field(default=None, init=False, repr=False, compare=False)
    # hears, in words, that a timing run starts (the CLI prints it: it takes seconds)
    on_timing_run: Callable[[str], None] | None = field(default=None, repr=False,
                                                        compare=False)

    @property
    def done(self) -> int:
        return len(self.cells) - len(self.todo)

    def jobs_to_train(self) -> list[Job]:
        """The jobs of the cells to do that have no checkpoint yet (all of them with
        --force): what a run will train rather than load."""
        jobs = dict.fromkeys(c.job for c in self.todo)
        return [j for j in jobs if self.forced or not self.store.checkpoint_path(j.key).exists()]

    def stale_summary(self) -> str | None:
        """'2 methods changed since their results were stored (raml: method code
        changed; mine: settings changed): re-running them; --reuse-stale keeps ...'."""
        if not self.stale:
            return None
        reasons: dict[str, dict[str, None]] = {}
        for s in self.stale:
            reasons.setdefault(s.cell.job.method.label, {})[s.reason] = None
        what = "; ".join(f"{m}: {', '.join(r)}" for m, r in reasons.items())
        n = len(reasons)
        head = (f"{n} method{'s' if n > 1 else ''} changed since {'their' if n > 1 else 'its'} "
                f"results were stored ({what})")
        if self.reused_stale:
            return f"{head}: keeping the old results (--reuse-stale)"
        return (f"{head}: re-running {'them' if n > 1 else 'it'}; --reuse-stale keeps the "
                "old results")

    def _timings(self) -> tuple[dict[str, dict[str, float]], list[float], str] | None:
        """Timings to estimate from: per method label its seconds per epoch (per job), the
        evaluation seconds of each cell, and where they come from: this study's records,
        else those of the other studies under the same results root on the same dataset
        (earlier runs on this machine), else a short timing run on this machine
        (`rambench.timing`; not for a `--limit` subset, a one-minute check, nor where
        `RAMBENCH_TIMING_RUN` is 0); None where there are none."""
        if self._timed is None:
            self._timed = (self._stored_timings() or self._timing_run(),)
        return self._timed[0]

    def _timing_run(self) -> tuple[dict[str, dict[str, float]], list[float], str] | None:
        import time

        from rambench._fs import switched_off
        from rambench.datasets.limited import Limited
        from rambench.timing import timing_run

        if not self.todo or isinstance(self.spec.dataset, Limited) or \
                switched_off("RAMBENCH_TIMING_RUN"):
            return None
        if self.on_timing_run is not None:
            methods = len({c.job.method.label for c in self.todo})
            self.on_timing_run(f"no stored timings on {self.spec.dataset.name}: timing "
                               f"{methods} method(s) for a few steps on this machine")
        start = time.perf_counter()
        if (timed := timing_run(self)) is None:
            return None
        return (*timed, f"a {time.perf_counter() - start:.0f}s timing run on this machine "
                        "(no stored timings)")

    def _stored_timings(self) -> tuple[dict[str, dict[str, float]], list[float], str] | None:
        def gather(records):
            per_epoch: dict[str, dict[str, float]] = {}
            evaluating = []
            for record in records:
                summary = record.provenance.get("training") or {}
                if summary.get("seconds") is not None and summary.get("epochs_run"):
                    per_epoch.setdefault(record.method.label, {})[
                        record.provenance.get("job_key", record.key)] = \
                        float(summary["seconds"]) / int(summary["epochs_run"])
                if record.provenance.get("eval_seconds") is not None:
                    evaluating.append(float(record.provenance["eval_seconds"]))
            return per_epoch, evaluating

        per_epoch, evaluating = gather(self.store.index().by_key.values())
        if per_epoch and evaluating:
            return per_epoch, evaluating, "this study's stored timings"
        dataset = self.spec.dataset.name
        found: dict[str, list[Record]] = {}  # other study -> records of it on this dataset
        for folder in sorted(self.store.root.parent.glob("*/records")):
            name = folder.parent.name
            if folder.parent == self.store.root or not STUDY_NAME.fullmatch(name) or \
                    _study_dataset(folder.parent) != dataset:
                continue
            other = Store(self.store.root.parent, name)
            # a sample is enough for the rates (every record carries its job's training)
            sample = [other.read(path) for path in sorted(folder.glob("*.json"))[:TIMED]]
            if records := [r for r in sample if r is not None and r.dataset == dataset]:
                found[name] = records
        per_epoch, evaluating = gather(r for records in found.values() for r in records)
        if per_epoch and evaluating:
            names = ", ".join(list(found)[:3]) + (
                f" and {len(found) - 3} more" if len(found) > 3 else "")
            return per_epoch, evaluating, f"the stored timings of {names} on {dataset}"
        return None

    def estimate_seconds(self, parallel: int = 1) -> tuple[float, float] | None:
        """(training, evaluating) seconds the work to do should take, from stored timings
        (`_timings`): per epoch of each method label (the mean over methods for one without
        timings) times the epochs each job may run, and per cell evaluated; with `parallel`
        workers, the work of the jobs spread evenly over as many of them as there are jobs
        to run; None without stored timings."""
        estimate = self._estimate(parallel)
        return None if estimate is None else estimate[:2]

    def _estimate(self, parallel: int) -> tuple[float, float, str] | None:
        """`estimate_seconds` and where its timings come from."""
        from statistics import fmean

        if (timings := self._timings()) is None:
            return None
        per_epoch, evaluating, source = timings
        rates = {m: fmean(t.values()) for m, t in per_epoch.items()}
        fallback = fmean(rates.values())
        train_s = sum(rates.get(j.method.label, fallback) * int(j.train_config["epochs"])
                      for j in self.jobs_to_train())
        share = max(1, min(parallel, len({c.job for c in self.todo})))
        return train_s / share, fmean(evaluating) * len(self.todo) / share, source

    def estimate(self, parallel: int = 1) -> str | None:
        """The expected wall time of the work to do (`estimate_seconds`), in words."""
        from rambench.progress import duration

        if (estimate := self._estimate(parallel)) is None:
            return None
        train_s, eval_s, source = estimate
        jobs = len(self.jobs_to_train())
        spread = f", {parallel} workers in parallel" if parallel > 1 else ""
        return (f"estimated time: {duration(train_s + eval_s)} (training {jobs} job(s) "
                f"~{duration(train_s)} at most, evaluating {len(self.todo)} cells "
                f"~{duration(eval_s)}; per epoch and cell from {source}{spread})")

    def describe(self, cells: bool = False, parallel: int = 1) -> str:
        """What a dry run prints: counts, the estimate (with `parallel` workers), and per
        method the cells to do by condition kind; `cells`: also one line per cell to do."""
        jobs = self.jobs_to_train()
        lines = [f"study {self.store.study!r} in {self.store.root}: {len(self.cells)} cells, "
                 f"{self.done} done, {len(self.todo)} to do ({len(jobs)} training jobs)"]
        if self.todo and (estimate := self.estimate(parallel)):
            lines.append(estimate)
        if self.carried:
            lines.append(f"{len(self.carried)} stored result(s) of the same code keyed by an "
                         "earlier rambench: carried over, not recomputed")
        if summary := self.stale_summary():
            lines.append(summary)
        kinds: dict[str, dict[str, int]] = {}
        for cell in self.todo:
            by_kind = kinds.setdefault(cell.job.method.label, {})
            by_kind[cell.condition.kind] = by_kind.get(cell.condition.kind, 0) + 1
        for label, by_kind in kinds.items():
            seeds = sorted({c.job.seed for c in self.todo if c.job.method.label == label})
            lines.append(f"  {label}: {sum(by_kind.values())} cells to do, seeds "
                         f"{','.join(map(str, seeds))} ("
                         + ", ".join(f"{kind} {n}" for kind, n in by_kind.items()) + ")")
        if cells:
            for cell in self.todo:
                lines.append(f"  todo {cell.key}  {cell.job.method.label:<14} "
                             f"seed={cell.job.seed} {cell.condition.label}")
        elif self.todo:
            lines.append("  (rambench -v run ... --dry-run lists every cell)")
        return "\n".join(lines)


TIMED = 400  # records read per other study for a time estimate


def _study_dataset(folder) -> str | None:
    """The dataset of the study saved in `folder` (its study.yaml), or None."""
    import yaml

    try:
        data = yaml.safe_load((folder / "study.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data.get("dataset", "avdigits") if isinstance(data, dict) else None


def condition_backends(condition: Condition, kinds: dict[str, str], backend: str,
                       device, salted: bool = False) -> dict[str, str]:
    """What produces each corruption a condition applies: library, version, device, and
    the hash of the corruption library's code (or, `salted`, its `DRAW_SALTS` entry)."""
    def code(kind: str) -> str:
        if salted:
            return DRAW_SALTS.get((kind, backend), DRAW_SALTS[(kind, "reference")])
        return corruption_code_hash(kind, backend)

    if isinstance(condition, AVEvent):  # a protocol's events (avrobustbench) apart
        library = corruption_registry.get(condition.event, "av").protocol or "av"
        return {condition.event: f"{backend_id(condition.event, 'av', backend, device)}; "
                                 f"code {code(library)}"}
    return {name: f"{backend_id(name, kinds[m], backend, device)}; code {code(kinds[m])}"
            for m, name in condition.corruptions()}


def make_cells(spec: StudySpec) -> Iterator[Cell]:
    import dataclasses

    kinds = {m: s.kind for m, s in spec.dataset.modalities.items()}
    conditions = spec.conditions()
    harness = harness_id()
    backends = {cond: [condition_backends(cond, kinds, spec.corruption_backend, spec.device,
                                          salted) for salted in (False, True)]
                for cond in conditions}  # the same for every job
    for seed in spec.seeds:
        for method in spec.methods:
            job = Job(spec.dataset.name, spec.dataset.version, method,
                      dataclasses.asdict(spec.train_config(method)), seed, harness)
            for cond in conditions:
                keyed, salted = backends[cond]
                yield Cell(job, cond, keyed, spec.split, harness, salted)


def make_plan(spec: StudySpec, store: Store, force: bool = False,
              reuse_stale: bool = False) -> Plan:
    """The study's cells; those stored under their key are done (unless `force`). A cell
    whose coordinates hold a result of other code or settings is stale: it is recomputed,
    or, with `reuse_stale`, the stored result is kept."""
    cells = list(make_cells(spec))
    stored = store.index()
    other = {r.split for r in stored.current.values()} - {spec.split}
    if other:
        raise UsageError(f"study {store.study!r} holds results on the {other.pop()} split and "
                         f"this grid evaluates on the {spec.split} split; give it another "
                         "--study so the two are never mixed in one table")
    limited = is_limited(spec.dataset.version)
    if any(is_limited(r.dataset_version) != limited for r in stored.current.values()):
        what = ("the full dataset", "a --limit subset") if limited else \
            ("a --limit subset", "the full dataset")
        raise UsageError(f"study {store.study!r} holds results of {what[0]} and this run uses "
                         f"{what[1]}; give it another --study so the two never mix")
    if force:
        return Plan(spec, cells, list(cells), [], reuse_stale, store, forced=True)
    todo, stale, superseded, carried = [], [], [], []
    for cell in cells:
        if cell.key in stored.by_key:
            if stored.current[cell.coordinates].key != cell.key:
                superseded.append(stored.by_key[cell.key])
            continue
        old = stored.current.get(cell.coordinates)
        if old is not None and (legacy := legacy_cell(cell, old)) is not None \
                and legacy.key == old.key:
            carried.append((old, cell, legacy))
            continue
        if old is not None:
            stale.append(Stale(cell, old))
            if reuse_stale:
                continue
        todo.append(cell)
    return Plan(spec, cells, todo, stale, reuse_stale, store, superseded, carried)


def carry_over(plan: Plan) -> None:
    """Re-key the plan's stored results of an earlier identity scheme (`Plan.carried`)."""
    for record, cell, legacy in plan.carried:
        plan.store.rekey(record, cell.key, cell.job.method.id.code, {
            "harness": cell.job.harness, "job_key": cell.job.key, "data_key": cell.data_key,
            "corruption_backends": cell.backends}, legacy.job.key, cell.job.key)
    plan.carried = []
