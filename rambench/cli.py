"""The `rambench` command line."""

from __future__ import annotations

import errno
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from corruptions.scales import SCALE_CHOICES
from rambench.errors import TrainingError, UsageError
from rambench.executors import EXECUTORS
from rambench.report import DEFAULT_AGAINST, FIGURE_KINDS, FORMATS, LEADERBOARD_METRICS, VIEWS
from rambench.tracking import TRACKERS

SEEDS_HELP = "comma-separated seeds, e.g. 0,1,2 (default: the grid's, else 0)"


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UsageError(
            f"--seeds expects comma-separated integers, e.g. 0,1,2; got {text!r}") from None


def _overrides(items: tuple[str, ...]) -> dict[str, dict[str, str]]:
    from rambench.params import parse_assignments

    return parse_assignments(items)


out_option = click.option("--out", default="results", show_default=True,
                          help="results root folder")
study_option = click.option("--study", default="default", show_default=True,
                            help="study folder under --out")
from_option = click.option(
    "--from", "bundle_path", default=None, metavar="BUNDLE",
    help="read a result bundle (a folder `rambench bundle` wrote, e.g. results/NAME) "
         "instead of OUT/STUDY; what is written goes into the bundle's folder by default "
         "(git-ignored there)")
against_option = click.option(
    "--against", default=None, metavar="METHOD",
    help=f"the method every other is tested against (▲/▼)  [default: the study's grid's "
         f"`against:`, else {DEFAULT_AGAINST} if the study has it]")
device_option = click.option("--device", default="auto", show_default=True,
                             help="auto | cpu | cuda | cuda:N")
set_option = click.option("--set", "assignments", multiple=True, metavar="SCOPE.KEY=VALUE",
                          help="override a hyper-parameter, e.g. raml.alpha=0.5 or train.lr=1e-3")
dataset_option = click.option("--dataset", default="avdigits", show_default=True)
cache_option = click.option(
    "--cache-dir", default=None, metavar="DIR",
    help="corrupted-data cache (default: $RAMBENCH_CACHE_DIR, else ~/.cache/rambench)")


