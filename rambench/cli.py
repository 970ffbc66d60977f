"""The `rambench` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rambench.errors import UsageError

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
device_option = click.option("--device", default="auto", show_default=True,
                             help="auto | cpu | cuda | cuda:N")
set_option = click.option("--set", "assignments", multiple=True, metavar="SCOPE.KEY=VALUE",
                          help="override a hyper-parameter, e.g. raml.alpha=0.5 or train.lr=1e-3")
dataset_option = click.option("--dataset", default="avdigits", show_default=True)
cache_option = click.option(
    "--cache-dir", default=None, metavar="DIR",
    help="corrupted-data cache (default: $RAMBENCH_CACHE_DIR, else ~/.cache/rambench)")


def _cache(cache_dir: str | None, enabled: bool = True):
    from rambench.cache import CorruptionCache, default_cache_dir

    return CorruptionCache((cache_dir or default_cache_dir()) if enabled else None)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rambench")
def cli() -> None:
    """rambench: robustness benchmarking for multimodal learning (RAML and baselines)."""


@cli.command()
@click.option("--method", required=True, help="registered name or path/to/file.py:ClassName")
@dataset_option
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--epochs", type=int, default=None, help="override train.epochs")
@device_option
@set_option
@out_option
@study_option
def train(method, dataset, seed, epochs, device, assignments, out, study) -> None:
    """Train one method once and print its clean test accuracy."""
    from rambench.grid import parse_grid
    from rambench.run import execute, make_plan
    from rambench.store import Store

    grid = parse_grid({"conditions": {"clean": True}}, "clean", "train")
    store = Store(out, study)
    plan = make_plan(dataset, [method], [seed], grid, _overrides(assignments), epochs, store,
                     force=True, device_name=device)
    record = execute(plan, force=True)[0]
    training = record["provenance"]["training"]
    click.echo(f"{record['method']} on {dataset} (seed {seed}): clean test accuracy "
               f"{100 * record['metrics']['accuracy']:.2f}% "
               f"(best val {100 * training['best_val_accuracy']:.2f}% at epoch "
               f"{training['best_epoch'] + 1}/{training['epochs_run']}, "
               f"{training['seconds']:.0f}s)")
    click.echo(f"checkpoint: {store.checkpoint_path(record['provenance']['job_key'])}")


@cli.command()
@click.option("--method", "method_names", multiple=True, required=True,
              help="repeatable; 'all' for every registered method")
@click.option("--grid", "grid_spec", default="smoke", show_default=True,
              help="preset name (rambench ls grids) or path to a grid YAML")
@dataset_option
@click.option("--seeds", default=None, help=SEEDS_HELP)
@click.option("--epochs", type=int, default=None, help="override train.epochs")
@device_option
@set_option
@out_option
@study_option
@click.option("--corruption-backend", type=click.Choice(["torch", "reference"]),
              default="torch", show_default=True,
              help="batched torch implementations (on --device) or the reference libraries")
@cache_option
@click.option("--no-cache", is_flag=True, help="do not read or write the corrupted-data cache")
@click.option("--force", is_flag=True, help="recompute cells (and retrain) even if stored")
@click.option("--dry-run", is_flag=True, help="print the plan and exit")
def run(method_names, grid_spec, dataset, seeds, epochs, device, assignments, out, study,
        corruption_backend, cache_dir, no_cache, force, dry_run) -> None:
    """Train each method once per seed and evaluate it on every cell of a grid.

    Finished cells are skipped, so an interrupted run resumes where it stopped.
    """
    from rambench.grid import load_grid
    from rambench.report.tables import accuracy_table, to_markdown
    from rambench.run import execute, make_plan
    from rambench.store import Store

    grid = load_grid(grid_spec)
    seed_list = _seeds(seeds) or grid.seeds or [0]
    store = Store(out, study)
    plan = make_plan(dataset, method_names, seed_list, grid, _overrides(assignments), epochs,
                     store, force, device, corruption_backend)
    _report_invalid(store)
    if dry_run:
        click.echo(plan.describe())
        return
    click.echo(f"study {study!r}: {len(plan.cells)} cells, {len(plan.cells) - len(plan.todo)} "
               f"already done, {len(plan.todo)} to run", err=True)
    cache = _cache(cache_dir, not no_cache)
    execute(plan, force=force, cache=cache)
    if cache.hits + cache.misses:
        click.echo(f"corrupted-data cache {cache.root}: {cache.hits} reused, "
                   f"{cache.misses} built", err=True)
    wanted = {c.key for c in plan.cells}
    tidy = store.tidy()
    click.echo(to_markdown(accuracy_table(tidy[tidy["key"].isin(wanted)])))


def _report_invalid(store) -> None:
    for path, why in store.invalid:
        click.echo(f"warning: ignoring unreadable record {path} ({why}); it will be recomputed",
                   err=True)


@cli.command("ls")
@click.argument("what", type=click.Choice(["methods", "datasets", "corruptions", "grids"]))
def ls(what: str) -> None:
    """List registered methods, datasets, corruptions or grid presets."""
    if what == "methods":
        from rambench.methods import methods

        for name in methods.names():
            cls = methods.get(name)
            click.echo(f"{name:<14} {cls.family:<13} {cls.summary()}")
    elif what == "datasets":
        from rambench.datasets import datasets

        for name in datasets.names():
            cls = datasets.get(name)
            mods = ", ".join(f"{m} ({s.kind})" for m, s in cls.modalities.items())
            classes = f"{len(cls.class_names)} classes" if cls.class_names else \
                "classes from the data"
            click.echo(f"{name:<10} {classes}; {mods}; {cls.description}")
    elif what == "corruptions":
        from corruptions import registry

        for c in registry.all_corruptions():
            click.echo(f"{c.name:<18} {c.kind:<6} {c.family:<10} severities 1-5: "
                       f"{' | '.join(c.severity_table)}")
    else:
        from rambench.grid import load_grid, preset_names

        for name in preset_names():
            grid = load_grid(name)
            click.echo(f"{name:<8} {grid.raw.get('description', '')}")


@cli.command()
@study_option
@out_option
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True)
@click.option("--to", "target", type=click.Path(dir_okay=False), default=None,
              help="output file (default: <out>/<study>/export.<format>)")
def export(study, out, fmt, target) -> None:
    """Write the study's tidy results table (one row per cell and metric)."""
    store = _existing_store(out, study)
    tidy = store.tidy()
    _report_invalid(store)
    path = Path(target) if target else store.root / f"export.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
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
@click.option("--format", "fmt", type=click.Choice(["md", "latex", "csv"]), default="md",
              show_default=True)
