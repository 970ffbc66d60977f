"""The Python entry point: `benchmark(...)` runs a study and returns its `ResultSet`;
`load(...)` opens a stored one. The `rambench` command line is a thin layer on these.

    import rambench
    results = rambench.benchmark("raml", dataset="avdigits", grid="smoke", seeds=[0],
                                 out="results", study="notebook")
    results.tidy()             # one row per (cell, metric)
    print(results.table("main").render("md"))
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rambench.cache import CorruptionCache, default_cache_dir
from rambench.config import resolve
from rambench.errors import UsageError
from rambench.plan import Plan, carry_over, make_plan
from rambench.progress import Progress, duration, log_path
from rambench.report import views  # noqa: F401 - on import, serves ResultSet.table
from rambench.results import ResultSet  # the public type of a loaded study
from rambench.store import Store, check_writable
from rambench.study import Study
from rambench.study import build as build_study

MethodArg = str | type


@dataclass
class RunSummary:
    """What a run did: cells planned, computed, reused; methods found stale; time."""

    study: str
    root: str
    cells: int
    computed: int
    reused: int
    stale_methods: dict[str, list[str]]  # method label -> why its stored results are stale
    reused_stale: bool
    seconds: float
    cache: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # jobs not trained, cells not finite
    log: str | None = None  # this run's log file (None when there was nothing to run)
    estimated_seconds: float | None = None  # what the plan expected (`Plan.estimate_seconds`)

    def lines(self) -> list[str]:
        """The end of a run, for people: what was done, where it is, what to do next."""
        stale = f", {sum(1 for _ in self.stale_methods)} stale method(s) re-run" \
            if self.stale_methods and not self.reused_stale else ""
        expected = "" if self.estimated_seconds is None else \
            f" (estimated {duration(self.estimated_seconds)})"
        lines = [f"done in {duration(self.seconds)}{expected}: {self.computed} cells computed, "
                 f"{self.reused} reused{stale}, {len(self.failures)} failed job(s)",
                 f"results: {self.root}" + (f"   log: {self.log}" if self.log else "")]
        if self.failures:
            lines.append("next: fix what failed (above) and run the same command again")
        else:
            lines.append(f"next: rambench report --study {self.study} --out "
                         f"{Path(self.root).parent}   (or rambench table --study "
                         f"{self.study} --view leaderboard)")
        return lines

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def plan_study(
    methods: MethodArg | Sequence[MethodArg] | None = None,
    dataset: str | None = None,
    grid: str | Study | None = None,
    seeds: Sequence[int] | None = None,
    out: str | Path = "results",
    study: str = "default",
    set: Sequence[str] | dict[str, dict[str, str]] = (),  # noqa: A002 - mirrors --set
    epochs: int | None = None,
    device: str | None = None,
    corruption_backend: str | None = None,
    force: bool = False,
    reuse_stale: bool = False,
    severity_scale: str | None = None,
    tune: bool = False,
    progress: bool = False,
    limit: int | None = None,
    dry_run: bool = False,
    threads: int | None = None,
) -> Plan:
    """The study's plan: its cells, what is done, what is stale. The arguments override the
    study file `grid` (a preset name, a path or a `Study`; default: the study stored under
    `out/study`, else `smoke`), as `rambench run`'s options do (`rambench.study.build`).
    With `tune` (or a study file's `tune:`), each method's learning rate is first picked on
    clean validation accuracy (`rambench.tune`): this trains, or reuses, one model per
    candidate; a `dry_run` uses the stored choice and trains nothing."""
    settings = build_study(grid, name=study, out=out, methods=methods, dataset=dataset,
                           seeds=seeds, assignments=set, epochs=epochs, device=device,
                           corruption_backend=corruption_backend,
                           severity_scale=severity_scale, limit=limit, tune=tune,
                           threads=threads)
    return plan(settings, force, reuse_stale, progress, dry_run)


def plan(study: Study, force: bool = False, reuse_stale: bool = False,
         progress: bool = False, dry_run: bool = False) -> Plan:
    """The plan of `study` (tuned first where it says `tune:`, unless `dry_run`)."""
    spec = resolve(study)
    store = Store(study.out, study.name)
    if study.tune is not None and not dry_run:
        from rambench import tune as tuning

        spec = resolve(tuning.with_tunings(study, tuning.tune_study(spec, store, progress)))
    return make_plan(spec, store, force, reuse_stale)


def run_plan(plan: Plan, cache_dir: str | Path | None = None, use_cache: bool = True,
             progress: bool = True, force: bool = False, track: Sequence[str] = (),
             executor=None, save_study: bool = True) -> ResultSet:
    """Execute a plan: train, evaluate and store; `track` names experiment trackers
    (`rambench.tracking.TRACKERS`) that log the jobs and cells of this run; `executor`
    runs the work elsewhere (`rambench.executors`; default: in this process);
    `save_study`: keep its settings as the study's `study.yaml` (what `rambench run
    --study NAME` runs again)."""
    from rambench.execute import execute
    from rambench.tracking import open_trackers

    start = time.perf_counter()
    study = plan.spec.study
    if plan.todo or plan.superseded or plan.carried:
        check_writable(plan.store.root, "results", "--out")
        if save_study and all(isinstance(m, str) for m in study.methods):
            study.save()  # what `rambench run --study NAME` and worker processes run again
    for record in plan.superseded:
        plan.store.make_current(record)
    carry_over(plan)
    cache = CorruptionCache((cache_dir or default_cache_dir()) if use_cache else None)
    cache.check()
    log = log_path(plan.store.root) if plan.todo else None
    estimate = plan.estimate_seconds(getattr(executor, "workers", 1)) if plan.todo else None
    jobs = len(plan.jobs_to_train())
    reporter = Progress(len(plan.todo), jobs, log, quiet=not progress, estimate=estimate)
    if plan.todo:
        reporter.line(f"run of study {plan.store.study!r}: {len(plan.todo)} of "
                      f"{len(plan.cells)} cells to compute, {jobs} "
                      "training job(s)" + ("" if estimate is None else
                                           f", estimated {duration(sum(estimate))}"))
    trackers = open_trackers(track, plan.store.root, plan.store.study) if plan.todo else []
    try:
        outcome = execute(plan, cache=cache, progress=reporter, force=force,
                          executor=executor, trackers=trackers)
    finally:
        reporter.close()
        for tracker in trackers:
            tracker.close()
    stale: dict[str, dict[str, None]] = {}
    for s in plan.stale:
        stale.setdefault(s.cell.job.method.label, {})[s.reason] = None
    summary = RunSummary(
        study=plan.store.study, root=str(plan.store.root), cells=len(plan.cells),
        computed=len(outcome.records), reused=plan.done,
        stale_methods={m: list(r) for m, r in stale.items()}, reused_stale=plan.reused_stale,
        seconds=round(time.perf_counter() - start, 3),
        cache={"root": str(cache.root) if cache.root else None, "reused": cache.hits,
               "built": cache.misses},
        failures=outcome.failures, log=str(log) if log else None,
        estimated_seconds=None if estimate is None else round(sum(estimate), 3))
    if log is not None:
        with open(log, "a", encoding="utf-8") as f:
            f.write("\n".join(summary.lines()) + "\n")
    return ResultSet.read(plan.store, {c.coordinates for c in plan.cells}, summary)


def benchmark(
    methods: MethodArg | Sequence[MethodArg] | None = None,
    dataset: str | None = None,
    grid: str | Study | None = None,
    seeds: Sequence[int] | None = None,
    out: str | Path = "results",
    study: str = "default",
    set: Sequence[str] | dict[str, dict[str, str]] = (),  # noqa: A002 - mirrors --set
    epochs: int | None = None,
    device: str | None = None,
    corruption_backend: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    force: bool = False,
    reuse_stale: bool = False,
    progress: bool = True,
    severity_scale: str | None = None,
    tune: bool = False,
    limit: int | None = None,
    track: Sequence[str] = (),
    executor=None,
) -> ResultSet:
    """Train each method once per seed and evaluate it on every cell of the study file
    `grid` (a preset name, a path or a `Study`; default: the study stored under
    `out/study`, else `smoke`); cells already stored are reused. `methods`: registered
    names, variant labels such as "raml[norm=hard]", `path/file.py:Class`, Method
    subclasses, or None for the study file's list. `limit`: a debug subset, the first N
    samples of every split (its own study). `progress`: the run's progress lines on stderr,
    as `rambench run` prints them (False: silent; the run's log gets them either way).
    Returns the study's results for exactly these methods, seeds and
    conditions."""
    plan = plan_study(methods, dataset, grid, seeds, out, study, set, epochs, device,
                      corruption_backend, force, reuse_stale, severity_scale, tune, progress,
                      limit)
    return run_plan(plan, cache_dir, use_cache, progress, force, track, executor)


def load(study: str = "default", out: str | Path = "results",
         bundle: str | Path | None = None) -> ResultSet:
    """A stored study's current records; with `bundle` (a folder `rambench bundle` wrote,
    e.g. "results/NAME"), the bundle's records instead, verified against its manifest
    (`ResultSet.from_bundle`; `study` and `out` are then not used)."""
    if bundle is not None:
        return ResultSet.from_bundle(bundle)
    store = Store(out, study)
    if not store.records_dir.is_dir():
        existing = sorted(p.parent.name for p in Path(out).glob("*/records"))
        raise UsageError(f"no study {study!r} under {out}/"
                         + (f"; studies there: {', '.join(existing)}" if existing else ""))
    return ResultSet.read(store)


def reproduce(bundle: str | Path, out: str | Path = "reproduce", limit: int | None = None,
              seeds: Sequence[int] | None = None, executor=None,
              cache_dir: str | Path | None = None, use_cache: bool = True,
              progress: bool = False, epochs: int | None = None):
    """Run a study again and compare: a `rambench.reproduce.Comparison`.

    `bundle`: a result bundle (its study.yaml is run again; every cell and every method's
    main-table columns, stored against new, each with its noise band: the rule in
    `rambench.reproduce`), or a study file (a preset name or a path) whose `published:`
    says what the literature reports (each value against the published range). The run
    goes to the study folder `out/<name>` (results already there, of the same code and
    settings, are reused: an interrupted reproduce resumes). `seeds`: only these of the
    study's seeds; `limit`, `epochs`: a quicker run than the study's, whose values are
    listed but not judged (other data or training)."""
    from rambench import bundle as bundles
    from rambench.reproduce import compare, compare_published
    from rambench.study import read

    path = Path(bundle)
    from_bundle = (path / bundles.MANIFEST).is_file()
    stored = ResultSet.from_bundle(path) if from_bundle else None  # verified before any work
    name = path.resolve().name if from_bundle else Path(str(bundle)).stem
    study = read(str(path / bundles.STUDY_FILE) if from_bundle else str(bundle), name=name,
                 out=str(out))
    if not from_bundle and not study.published:
        raise UsageError(f"{bundle}: neither a result bundle (no {bundles.MANIFEST}) nor a "
                         "study file with `published:` values to check")
    if seeds is not None:
        seeds = list(dict.fromkeys(seeds))
        unknown = [s for s in seeds if s not in study.seeds]
        if unknown or not seeds:
            raise UsageError(f"--seeds {','.join(map(str, seeds))}: the study has seeds "
                             f"{', '.join(map(str, study.seeds))}; choose among them")
    quicker = []
    if limit is not None and limit != study.limit:
        quicker.append(f"--limit {limit} (the study: "
                       f"{f'--limit {study.limit}' if study.limit else 'every sample'})")
    if epochs is not None and epochs != study.epochs:
        quicker.append(f"--epochs {epochs} (the study: "
                       f"{study.epochs or 'the dataset default'})")
    note = "" if not quicker else (
        f"{', '.join(quicker)}: another run than the study's (other data or training); "
        "values are not expected to match and are not judged")
    study = study.replace(limit=limit, seeds=seeds, epochs=epochs)
    results = run_plan(plan(study, progress=progress), cache_dir, use_cache, progress,
                       executor=executor)
    if stored is not None:
        comparison = compare(stored, results, list(study.seeds),
                             not quicker, note, rerun=str(study.root))
    else:
        comparison = compare_published(study.published, results, str(bundle), not quicker,
                                       note)
    comparison.run = results
    return comparison