class Choice(click.Choice):
    """click's Choice whose error suggests the closest valid value ("--view leaderbord":
    did you mean 'leaderboard'?)."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            from corruptions.registry import unknown_name_message

            self.fail(unknown_name_message("value", str(value), list(self.choices)), param,
                      ctx)


def _cache(cache_dir: str | None, enabled: bool = True):
    from rambench.cache import CorruptionCache, default_cache_dir

    return CorruptionCache((cache_dir or default_cache_dir()) if enabled else None)


VERBOSE = False  # set by -v: errors also show the traceback of their cause


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rambench")
@click.option("-v", "--verbose", is_flag=True,
              help="more detail: debug messages, and the full traceback behind an error")
@click.option("-q", "--quiet", is_flag=True, help="no warnings, only errors")
def cli(verbose: bool, quiet: bool) -> None:
    """rambench: robustness benchmarking for multimodal learning (RAML and baselines)."""
    import logging

    global VERBOSE
    VERBOSE = verbose
    logging.getLogger("rambench").setLevel(
        logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)


METHOD_HELP = ("registered name (rambench ls methods), variant label such as "
               "'raml[norm=hard]', or path/to/file.py:ClassName; BASE+ADAPTATION "
               "('late_fusion+tent') evaluates BASE through a test-time adaptation")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="print machine-readable JSON on stdout instead of text")


def _echo_json(payload) -> None:
    import json

    click.echo(json.dumps(payload, indent=1, default=str))


@cli.command()
@click.option("--method", required=True, help=METHOD_HELP)
@dataset_option
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--epochs", type=int, default=None, help="override train.epochs")
@device_option
@set_option
@out_option
@study_option
@json_option
def train(method, dataset, seed, epochs, device, assignments, out, study, as_json) -> None:
    """Train one method once and print its clean test accuracy."""
    from rambench.api import plan_study, run_plan
    from rambench.study import parse

    grid = parse({"conditions": {"clean": True}}, "clean", "train")
    plan = plan_study(method, dataset, grid, [seed], out, study, assignments, epochs, device,
                      force=True)
    # a one-off clean cell: the study's own settings (study.yaml) stay as they are
    results = run_plan(plan, use_cache=False, force=True, progress=not as_json,
                       save_study=False)
    _fail_on(results.summary.failures)
    record = results.records[0]
    training = record.provenance["training"]
    checkpoint = plan.store.checkpoint_path(record.provenance["job_key"])
    if as_json:
        _echo_json({"method": record.method.label, "dataset": dataset, "seed": seed,
                    "clean_accuracy": record.metrics["accuracy"], "training": training,
                    "checkpoint": str(checkpoint), "record": record.key})
        return
    click.echo(f"{record.method.label} on {dataset} (seed {seed}): clean test accuracy "
               f"{100 * record.metrics['accuracy']:.2f}% "
               f"(best val {100 * training['best_val_accuracy']:.2f}% at epoch "
               f"{training['best_epoch'] + 1}/{training['epochs_run']}, "
               f"{training['seconds']:.0f}s)")
    click.echo(f"checkpoint: {checkpoint}")


@cli.command()
@click.option("--method", "method_names", multiple=True,
              help=f"{METHOD_HELP}; repeatable; 'all' for every registered method "
                   "(default: the grid's methods)")
@click.option("--grid", "grid_spec", default=None,
              help="study file: a preset name (rambench ls grids) or a path to a YAML file "
                   "[default: the study's own study.yaml if it has one, else smoke]")
@click.option("--dataset", default=None, help="[default: the study file's, else avdigits]")
@click.option("--seeds", default=None, help=SEEDS_HELP)
@click.option("--epochs", type=int, default=None, help="override train.epochs")
@click.option("--device", default=None,
              help="auto | cpu | cuda | cuda:N  [default: the study file's, else auto]")
@set_option
@out_option
@study_option
@click.option("--corruption-backend", type=Choice(["torch", "reference"]),
              default=None,
              help="batched torch implementations (on --device) or the reference libraries "
                   "[default: the study file's, else torch]")
@click.option("--severity-scale", type=Choice(SCALE_CHOICES), default=None,
              help="image corruptions' severity table: ImageNet-C (224 px), Tiny-ImageNet-C "
                   "(64 px), CIFAR-10-C (32 px), or auto from the image size [default: the "
                   "study file's, else auto]")
@cache_option
@click.option("--no-cache", is_flag=True, help="do not read or write the corrupted-data cache")
@click.option("--force", is_flag=True, help="recompute cells (and retrain) even if stored")
@click.option("--reuse-stale", is_flag=True,
              help="keep stored results of methods whose code or settings changed since")
@click.option("--tune", is_flag=True,
              help="first pick each method's learning rate on clean validation accuracy "
                   "(default lr x0.5, x1, x2; see rambench tune)")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="debug subset: the first N samples of every split (a one-minute check "
                   "of a new method; its results go to a study of their own)")
@click.option("--track", "trackers", multiple=True, type=Choice(TRACKERS),
              help="log training curves, configs and cell metrics to an experiment tracker "
                   "(under STUDY/tracking; repeatable; needs rambench[track])")
@click.option("--executor", "executor_name", type=Choice(EXECUTORS),
              default="auto", show_default=True, envvar="RAMBENCH_EXECUTOR",
              help="where the work runs: this process, a pool of local worker processes, or "
                   "a SLURM job array (submitit); one task per training job. auto: a local "
                   "pool of one worker per `threads` cores on a CPU (one per GPU with "
                   "several), this process for a single job [env: RAMBENCH_EXECUTOR]")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="--executor local: worker processes (each gets its share of the cores) "
                   "[default: 2]")
@click.option("--devices", default=None, metavar="0,1,...",
              help="--executor local: one worker per listed GPU (cuda:N)")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads in every process that trains or evaluates, whichever "
                   "executor (a setting of the study, saved with it) [default: the study "
                   "file's, else 1]; on a CPU, results are bit-identical for the same count")
@click.option("--compile", "compile_", is_flag=True,
              help="train with torch.compile (same as --set train.compile=true); compiling "
                   "takes a minute or more per method, for long trainings on a GPU")
@click.option("--slurm-partition", default=None)
@click.option("--slurm-time", "slurm_minutes", type=click.IntRange(min=1), default=None,
              help="minutes per task [default: 240]")
@click.option("--slurm-gpus", type=click.IntRange(min=0), default=None,
              help="GPUs per task")
@click.option("--slurm-cpus", type=click.IntRange(min=1), default=None,
              help="CPUs per task [default: 4]")
@click.option("--slurm-array", type=click.IntRange(min=1), default=None,
              help="at most this many tasks at once")
@click.option("--slurm-option", "slurm_options", multiple=True, metavar="KEY=VALUE",
              help="any other sbatch option, without dashes (e.g. account=abc, qos=high)")
@click.option("--slurm-cluster", type=Choice(["slurm", "local", "debug"]), default=None,
              help="submitit's backend [default: slurm where sbatch exists]; local runs the "
                   "array as local processes (a test without a cluster)")
@click.option("--dry-run", is_flag=True, help="print the plan and exit")
@json_option
def run(method_names, grid_spec, dataset, seeds, epochs, device, assignments, out, study,
        corruption_backend, severity_scale, cache_dir, no_cache, force, reuse_stale, tune,
        limit, trackers, executor_name, workers, devices, threads, compile_, slurm_partition,
        slurm_minutes, slurm_gpus, slurm_cpus, slurm_array, slurm_options, slurm_cluster,
        dry_run, as_json) -> None:
    """Train each method once per seed and evaluate it on every cell of a study.

    The study's settings come from a study file (--grid) with the options given here
    overriding it; they are saved as OUT/STUDY/study.yaml, and `rambench run --study
    STUDY` with no other option runs exactly that study again. Finished cells are
    skipped, so an interrupted run resumes where it stopped. A method whose code or
    settings changed since its results were stored is re-run (the old results stay on
    disk, marked stale; --reuse-stale keeps them instead).
    """
    from rambench import executors
    from rambench.api import plan_study, run_plan
    from rambench.report.render import to_markdown
    from rambench.report.views import accuracy_table

    if executor_name == "auto" and (workers or devices):
        executor_name = "local"  # --workers / --devices ask for the local pool
    _executor_options(executor_name, {"--workers": workers, "--devices": devices}, {
        "--slurm-partition": slurm_partition, "--slurm-time": slurm_minutes,
        "--slurm-gpus": slurm_gpus, "--slurm-cpus": slurm_cpus, "--slurm-array": slurm_array,
        "--slurm-option": slurm_options, "--slurm-cluster": slurm_cluster})
    if compile_:
        assignments = (*assignments, "train.compile=true")
    plan = plan_study(list(method_names) or None, dataset, grid_spec, _seeds(seeds), out,
                      study, assignments, epochs, device, corruption_backend, force,
                      reuse_stale, severity_scale, tune, not as_json, limit, dry_run,
                      threads)
    _report_invalid(plan.store)
    plan.on_timing_run = lambda text: click.echo(text, err=True)
    # the local pool's workers share the work (one per device where devices are named)
    chosen = None
    if executor_name == "auto":
        chosen, how = executors.auto_executor(plan)
    parallel = (len(devices.split(",")) if devices else workers or 2) \
        if executor_name == "local" else getattr(chosen, "workers", 1)
    if dry_run:
        if as_json:
            _echo_json({"study": study, "root": str(plan.store.root),
                        "cells": len(plan.cells), "done": plan.done,
                        "todo": [{"key": c.key, "method": c.job.method.label,
                                  "seed": c.job.seed, "condition": c.condition.label}
                                 for c in plan.todo],
                        "jobs_to_train": len(plan.jobs_to_train()),
                        "estimate": plan.estimate(parallel), "stale": plan.stale_summary()})
        else:
            click.echo(plan.describe(cells=VERBOSE, parallel=parallel))
        return
    if plan.todo:
        _writable(plan.store.root, "results", "--out")
    if summary := plan.stale_summary():
        click.echo(summary, err=True)
    if plan.superseded:
        click.echo(f"{len(plan.superseded)} stored results of this code and these settings "
                   "are made current again (a run of other code had replaced them)", err=True)
    if plan.carried:
        click.echo(f"{len(plan.carried)} stored results of this code, keyed by an earlier "
                   "rambench, are carried over to this version's keys", err=True)
    if grid_spec is None and (saved := plan.store.root / "study.yaml").is_file():
        click.echo(f"settings: {saved} (conditions: {plan.spec.grid.name}) with the options "
                   "given on top", err=True)
    click.echo(f"study {study!r}: {len(plan.cells)} cells, {plan.done} already done, "
               f"{len(plan.todo)} to run", err=True)
    executor = chosen
    if executor_name == "auto" and plan.todo:
        click.echo(f"runs in {how}", err=True)
    if executor_name == "local":
        listed = [d.strip() for d in (devices or "").split(",") if d.strip()]
        executor = executors.LocalPool(workers or 2, [d if ":" in d or d == "cpu" else f"cuda:{d}"
                                                 for d in listed])
    elif executor_name == "slurm":
        executor = executors.Slurm(plan.store.root / "slurm", executors.slurm_parameters(
            slurm_partition, slurm_minutes, slurm_gpus, slurm_cpus, slurm_array,
            slurm_options), slurm_cluster)
    results = run_plan(plan, cache_dir, not no_cache, progress=not as_json, force=force,
                       track=trackers, executor=executor)
    cache = results.summary.cache
    if cache["reused"] + cache["built"]:
        click.echo(f"corrupted-data cache {cache['root']}: {cache['reused']} reused, "
                   f"{cache['built']} built", err=True)
    if as_json:
        _echo_json({**results.summary.to_json(), "results": [
            {"method": r.method.label, "seed": r.seed, "condition": r.condition.label,
             "metrics": r.metrics, "key": r.key} for r in results.records]})
    else:
        click.echo(to_markdown(accuracy_table(results.tidy())))
        for line in results.summary.lines():
            click.echo(line, err=True)
    _fail_on(results.summary.failures)


def _executor_options(executor: str, local: dict[str, Any], slurm: dict[str, Any]) -> None:
    """UsageError for an executor's option given without that executor."""
    for wanted, options in (("local", local), ("slurm", slurm)):
        given = [name for name, value in options.items() if value not in (None, ())]
        if given and executor != wanted:
            raise UsageError(f"{given[0]} is an option of --executor {wanted}; add "
                             f"--executor {wanted} (the executor is {executor})")


FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _figure_path(ctx, param, value: str | None) -> str | None:
    """A figure's --to: a file name ending in a format matplotlib writes."""
    if value is not None and Path(value).suffix.lower() not in FIGURE_SUFFIXES:
        raise UsageError(f"--to {value}: a figure is written as "
                         f"{', '.join(FIGURE_SUFFIXES)}; got {Path(value).suffix or 'no suffix'}")
    return value


def _fail_on(failures: list[str]) -> None:
    """Exit 1 naming every job that could not be trained and every cell whose outputs were
    not finite (none of them was stored)."""
    for failure in failures:
        click.echo(f"Error: {failure}", err=True)
    if failures:
        click.echo("fix what failed and run the same command again: failed jobs are retried, "
                   "finished cells are kept", err=True)
        sys.exit(1)


def _report_invalid(store, study=None, shown: Sequence[str] = ()) -> None:
    """Warnings about unreadable records and, for a loaded study, its notes (stale ones)
    but those `shown` already (in a printed table's notes)."""
    from rambench.results import recompute_command

    for path, why in store.invalid if store is not None else []:
        click.echo(f"warning: ignoring unreadable record {path} ({why}); "
                   f"`{recompute_command(store)}` recomputes it", err=True)
    for note in study.notes if study is not None else []:
        if note not in shown:
            click.echo(f"note: {note}", err=True)


@cli.command()
@click.option("--method", "method_names", multiple=True, required=True,
              help=f"{METHOD_HELP}; repeatable; 'all' for every registered method")
@click.option("--dataset", "dataset_names", multiple=True, metavar="NAME",
              help="check on this dataset (a prepared real one, or avdigits) instead of the "
                   "two fixtures (avdigits' still images, CREMA-D-shaped clips); repeatable")
@set_option
@json_option
def check(method_names, dataset_names, assignments, as_json) -> None:
    """Check methods against the method contract on still images and on multi-frame clips
    (or on --dataset): logits of shape (batch, classes), a finite loss, the same loss for
    the same seed, no dependence on the values of absent inputs, a state dict that
    round-trips, and a prediction loss that a few optimiser steps reduce; for an adapted
    method (late_fusion+tent), finite and repeatable adaptation that changes the model.
    Exits 1 if any check fails."""
    from rambench.check import conformance, fixtures
    from rambench.config import resolve_methods
    from rambench.datasets import datasets
    from rambench.params import parse_assignments

    specs = resolve_methods(list(method_names), parse_assignments(assignments))
    targets = {name: datasets.get(name)() for name in dataset_names} or fixtures()
    report, failed = [], 0
    for spec in specs:
        for fixture, dataset in targets.items():
            for result in conformance(spec, dataset):
                failed += not result.passed
                report.append({"method": spec.label, "fixture": fixture, **vars(result)})
                if not as_json:
                    mark = "PASS" if result.passed else "FAIL"
                    detail = "" if result.passed else f": {result.detail}"
                    click.echo(f"{mark}  {spec.label} on {fixture}: {result.name}{detail}")
    if as_json:
        _echo_json(report)
    elif not failed:
        click.echo(f"all {len(report)} checks passed")
    if failed:
        click.echo(f"{failed} of {len(report)} checks failed", err=True)
        sys.exit(1)


@cli.command("ls")
@click.argument("what", type=Choice(["methods", "datasets", "corruptions", "grids",
                                           "studies"]))