@click.option("--view", type=click.Choice(["main", "corruption", "severity", "missing",
                                           "conditions", "leaderboard"]),
              default="main", show_default=True,
              help="main: methods x {clean, image mPC, audio mPC, missing, mCE}; "
                   "conditions: test condition x method")
@click.option("--reference", default=None,
              help="method that normalises mCE  [default: late_fusion]")
@click.option("--to", "target", type=click.Path(dir_okay=False), default=None,
              help="write to this file instead of printing")
def table(study, out, fmt, view, reference, target) -> None:
    """Print a results table: mean ± std over seeds, best bold, significance vs raml."""
    from rambench.report import study as loader
    from rambench.report.tables import build_table, render

    store = _existing_store(out, study)
    data = loader.load(store)
    with loader.user_errors():
        result = build_table(view, data.tidy, data.correctness(),
                             loader.reference_for(data, reference))
    text = render(result, fmt, label=f"tab:{study}-{view}")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(text + "\n")
        click.echo(f"wrote {target}")
    else:
        click.echo(text)
    _report_invalid(store)


@cli.command()
@study_option
@out_option
@click.option("--kind", type=click.Choice(["severity", "heatmap", "missing", "families", "all"]),
              default="all", show_default=True)
def plot(study, out, kind) -> None:
    """Draw figures (PNG and PDF under <out>/<study>/plots): accuracy vs severity, drop
    heatmap, accuracy vs missing rate, per-family bars with bootstrap CIs."""
    from rambench.report import study as loader
    from rambench.report.figures import KINDS, make_figures

    store = _existing_store(out, study)
    data = loader.load(store)
    kinds = KINDS if kind == "all" else (kind,)
    corr = data.correctness() if "families" in kinds else None
    written = make_figures(data.tidy, store.root / "plots", kinds, corr)
    if not written:
        raise UsageError(f"study {study!r} has no results to draw a {kind} figure from")
    for paths in written.values():
        for path in paths:
            click.echo(f"wrote {path}")
    _report_invalid(store)


@cli.command()
@study_option
@out_option
@click.option("--metric", type=click.Choice(["mpc", "clean", "rpc", "mce", "rmce", "auc",
                                             "missing", "missing_auc", "er", "mixed"]),
              default="mpc", show_default=True, help="leaderboard order")
@click.option("--reference", default=None,
              help="method that normalises mCE  [default: late_fusion]")