@click.argument("name", required=False)
@out_option
@json_option
def ls(what: str, name: str | None, out: str, as_json: bool) -> None:
    """List registered methods, datasets, corruptions, grid presets, or the studies stored
    under --out (with their current and stale results). `rambench ls grids NAME` prints a
    preset's YAML, to copy and edit."""
    if name is not None:
        if what != "grids":
            raise UsageError(f"ls {what} takes no NAME; `rambench ls grids NAME` prints a "
                             "grid preset")
        from importlib import resources

        from rambench.study import preset_names, read

        if name not in preset_names():
            read(name)  # the usual error: unknown grid, did you mean ..., valid: ...
            raise UsageError(f"{name!r} is a file, not a preset; valid presets: "
                             f"{', '.join(preset_names())}")
        click.echo((resources.files("rambench") / "grids" / f"{name}.yaml").read_text(), nl=False)
        return
    rows = _listing(what, out)
    if as_json:
        _echo_json(rows)
        return
    width = max((len(row.get("family", "")) for row in rows), default=0)
    for row in rows:
        if what == "methods":
            click.echo(f"{row['name']:<14} {row['family']:<{width}} {row['summary']}")
            if row["reference"]:
                click.echo(f"{'':<{width + 15}} follows {row['reference']}")
        elif what == "datasets":
            mods = ", ".join(f"{m} ({k})" for m, k in row["modalities"].items())
            classes = f"{row['classes']} classes" if row["classes"] else "classes from the data"
            click.echo(f"{row['name']:<10} {classes}; {mods}; {row['description']}")
        elif what == "corruptions":
            protocol = f" (protocol: {row['protocol']})" if row["protocol"] else ""
            protocol += " (held out: for validation grids)" if row["held_out"] else ""
            protocol += f"; torch backend: {row['torch']}" if row["torch"] else ""
            tables = row["severities"]
            if isinstance(tables, list):
                click.echo(f"{row['name']:<18} {row['kind']:<6} {row['family']:<10} severities "
                           f"1-5: {' | '.join(tables)}{protocol}")
                continue
            click.echo(f"{row['name']:<18} {row['kind']:<6} {row['family']:<10} severities "
                       f"1-5 by scale:{protocol}")
            for scale, table in tables.items():
                click.echo(f"    {scale:<13} {' | '.join(table)}")
        elif what == "grids":
            click.echo(f"{row['name']:<14} {row['description']}")
        else:
            stale = f", {row['stale']} stale" if row["stale"] else ""
            old = f", {row['schema_1']} of schema 1" if row["schema_1"] else ""
            click.echo(f"{row['name']:<16} {row['records']} results{stale}{old}; "
                       f"methods: {', '.join(row['methods'])}; seeds: "
                       f"{', '.join(map(str, row['seeds']))}")
            for label, count in row["stale_methods"].items():
                click.echo(f"  stale: {label} ({count} results of earlier code or settings, "
                           "kept on disk, left out of tables)")
            if len(row["numerics"]) > 1:
                click.echo(f"  warning: results from {len(row['numerics'])} numerics "
                           "environments: " + "; ".join(
                               f"{n} from [{env}]" for env, n in row["numerics"].items()))
    if what == "studies" and not rows:
        click.echo(f"no studies under {out}/", err=True)


def _listing(what: str, out: str) -> list[dict]:
    if what == "methods":
        from rambench.methods import methods
        from rambench.methods.adaptation import adaptations

        return [{"name": n, "family": cls.family, "summary": cls.summary(),
                 "citation": cls.citation, "reference": cls.reference}
                for n in methods.names() for cls in [methods.get(n)]] + [
            {"name": f"+{n}", "family": "test-time adaptation", "summary": cls.summary(),
             "citation": cls.citation, "reference": cls.reference}
            for n in adaptations.names() for cls in [adaptations.get(n)]]
    if what == "datasets":
        from rambench.datasets import datasets

        return [{"name": n, "classes": len(c.class_names),
                 "modalities": {m: s.kind for m, s in c.modalities.items()},
                 "description": c.description}
                for n in datasets.names() for c in [datasets.get(n)]]
    if what == "corruptions":
        from corruptions import registry

        return [{"name": c.name, "kind": c.kind, "family": c.family,
                 "severities": ({scale: list(t) for scale, t in c.scale_tables.items()}
                                if c.scaled else list(c.severity_table)),
                 "unit": c.unit, "protocol": c.protocol,
                 "held_out": c.name in registry.HELD_OUT.get(c.kind, ()),
                 "torch": c.torch.fidelity.value if c.torch else None}
                for c in registry.all_corruptions()]
    if what == "grids":
        from rambench.study import preset_names, read

        return [{"name": n, "description": read(n).description} for n in preset_names()]
    from rambench.store import Store

    rows = []
    for folder in sorted(p.parent for p in Path(out).glob("*/records")):
        index = Store(out, folder.name).index()
        current = list(index.current.values())
        stale_methods: dict[str, int] = {}
        for r in index.stale:
            stale_methods[r.method.label] = stale_methods.get(r.method.label, 0) + 1
        rows.append({"name": folder.name, "path": str(folder), "records": len(current),
                     "stale": len(index.stale), "stale_methods": stale_methods,
                     "numerics": dict(Counter(r.numerics for r in current).most_common()),
                     "schema_1": sum(r.schema == 1 for r in current),
                     "methods": sorted({r.method.label for r in current}),
                     "seeds": sorted({r.seed for r in current})})
    return rows


@cli.command()
@study_option
@out_option
@from_option
@click.option("--format", "fmt", type=Choice(["csv", "parquet"]), default="csv",
              show_default=True)
@click.option("--to", "target", type=click.Path(dir_okay=False), default=None,
              help="output file (default: <out>/<study>/export[-per-sample].<format>)")
@click.option("--per-sample", is_flag=True,
              help="one row per (cell, test sample): label, prediction, class probabilities")
def export(study, out, bundle_path, fmt, target, per_sample) -> None:
    """Write the study's tidy results table (one row per cell and metric), or with
    --per-sample its per-sample predictions. Stale results are left out."""
    from rambench.metrics.frame import per_sample_frame, tidy_frame

    if bundle_path is not None:
        data, store = _open_results(study, out, bundle_path)
        records, root = data.records, data.root
    else:
        store = _existing_store(out, study)
        records, root = store.records(), store.root
    tidy = (per_sample_frame if per_sample else tidy_frame)(records)
    _report_invalid(store)
    if tidy.empty:
        from rambench.results import no_results

        raise no_results(store)
    name = "export-per-sample" if per_sample else "export"
    path = Path(target) if target else root / f"{name}.{fmt}"
    _writable(path.parent, "the export", "--to FILE")
    if fmt == "csv":
        tidy.to_csv(path, index=False)
    else:
        try:
            tidy.to_parquet(path, index=False)
        except ImportError:
            raise UsageError(
                "parquet export needs pyarrow: pip install 'rambench[parquet]'") from None
    click.echo(f"wrote {len(tidy)} rows to {path}")


@cli.command()
@study_option
@out_option
@from_option
@click.option("--format", "fmt", type=Choice(FORMATS), default="md",
              show_default=True)
@click.option("--view", type=Choice(VIEWS), default="main", show_default=True,
              help="main: methods x {clean, image mPC, audio mPC, AV events, missing, mixed, "
                   "mCE}; conditions: test condition x method; calibration: ECE, NLL, "
                   "Brier; redundancy: accuracy minus the intact modality's unimodal model")
@click.option("--reference", default=None,
              help="method that normalises mCE  [default: late_fusion]")
@against_option
@click.option("--score", type=Choice(["accuracy", "macro_f1"]), default="accuracy",
              show_default=True,
              help="the per-cell score the views average (macro_f1 for unbalanced classes)")
@click.option("--transpose", is_flag=True,
              help="columns as rows (e.g. corruptions down the page): for wide tables")
@click.option("--to", "target", type=click.Path(dir_okay=False), default=None,
              help="write to this file instead of printing")
def table(study, out, bundle_path, fmt, view, reference, against, score, transpose,
          target) -> None:
    """Print a results table: mean ± std over seeds, best bold, ▲/▼ where a method differs
    significantly from --against."""
    from rambench.report import views  # noqa: F401 - builds ResultSet.table's views
    from rambench.report.render import render

    data, store = _open_results(study, out, bundle_path)
    result = data.table(view, reference, data.against_for(against), score=score)
    if transpose:
        result = result.transposed()
    text = render(result, fmt, label=f"tab:{data.study}-{view}")
    if target:
        _writable(Path(target).parent, "the table", "--to FILE")
        Path(target).write_text(text + "\n")
        click.echo(f"wrote {target}")
    else:
        click.echo(text)
    _report_invalid(store, data, shown=result.notes)


@cli.command()
@study_option
@out_option
@from_option
@click.option("--kind", type=Choice([*FIGURE_KINDS, "all"]), default="all",
              show_default=True)
@click.option("--out-dir", default=None, type=click.Path(file_okay=False),
              help="where the figures go (default: <out>/<study>/plots)")
def plot(study, out, bundle_path, kind, out_dir) -> None:
    """Draw figures (PNG and PDF under <out>/<study>/plots): accuracy vs severity, drop
    heatmap, accuracy vs missing rate, per-family bars with bootstrap CIs, reliability
    diagrams, the redundancy gap."""
    from rambench.report.figures import make_figures

    data, store = _open_results(study, out, bundle_path)
    kinds = FIGURE_KINDS if kind == "all" else (kind,)
    corr = data.correctness() if "families" in kinds else None
    folder = Path(out_dir) if out_dir else data.root / "plots"
    _writable(folder, "figures", "--out-dir DIR")
    written = make_figures(data.tidy(), folder, kinds, corr, data.records)
    if not written:
        raise UsageError(f"study {data.study!r} has no results to draw a {kind} figure "
                         "from")
    for paths in written.values():
        for path in paths:
            click.echo(f"wrote {path}")
    _report_invalid(store, data)


@cli.command()
@study_option
@out_option
@from_option
@click.option("--method", "method_names", multiple=True,
              help="only these methods (labels); repeatable [default: every method]")
@click.option("--to", "target", type=click.Path(dir_okay=False), default=None,
              callback=_figure_path,
              help="the figure's path, .png or .pdf [default: <out>/<study>/plots/history.png "
                   "and .pdf]")
@json_option
def history(study, out, bundle_path, method_names, target, as_json) -> None:
    """Training curves of a study's models: every loss term the methods return, the
    validation accuracy and the learning rate per epoch, from each training's stored
    history; plotted (loss and validation accuracy per epoch), or --json."""
    from rambench.report.figures import history_figure, save_figure, training_histories

    data, _ = _open_results(study, out, bundle_path)
    for name in method_names:
        data.check_method(name, "--method")
    records = [r for r in data.records if not method_names or r.method.label in method_names]
    if as_json:
        rows = training_histories(records).to_dict(orient="records")
        _echo_json([{k: v for k, v in row.items() if v == v} for row in rows])  # no NaN
        return
    fig = history_figure(records)
    if fig is None:
        raise UsageError(f"study {data.study!r} has no training histories (records written "
                         "before histories were kept)")
    if target:
        path = Path(target)
        _writable(path.parent, "the figure", "--to FILE")
        import matplotlib

        from rambench.report import style

        with matplotlib.rc_context(style.RC):
            fig.savefig(path, dpi=style.DPI)
        paths = [path]
    else:
        folder = data.root / "plots"
        _writable(folder, "the figure", "--to FILE")
        paths = save_figure(fig, folder, "history")
    for path in paths:
        click.echo(f"wrote {path}")


@cli.command()
@study_option
@out_option
@from_option
@click.option("--metric", type=Choice(list(LEADERBOARD_METRICS)),
              default="mpc", show_default=True, help="leaderboard order")
@click.option("--reference", default=None,
              help="method that normalises mCE  [default: late_fusion]")
@against_option
@click.option("--out-dir", default=None, type=click.Path(file_okay=False),
              help="where the report goes (default: <out>/<study>/report)")
def report(study, out, bundle_path, metric, reference, against, out_dir) -> None:
    """Write every table, every figure and a self-contained report.html to
    <out>/<study>/report."""
    from rambench.report.document import write_report
    from rambench.results import user_errors

    data, store = _open_results(study, out, bundle_path)
    with user_errors():
        folder = Path(out_dir) if out_dir else data.root / "report"
        _writable(folder, "the report", "--out-dir DIR")
        written = write_report(data, folder, metric, data.reference_for(reference),
                               data.against_for(against))
    for note in written["notes"]:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {len(written['tables'])} tables and {len(written['figures'])} figure "
               f"files; open {written['html']}")
    _report_invalid(store)  # the study's notes are among the report's


@cli.command()
@study_option
@out_option
@from_option
@click.option("--method", required=True, help="the method to compare")
@against_option
@click.option("--out-dir", default=None, type=click.Path(file_okay=False),
              help="where the figure goes (default: <out>/<study>/plots)")
@json_option
def compare(study, out, bundle_path, method, against, out_dir, as_json) -> None:
    """Paired comparison per condition group (bootstrap CI and p, Wilcoxon) and a figure of
    the per-corruption differences."""
    from rambench.report.compare import compare_groups, format_comparison, per_corruption
    from rambench.report.figures import compare_figure, save_figure

    data, store = _open_results(study, out, bundle_path)
    data.check_method(method, "--method")
    against = data.against_for(against)
    if against is None:
        raise UsageError(f"--against: the study has no {DEFAULT_AGAINST!r}; name the method "
                         f"to compare with (the study's methods: {', '.join(data.methods)})")
    if method == against:
        raise UsageError("--method and --against name the same method")
    corr = data.correctness()
    result = compare_groups(data.tidy(), corr, method, against)
    if result.empty:
        raise UsageError(f"{method!r} and {against!r} share no test cell in study "
                         f"{data.study!r}")
    diffs = per_corruption(corr, method, against)
    paths = []
    if not diffs.empty:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"compare_{method}_vs_{against}")
        folder = Path(out_dir) if out_dir else data.root / "plots"
        _writable(folder, "the comparison figure", "--out-dir DIR")
        paths = save_figure(compare_figure(diffs, method, against), folder, name)
    if as_json:
        _echo_json({"method": method, "against": against,
                    "groups": result.to_dict(orient="records"),
                    "per_corruption": diffs.to_dict(orient="records"),
                    "figures": [str(p) for p in paths]})
    else:
        click.echo(format_comparison(result, method, against))
        for path in paths:
            click.echo(f"wrote {path}")
    _report_invalid(store, data)