def report(study, out, metric, reference) -> None:
    """Write every table, every figure and a self-contained report.html to
    <out>/<study>/report."""
    from rambench.report import study as loader
    from rambench.report.document import write_report

    store = _existing_store(out, study)
    data = loader.load(store)
    with loader.user_errors():
        written = write_report(data.tidy, data.records, store.root / "report", study, metric,
                               loader.reference_for(data, reference))
    for note in written["notes"]:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {len(written['tables'])} tables and {len(written['figures'])} figure "
               f"files; open {written['html']}")
    _report_invalid(store)


@cli.command()
@study_option
@out_option
@click.option("--method", required=True, help="the method to compare")
@click.option("--against", default="raml", show_default=True, help="the method compared with")
def compare(study, out, method, against) -> None:
    """Paired comparison per condition group (bootstrap CI and p, Wilcoxon) and a figure of
    the per-corruption differences."""
    from rambench.report import study as loader
    from rambench.report.compare import compare_groups, format_comparison, per_corruption
    from rambench.report.figures import compare_figure, save_figure

    store = _existing_store(out, study)
    data = loader.load(store)
    loader.check_method(data, method, "--method")
    loader.check_method(data, against, "--against")
    if method == against:
        raise UsageError("--method and --against name the same method")
    corr = data.correctness()
    result = compare_groups(data.tidy, corr, method, against)
    if result.empty:
        raise UsageError(f"{method!r} and {against!r} share no test cell in study {study!r}")
    click.echo(format_comparison(result, method, against))
    diffs = per_corruption(corr, method, against)
    if not diffs.empty:
        paths = save_figure(compare_figure(diffs, method, against), store.root / "plots",
                            f"compare_{method}_vs_{against}")
        for path in paths:
            click.echo(f"wrote {path}")
    _report_invalid(store)


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
@click.option("--skip-bad", is_flag=True, help="leave unreadable clips out (counted)")
@click.option("--data-dir", default=None, metavar="DIR",
              help="where prepared data goes (default: $RAMBENCH_DATA_DIR, else "
                   "~/.cache/rambench/datasets)")
def prepare(name, root, frames, size, candidates, sample_rate, seconds, skip_bad,
            data_dir) -> None:
    """Decode a real dataset once into a memory-mapped, checksummed cache."""
    from rambench.datasets import datasets
    from rambench.datasets.prepared import PreparedDataset
    from rambench.datasets.prepared import prepare as run_prepare

    cls = datasets.get(name)
    if not issubclass(cls, PreparedDataset):
        raise UsageError(f"dataset {name!r} needs no preparation; datasets to prepare: "
                         + ", ".join(n for n in datasets.names()
                                     if issubclass(datasets.get(n), PreparedDataset)))
    settings = cls.settings(frames=frames, size=size, candidates=candidates,
                            sample_rate=sample_rate, seconds=seconds)
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
    click.echo(f"deleted {store.clear()} entries from {store.root}")


@cli.command()
@dataset_option
@click.option("--modality", default=None,
              help="which modality to show (default: the first image one)")
@click.option("--index", default=0, show_default=True, help="test sample to show")
@click.option("--seed", default=0, show_default=True, help="seed of the random corruptions")
@click.option("--corruption-backend", type=click.Choice(["torch", "reference"]),
              default="torch", show_default=True)
@click.option("--to", "target", type=click.Path(dir_okay=False), default=None,
              help="output file, .png or .pdf (default: preview-DATASET-MODALITY.png)")
def preview(dataset, modality, index, seed, corruption_backend, target) -> None:
    """Draw one test sample under every corruption at severities 1-5 in one figure."""
    from rambench.datasets import datasets
    from rambench.report.preview import preview_figure, save_preview

    ds = datasets.get(dataset)()
    if modality is None:
        modality = next((m for m, s in ds.modalities.items() if s.kind == "image"),
                        next(iter(ds.modalities)))
    if modality not in ds.modalities:
        raise UsageError(f"dataset {dataset!r} has no modality {modality!r}; "
                         f"modalities: {', '.join(ds.modalities)}")
    n = len(ds.split("test"))
    if not 0 <= index < n:
        raise UsageError(f"--index must be in 0..{n - 1} (the test split has {n} samples)")
    fig = preview_figure(ds, modality, index, seed, corruption_backend)
    path = save_preview(fig, target or f"preview-{dataset}-{modality}.png")
    click.echo(f"wrote {path}")


def _existing_store(out: str, study: str):
    from rambench.store import Store

    store = Store(out, study)
    if not store.records_dir.is_dir():
        existing = sorted(p.parent.name for p in Path(out).glob("*/records"))
        raise UsageError(f"no study {study!r} under {out}/"
                         + (f"; studies there: {', '.join(existing)}" if existing else ""))
    return store


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except UsageError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished cells are stored; run the same command to resume",
                   err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