@cli.command("bundle")
@study_option
@out_option
@click.option("--to", "target", required=True, metavar="FOLDER",
              help="the bundle's folder, e.g. results/NAME (committed to git there)")
@click.option("--per-sample", "per_sample", type=Choice(["predictions", "correctness"]),
              default="predictions", show_default=True,
              help="what each record keeps per test sample: its class probabilities, or "
                   "only whether it was right (a bundle a third the size or less; tables "
                   "of accuracy are the same, calibration views need predictions)")
@json_option
def bundle_(study, out, target, per_sample, as_json) -> None:
    """Pack a study into a result bundle: a folder to commit under results/ with the
    study's study.yaml, its current records (records.jsonl.xz; stale ones left out) and a
    manifest.json (each record's sha256, counts, the rambench version and git commit that
    packed it, the numerics environments of the records). The same records give the same
    bytes. `rambench table|report|export|plot|compare --from FOLDER` read it as the study,
    and `rambench reproduce FOLDER` runs it again."""
    from rambench.bundle import pack
    from rambench.provenance import git_commit

    store = _existing_store(out, study)
    manifest = pack(store, target, git_commit(), per_sample)
    size = sum(f.stat().st_size for f in Path(target).iterdir() if f.is_file()
               and f.name in ("manifest.json", "study.yaml", "records.jsonl.xz", ".gitignore"))
    if as_json:
        _echo_json({"bundle": target, "bytes": size, **manifest})
        return
    counts = manifest["counts"]
    stale = f"; {counts['stale_left_out']} stale left out" if counts["stale_left_out"] else ""
    click.echo(f"bundled {counts['records']} records of study {study!r} ({counts['methods']} "
               f"methods, {counts['seeds']} seeds, {counts['conditions']} conditions{stale}) "
               f"into {target}: {size / 1024:.1f} KiB")
    click.echo(f"next: git add {target}   (then rambench table --from {target}, or "
               f"rambench reproduce {target})")


@cli.command()
@click.argument("bundle_path", metavar="BUNDLE|STUDY")
@click.option("--out", default="reproduce", show_default=True,
              help="where the re-run goes: OUT/<bundle's folder name or study file's name>")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="debug subset: the first N samples of every split; unless the study "
                   "used the same --limit, values are listed but not judged")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="override the study's epochs (a quick check: values listed, not judged)")
@click.option("--seeds", default=None,
              help="comma-separated seeds: only these of the bundle's [default: all]")
@click.option("--executor", "executor_name",
              type=Choice([e for e in EXECUTORS if e != "auto"]),
              default="inprocess", show_default=True,
              help="where the work runs (as in rambench run; SLURM with its defaults)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="--executor local: worker processes [default: 2]")
@cache_option
@json_option
def reproduce(bundle_path, out, limit, epochs, seeds, executor_name, workers, cache_dir,
              as_json) -> None:
    """Run a result bundle's study again from its study.yaml, into OUT/<bundle's folder
    name>, and print, per cell and per method's main-table column (clean accuracy, mPC,
    ..., mCE), the stored value, the new one, their difference and whether it is within
    the noise band: ±2σ, σ the larger of the spread over seeds (the sample standard
    deviation over the study's seeds, the smaller of the bundle's and the re-run's) and
    the binomial standard error sqrt(p(1-p)/n) of an accuracy p on n test samples (with
    one seed the band is the binomial one). Exits 0 when every summary value is within
    its band, 1 when one moved beyond it (naming it and the cells beyond theirs). With a
    --limit other than the study's the data differ: the values are listed, not judged.

    Given a study file (a preset such as ogm-ge-cremad, or a path) with `published:`
    values instead, run it and check each value against the published range, widened by
    two binomial standard errors."""
    from rambench import executors
    from rambench.api import reproduce as run_reproduce

    _executor_options(executor_name, {"--workers": workers}, {})
    executor = None
    if executor_name == "local":
        executor = executors.LocalPool(workers or 2)
    elif executor_name == "slurm":
        name = Path(bundle_path).resolve().name
        executor = executors.Slurm(Path(out) / name / "slurm", executors.slurm_parameters(
            None, None, None, None, None, ()))
    comparison = run_reproduce(bundle_path, out, limit, _seeds(seeds), executor, cache_dir,
                               progress=not as_json, epochs=epochs)
    if as_json:
        _echo_json(comparison.to_json())
    else:
        for line in comparison.lines():
            click.echo(line)
    _fail_on(comparison.run.summary.failures)
    if comparison.beyond:
        sys.exit(1)


@cli.command()
@click.argument("name")
@click.option("--root", required=True, type=click.Path(file_okay=False),
              help="the dataset as distributed (see the README for each layout)")
@click.option("--frames", type=int, default=None, help="frames per clip (dataset default)")
@click.option("--size", type=int, default=None, help="frame side in pixels (dataset default)")
@click.option("--candidates", type=int, default=None,
              help="frames kept per segment of a training clip, one drawn per epoch "
                   "(default 3; 1 = train on the segment centres)")
@click.option("--sample-rate", type=int, default=None, help="audio sample rate (default)")
@click.option("--seconds", type=float, default=None, help="audio length (dataset default)")
@click.option("--peak", type=click.FloatRange(min=0, max=1), default=None,
              help="each clip's audio scaled to this peak amplitude (dataset default; 0: as "
                   "recorded)")
@click.option("--skip-bad", is_flag=True, help="leave unreadable clips out (counted)")
@click.option("--data-dir", default=None, metavar="DIR",
              help="where prepared data goes (default: $RAMBENCH_DATA_DIR, else "
                   "~/.cache/rambench/datasets)")
@click.option("--corrupted", "lists", type=click.Path(file_okay=False), default=None,
              metavar="DIR",
              help="also decode the corrupted test sets another benchmark's generators wrote, "
                   "listed under DIR (READ's video|audio/<corruption>/severity_<s>.json; "
                   "ks50, vggsound): a grid's `provided: all` evaluates them")
def prepare(name, root, frames, size, candidates, sample_rate, seconds, peak, skip_bad,
            data_dir, lists) -> None:
    """Decode a real dataset once into a memory-mapped, checksummed cache."""
    import dataclasses

    from rambench.datasets import datasets
    from rambench.datasets.prepared import PreparedDataset
    from rambench.datasets.prepared import prepare as run_prepare

    cls = datasets.get(name)
    if not issubclass(cls, PreparedDataset):
        raise UsageError(f"dataset {name!r} needs no preparation; datasets to prepare: "
                         + ", ".join(n for n in datasets.names()
                                     if issubclass(datasets.get(n), PreparedDataset)))
    settings = cls.settings(frames=frames, size=size, candidates=candidates,
                            sample_rate=sample_rate, seconds=seconds, peak=peak)
    if peak == 0:  # as recorded
        settings = dataclasses.replace(settings, peak=None)
    if settings.size < 32 or settings.frames < 1 or settings.candidates < 1:
        raise UsageError("--size must be at least 32 (the corruptions' minimum), --frames "
                         "and --candidates at least 1")
    report = run_prepare(cls.adapter, root, settings, skip_bad,
                         Path(data_dir) if data_dir else None)
    if report.already_done:
        click.echo(f"{name}: already prepared in {report.folder} (nothing to do)")
    else:
        click.echo(f"{name}: {report.clips} clips prepared in {report.folder}"
                   + (f" ({report.excluded} unreadable, left out)" if report.excluded else ""))
    if lists is not None:
        from rambench.datasets.prepared import prepare_provided

        names = prepare_provided(cls.adapter, root, lists,
                                 Path(data_dir) if data_dir else None)
        click.echo(f"{name}: {len(names)} provided test sets ({', '.join(names)}); a grid's "
                   "`provided: all` evaluates them")


@cli.group()
def cache() -> None:
    """Inspect or empty the cache of corrupted test sets shared by all studies."""


@cache.command("info")
@cache_option
def cache_info(cache_dir) -> None:
    """Where the cache is, how many corrupted test sets it holds and their size."""
    info = _cache(cache_dir).info()
    click.echo(f"cache: {info.root}")
    click.echo(f"entries: {info.entries} ({info.bytes / 2**20:.1f} MiB)")
    for version, count in sorted(info.datasets.items()):
        click.echo(f"  {version}: {count}")


@cache.command("clear")
@cache_option
def cache_clear(cache_dir) -> None:
    """Delete every cached corrupted test set (they are rebuilt when needed)."""
    store = _cache(cache_dir)
    deleted, foreign = store.clear()
    click.echo(f"deleted {deleted} entries from {store.root}")
    if foreign:
        click.echo(f"left {len(foreign)} file(s) there that the cache did not write, e.g. "
                   f"{foreign[0]}", err=True)


@cli.command()
@click.option("--method", "method_names", multiple=True, required=True,
              help=f"{METHOD_HELP}; repeatable; 'all' for every registered method")
@dataset_option
@click.option("--lr", "lrs", default=None,
              help="comma-separated candidate learning rates [default: the dataset's lr "
                   "x0.5, x1, x2]")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--epochs", type=int, default=None, help="override train.epochs")
@device_option
@set_option
@out_option
@study_option
@json_option
def tune(method_names, dataset, lrs, seed, epochs, device, assignments, out, study,
         as_json) -> None:
    """Pick each method's learning rate by clean validation accuracy, the same candidates,
    epochs and seed for every method; the checkpoints are the study's, so a following
    `rambench run --tune` reuses them. The choice is kept in STUDY/study.yaml (`tuned:`)."""
    from rambench import tune as tuning
    from rambench.config import resolve
    from rambench.store import Store
    from rambench.study import parse, stored

    candidates = None
    if lrs is not None:
        try:
            candidates = [float(v) for v in lrs.split(",") if v.strip()]
        except ValueError:
            candidates = []
        if not candidates:
            raise UsageError(f"--lr expects comma-separated numbers, e.g. 1e-3,2e-3; "
                             f"got {lrs!r}")
    clean = parse({"conditions": {"clean": True}}, "clean", "tune", name=study, out=out)
    spec = resolve(clean.replace(methods=list(method_names), dataset=dataset, seeds=[seed],
                                 set=_overrides(assignments), epochs=epochs, device=device,
                                 tune={"lr": candidates, "seed": seed}))
    tuning.candidates(spec, candidates)
    store = Store(out, study)
    _writable(store.root, "results", "--out")
    tunings = tuning.tune_study(spec, store, progress=not as_json)
    tuning.with_tunings(stored(out, study) or spec.study, tunings).save()
    if as_json:
        _echo_json([t.to_json() for t in tunings])
        return
    click.echo(f"best validation accuracy (%) per learning rate, {dataset}, seed {seed}")
    click.echo(tuning.render(tunings))


@cli.command()
@dataset_option
@click.option("--modality", "modalities", multiple=True,
              help="modality to calibrate; repeatable (default: every modality)")
@click.option("--seeds", default="0", show_default=True, help=SEEDS_HELP)
@click.option("--epochs", type=int, default=None, help="override train.epochs")
@click.option("--severity-scale", type=Choice(SCALE_CHOICES), default=None,
              help="image corruptions' severity table [default: auto, from the image size]")
@device_option
@out_option
@click.option("--study", default="calibration", show_default=True,
              help="study holding the reference models' results (reused on a second call)")
@click.option("--split", type=Choice(["val", "test"]), default="val", show_default=True,
              help="the split the ladders are measured on (the test split tunes nothing)")
@json_option
def calibrate(dataset, modalities, seeds, epochs, severity_scale, device, out, study, split,
              as_json) -> None:
    """Check that every corruption's severity ladder is graded on a dataset.

    Trains (or reuses) the unimodal reference model of each modality, evaluates it on all of
    that modality's corruptions at severities 1-5 (audio: and a lost time segment), the
    multimodal reference (late_fusion) on every audio-visual event and on missing rates
    0.1-0.9, and flags a ladder that collapses at severity 1 (loses more than half of the
    clean-to-chance gap), is flat (severity 5 loses less than a tenth of it) or is not
    monotone beyond seed noise (a ladder published so is reported as such, not flagged).
    """
    from rambench.calibrate import calibrate as run_calibration
    from rambench.calibrate import render

    ladders = run_calibration(dataset, list(modalities) or None, _seeds(seeds) or [0], epochs,
                              severity_scale, out, study, device, progress=not as_json,
                              split=split)
    if as_json:
        _echo_json([vars(ladder) for ladder in ladders])
        return
    scales = sorted({ladder.severity_scale for ladder in ladders if ladder.severity_scale})
    methods_used = ", ".join(dict.fromkeys(ladder.method for ladder in ladders))
    click.echo(f"accuracy (%) of {methods_used} on the {split} split of {dataset}"
               + (f"; image severity scale: {', '.join(scales)}" if scales else ""))
    click.echo(render(ladders))
    flagged = [ladder for ladder in ladders if ladder.failed]
    published = [ladder for ladder in ladders if ladder.flags and not ladder.failed]
    click.echo(f"{len(flagged)} of {len(ladders)} ladders flagged"
               + (f" ({len(published)} more published non-monotone: "
                  f"{', '.join(ladder.corruption for ladder in published)})" if published
                  else ""))
    for ladder in {ladder.modality: ladder for ladder in ladders if ladder.at_chance}.values():
        click.echo(f"warning: the {ladder.modality} reference model ({ladder.method}) is at "
                   f"chance on clean data ({ladder.clean:.1%}, chance {ladder.chance:.1%}): "
                   "its ladders measure nothing; train it longer (--epochs)", err=True)


@cli.command()
@dataset_option
@click.option("--modality", default=None,
              help="which modality to show (default: the first image one)")
@click.option("--index", default=0, show_default=True, help="test sample to show")
@click.option("--seed", default=0, show_default=True, help="seed of the random corruptions")
@click.option("--corruption-backend", type=Choice(["torch", "reference"]),
              default="torch", show_default=True)
@click.option("--severity-scale", type=Choice(SCALE_CHOICES), default="auto",
              show_default=True, help="image corruptions' severity table")
@click.option("--events", is_flag=True,
              help="the audio-visual events instead: frames and spectrograms side by side")
@click.option("--to", "target", type=click.Path(dir_okay=False), default=None,
              callback=_figure_path,
              help="output file, .png or .pdf (default: preview-DATASET-MODALITY.png)")
def preview(dataset, modality, index, seed, corruption_backend, severity_scale, events,
            target) -> None:
    """Draw one test sample under every corruption at severities 1-5 in one figure (with
    --events: every audio-visual event, each as its frames above its spectrograms)."""
    from rambench.datasets import datasets
    from rambench.report.preview import events_figure, preview_figure, save_preview

    ds = datasets.get(dataset)()
    n = len(ds.split("test"))
    if not 0 <= index < n:
        raise UsageError(f"--index must be in 0..{n - 1} (the test split has {n} samples)")
    if events:
        kinds = {s.kind for s in ds.modalities.values()}
        if not {"image", "audio"} <= kinds:
            raise UsageError(f"--events needs an image and an audio modality; {dataset!r} "
                             f"has {', '.join(ds.modalities)}")
        path = save_preview(events_figure(ds, index, seed),
                            target or f"preview-{dataset}-events.png")
        click.echo(f"wrote {path}")
        return
    if modality is None:
        modality = next((m for m, s in ds.modalities.items() if s.kind == "image"),
                        next(iter(ds.modalities)))
    if modality not in ds.modalities:
        raise UsageError(f"dataset {dataset!r} has no modality {modality!r}; "
                         f"modalities: {', '.join(ds.modalities)}")
    fig = preview_figure(ds, modality, index, seed, corruption_backend,
                         scale=severity_scale)
    path = save_preview(fig, target or f"preview-{dataset}-{modality}.png")
    click.echo(f"wrote {path}")


def _writable(folder: Path, what: str, option: str) -> None:
    from rambench.store import check_writable

    check_writable(folder, what, option)


def _existing_store(out: str, study: str):
    from rambench.store import Store

    store = Store(out, study)
    if not store.records_dir.is_dir():
        existing = sorted(p.parent.name for p in Path(out).glob("*/records"))
        raise UsageError(f"no study {study!r} under {out}/"
                         + (f"; studies there: {', '.join(existing)}" if existing else ""))
    return store


def _open_results(study: str, out: str, bundle_path: str | None):
    """(ResultSet, Store) of the study the report commands read: OUT/STUDY, or with --from
    a result bundle (Store None); UsageError if it has no results or a cell twice."""
    from rambench.results import ResultSet, open_study, user_errors

    if bundle_path is None:
        store = _existing_store(out, study)
        return open_study(store), store
    source = click.get_current_context().get_parameter_source
    given = [f"--{name}" for name in ("study", "out")
             if source(name) is click.core.ParameterSource.COMMANDLINE]
    if given:
        raise UsageError(f"--from {bundle_path} reads a bundle and {given[0]} a study folder; "
                         "give one of them")
    data = ResultSet.from_bundle(bundle_path)
    if not data.records:
        raise UsageError(f"bundle {bundle_path} holds no results")
    with user_errors():
        data.scores()  # checks that every cell occurs once
    return data, None


class _LevelFormatter:
    """'warning: ...', 'debug: ...': the level in lower case, as the CLI's other lines."""

    def __init__(self, fmt: str):
        import logging

        self._formatter = logging.Formatter(fmt)

    def format(self, record) -> str:
        record.levelname = record.levelname.lower()
        return self._formatter.format(record)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (what SLURM and `kill` send), handled like Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def main() -> None:
    import logging
    import signal

    handler = logging.StreamHandler()
    handler.setFormatter(_LevelFormatter("%(levelname)s: %(message)s"))
    logging.getLogger("rambench").addHandler(handler)
    logging.getLogger("rambench").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort as err:  # click turns Ctrl-C into Abort
        cause = err.__cause__ if isinstance(err.__cause__, KeyboardInterrupt) else None
        _interrupted(cause or KeyboardInterrupt())
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except UsageError as err:
        _error(err)
        sys.exit(2)
    except TrainingError as err:
        _error(err)
        sys.exit(1)
    except OSError as err:  # a full or failing disk mid-run
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO):
            raise
        click.echo(f"Error: could not write {err.filename or 'a file'}: {err.strerror}; "
                   "finished cells are stored: free space and run the same command to resume",
                   err=True)
        sys.exit(1)
    except KeyboardInterrupt as err:
        _interrupted(err)


def _error(err: Exception) -> None:
    """One line; with -v, first the traceback of what caused it (e.g. a method's bug)."""
    if VERBOSE and err.__cause__ is not None:
        import traceback

        traceback.print_exception(err.__cause__, file=sys.stderr)
    click.echo(f"Error: {err}", err=True)


def _interrupted(err: KeyboardInterrupt) -> None:
    what = "terminated" if isinstance(err, _Terminated) else "interrupted"
    click.echo(f"\n{what}: finished cells are stored; run the same command to resume",
               err=True)
    sys.exit(143 if isinstance(err, _Terminated) else 130)


if __name__ == "__main__":
    main()
