"""Table views (`build_table`): the columns of each of the eight tables of the results.

Mean ± std over seeds, per view:

* main: clean accuracy, mPC under image and under audio corruptions, accuracy with missing
  modalities (every missing cell alike) and mCE (normalised by the reference method);
* corruption: accuracy per corruption (mean over severities);
* severity: accuracy per severity (mean over corruptions; 0 = clean) and the area under it;
* missing: accuracy per dropped modality and per random missing rate, and the area under
  accuracy vs missing rate;
* conditions: test condition x method (the table `rambench run` prints);
* leaderboard: every summary metric, sorted by one of them;
* calibration: ECE, NLL and Brier score on clean inputs and under each modality's
  corruptions (`rambench.metrics.cell`);
* redundancy: the redundancy gap per modality, corrupted and dropped
  (`rambench.metrics.redundancy`).

A column's values and its test come from one metric spec (`rambench.metrics.specs`); the
tests and marks are `rambench.report.significance`'s, the model `rambench.report.table`'s,
the renderers `rambench.report.render`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from rambench import metrics
from rambench.report import DEFAULT_AGAINST, VIEWS
from rambench.report.significance import SpecTests, cellwise_tests, mark_for
from rambench.report.table import Column, Table, columns_table, row_order
from rambench.results import serve_tables

AGAINST = DEFAULT_AGAINST


def condition_label(row: pd.Series) -> str:
    """How a table names a test condition (from its kind and axes)."""
    kind = row["condition_kind"]
    if kind == "clean":
        return "clean"
    if kind == "drop":
        return f"missing {row['test_modality']}"
    if kind == "random_missing":
        return f"missing rate {row['missing_rate']:g}"
    if kind == "modality_missing":
        return "missing " + row["condition"].removeprefix("missing:").replace(",", ", ")
    if kind == "segment_loss":
        return f"{row['test_modality']} segment lost s{row['severity']}"
    if kind == "provided":
        return f"provided {row['condition'].removeprefix('provided:')}"
    if kind == "mixed":
        return f"mixed {row['corruption']} s{row['severity']}"
    if kind == "av":
        return f"AV {row['corruption']} s{row['severity']}"
    return f"{row['test_modality']} {row['corruption']} s{row['severity']}"


KIND_ORDER = {"clean": 0, "corruption": 1, "av": 2, "drop": 3, "random_missing": 4,
              "modality_missing": 5, "segment_loss": 6, "mixed": 7, "provided": 8}


def _ordered_conditions(acc: pd.DataFrame) -> pd.DataFrame:
    """Rows in table order (clean, corruptions, dropped, random missing, mixed) with a
    ``display`` column naming each condition."""
    acc = acc.copy()
    acc["display"] = acc.apply(condition_label, axis=1)
    acc["order"] = acc["condition_kind"].map(KIND_ORDER)
    acc["visual_first"] = acc["modality_kind"] != "image"
    return acc.sort_values(["order", "visual_first", "test_modality", "corruption", "severity",
                            "missing_rate"], kind="stable", na_position="first")


def accuracy_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Rows: test conditions (clean first); columns: methods; mean accuracy over seeds."""
    acc = tidy[tidy["metric"] == "accuracy"]
    if acc.empty:
        return pd.DataFrame()
    ordered = _ordered_conditions(acc)
    table = ordered.pivot_table(index="display", columns="method", values="value",
                                aggfunc="mean")
    table.index.name = "condition"
    return table.reindex(list(dict.fromkeys(ordered["display"])))



def modality_label(frame: pd.DataFrame, modality: str) -> str:
    """The kind of data a modality carries (image, audio), as recorded in its rows."""
    kinds = frame.loc[frame["test_modality"] == modality, "modality_kind"].dropna()
    return str(kinds.iloc[0]) if len(kinds) else modality


def _image_first(frame: pd.DataFrame):
    return lambda m: (modality_label(frame, m) != "image", m)



def _is(*kinds: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda f: f["condition_kind"].isin(kinds)


def spec_column(name: str, key: str, tidy: pd.DataFrame, corr: pd.DataFrame | None,
                reference: str | None = None) -> Column:
    """The column of a summary metric (a `metrics.SPECS` key): its per-seed values and its
    paired test, both from the one spec."""
    spec = metrics.SPECS[key]
    return Column(name, spec.per_seed(tidy, reference), spec.higher_is_better,
                  test=SpecTests(corr, spec, reference=reference).test())


def main_columns(tidy: pd.DataFrame, corr: pd.DataFrame | None, reference: str,
                 notes: list[str]) -> list[Column]:
    columns = [spec_column("clean", "clean", tidy, corr)]
    by_modality = metrics.mpc(tidy, by="modality")
    tests = SpecTests(corr, metrics.MPC, ["test_modality"])
    for modality in sorted(by_modality["test_modality"].unique(), key=_image_first(tidy)):
        columns.append(Column(f"{modality_label(tidy, modality)} mPC",
                              by_modality[by_modality["test_modality"] == modality],
                              test=tests.test(modality)))
    if (tidy["condition_kind"] == "av").any():
        columns.append(spec_column("AV events", "av", tidy, corr))
    columns.append(spec_column("missing", "missing", tidy, corr))
    if (tidy["condition_kind"] == "mixed").any():
        columns.append(spec_column("mixed", "mixed", tidy, corr))
    columns.append(_reference_column(tidy, corr, reference, notes, "mce"))
    return [c for c in columns if c is not None]


def _has_method(tidy: pd.DataFrame, method: str) -> bool:
    return bool((metrics.scores(tidy)["method"] == method).any())


def _reference_column(tidy: pd.DataFrame, corr: pd.DataFrame | None, reference: str,
                      notes: list[str], key: str) -> Column | None:
    """The column of a metric normalised by the reference (mCE, relative mCE, effective
    robustness), or None and a note naming what is missing (e.g. while the reference is
    still running): the table still renders."""
    name = metrics.SPECS[key].label
    if not _has_method(tidy, reference):
        notes.append(f"{name} left out: the reference method {reference!r} is not in the "
                     "results (choose another with --reference)")
        return None
    try:
        return spec_column(name, key, tidy, corr, reference)
    except metrics.MissingReferenceError as err:
        notes.append(f"{name} left out: {err}")
        return None


def main_table(tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
               reference: str = metrics.DEFAULT_REFERENCE, against: str | None = AGAINST
               ) -> Table:
    notes: list[str] = []
    columns = main_columns(tidy, corr, reference, notes)
    table = columns_table("Accuracy (%) under clean, corrupted and missing inputs; mCE "
                          f"(%) relative to {reference}", columns, reference, against,
                          notes=notes)
    return table


def corruption_table(tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
                     reference: str = metrics.DEFAULT_REFERENCE,
                     against: str | None = AGAINST) -> Table:
    per = metrics.mpc(tidy, by="corruption")
    columns = []
    keys = per[metrics.CORRUPTION].drop_duplicates()
    image_first = _image_first(tidy)
    keys = keys.sort_values(metrics.CORRUPTION, key=lambda s: s.map(
        image_first) if s.name == "test_modality" else s)
    tests = SpecTests(corr, metrics.MPC, list(metrics.CORRUPTION))
    for modality, corruption in keys.itertuples(index=False):
        part = per[(per["test_modality"] == modality) & (per["corruption"] == corruption)]
        columns.append(Column(f"{modality_label(tidy, modality)}: {corruption}", part,
                              test=tests.test(modality, corruption)))
    return columns_table("Accuracy (%) per corruption, mean over severities", columns,
                         reference, against)


def severity_table(tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
                   reference: str = metrics.DEFAULT_REFERENCE,
                   against: str | None = AGAINST) -> Table:
    columns = [spec_column("0 (clean)", "clean", tidy, corr)]
    per = metrics.MPC.per_seed(tidy, scope=["severity"])
    tests = SpecTests(corr, metrics.MPC, ["severity"])
    severities = sorted(per["severity"].unique())
    for severity in severities:
        columns.append(Column(str(severity), per[per["severity"] == severity],
                              test=tests.test(severity)))
    if severities:
        columns.append(spec_column("AUC", "auc", tidy, corr))
    return columns_table("Accuracy (%) per severity, mean over corruptions; AUC: normalised "
                         "area under accuracy vs severity", columns, reference, against)


def missing_table(tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
                  reference: str = metrics.DEFAULT_REFERENCE,
                  against: str | None = AGAINST) -> Table:
    columns = []
    missing = metrics.SPECS["missing"]
    for kind, column, name in (("drop", "test_modality", "no {}"),
                               ("random_missing", "missing_rate", "rate {:g}"),
                               ("modality_missing", "condition", "{}"),
                               ("segment_loss", "condition", "{}")):
        per = missing.per_seed(tidy, scope=[column], select=_is(kind))
        tests = SpecTests(corr, missing, [column], _is(kind))
        values = sorted(per[column].unique(), key=_image_first(tidy) if kind == "drop"
                        else None)
        for value in values:
            label = (modality_label(tidy, value) if kind == "drop" else
                     _missing_label(value) if column == "condition" else value)
            columns.append(Column(name.format(label), per[per[column] == value],
                                  test=tests.test(value)))
    if (tidy["condition_kind"] == "random_missing").any():
        columns.append(spec_column("AUC", "missing_auc", tidy, corr))
    return columns_table("Accuracy (%) with a dropped modality, at random missing rates (one "
                         "for all modalities, or one per modality) and with a lost time "
                         "segment; AUC: normalised area under accuracy vs missing rate",
                         columns, reference, against)


def _missing_label(condition: str) -> str:
    """A column name for a per-modality rate or a lost segment, from its condition label
    ('missing:visual=0.3,audio=0.7' -> 'visual 0.3, audio 0.7'; 'segment:audio@3' ->
    'audio segment s3')."""
    if condition.startswith("segment:"):
        modality, severity = condition.removeprefix("segment:").split("@")
        return f"{modality} segment s{severity}"
    return ", ".join(p.replace("=", " ") for p in condition.removeprefix("missing:").split(","))


def leaderboard_table(tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
                      reference: str = metrics.DEFAULT_REFERENCE,
                      against: str | None = AGAINST, sort_by: str = "mpc") -> Table:
    """Every summary metric per method, rows sorted by `sort_by` (a `metrics.SPECS` key)."""
    if sort_by not in metrics.SPECS:
        raise ValueError(f"unknown metric {sort_by!r}; choose from "
                         f"{', '.join(metrics.SPECS)}")
    notes: list[str] = []
    columns = []
    for key, spec in metrics.SPECS.items():
        if spec.needs_reference:
            columns.append(_reference_column(tidy, corr, reference, notes, key))
        else:
            columns.append(spec_column(spec.label, key, tidy, corr))
    columns = [c for c in columns if c is not None]
    name = metrics.SPECS[sort_by].label
    table = columns_table(f"Leaderboard, sorted by {name}", columns, reference, against,
                          notes=notes)
    if name in table.columns:
        values = table.mean[name]
        ascending = not table.higher_is_better[name]
        order = values.sort_values(ascending=ascending, na_position="last", kind="stable").index
        for attr in ("mean", "std", "seeds", "p", "mark"):
            setattr(table, attr, getattr(table, attr).loc[order])
    else:
        table.notes.append(f"cannot sort by {name}: not available for this study")
    return table


def conditions_table(tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
                     reference: str = metrics.DEFAULT_REFERENCE,
                     against: str | None = AGAINST) -> Table:
    """Test condition x method (mean ± std over seeds), best per row."""
    rows = _ordered_conditions(metrics.scores(tidy))
    if rows["dataset"].nunique() > 1:
        rows["display"] = rows["dataset"] + ": " + rows["display"]
    conditions = list(dict.fromkeys(rows["display"]))
    methods = row_order(list(rows["method"].unique()), reference, against)
    grouped = rows.groupby(["display", "method"])["score"]
    mean = grouped.mean().unstack().reindex(index=conditions, columns=methods) * 100
    std = grouped.std(ddof=1).unstack().reindex(index=conditions, columns=methods) * 100
    seeds = grouped.count().unstack().reindex(index=conditions, columns=methods)
    p = pd.DataFrame(np.nan, index=conditions, columns=methods)
    mark = pd.DataFrame("", index=conditions, columns=methods)
    label = rows.drop_duplicates(["dataset", *metrics.CELL])[["dataset", *metrics.CELL,
                                                              "display"]]
    if corr is not None and not corr.empty and against in methods:
        for method in methods:
            if method == against:
                continue
            tests = cellwise_tests(corr, method, against)
            tests = tests.merge(label, on=["dataset", *metrics.CELL])
            for t in tests.itertuples(index=False):
                p.loc[t.display, method] = t.p
                if marked := mark_for(t.p, t.diff):
                    mark.loc[t.display, method] = marked
    return Table("Accuracy (%) per test condition", "condition", mean, std, seeds, p, mark,
                 dict.fromkeys(methods, True), against, best_axis="row")


CALIBRATION_METRICS = ("ece", "nll", "brier")


def calibration_table(tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
                      reference: str = metrics.DEFAULT_REFERENCE,
                      against: str | None = AGAINST) -> Table:
    """ECE (%), NLL and Brier score: clean, and under each modality's corruptions (mean
    over severities, then corruptions). Lower is better; no significance marks."""
    columns = []
    for name in CALIBRATION_METRICS:
        spec = metrics.CELL_METRICS[name]
        if not (tidy["metric"] == name).any():
            continue
        scale = 100.0 if spec.rate else 1.0
        columns.append(Column(f"{spec.label} clean", metrics.mean_value(tidy, name, "clean"),
                              higher_is_better=False, scale=scale))
        corrupted = metrics.mean_value(tidy, name, "corruption", by="modality")
        for modality in sorted(corrupted["test_modality"].unique(), key=_image_first(tidy)):
            columns.append(Column(f"{spec.label} {modality_label(tidy, modality)}",
                                  corrupted[corrupted["test_modality"] == modality],
                                  higher_is_better=False, scale=scale))
    notes = [] if columns else ["no calibration metrics: the records carry no per-sample "
                                "predictions (records of schema 1, or a bundle packed with "
                                "--per-sample correctness)"]
    table = columns_table(f"Calibration: ECE (%, {metrics.cell.ECE_BINS} equal-width bins), "
                          "NLL and Brier score, clean and under each modality's corruptions "
                          "(mean over severities, then corruptions)", columns, reference,
                          None, notes=notes)
    table.digits = 2
    return table


def redundancy_table(tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
                     reference: str = metrics.DEFAULT_REFERENCE,
                     against: str | None = AGAINST) -> Table:
    """Redundancy gap (points): accuracy minus the intact modality's unimodal model, when a
    modality is corrupted (mPC averaging) or dropped. Marks: the paired test of the same
    cells against `against` (the reference's accuracy cancels in a difference of gaps)."""
    gap = metrics.redundancy_gap(tidy)
    columns = []
    for kind, title, spec in (("corruption", "{} corrupted", metrics.MPC),
                              ("drop", "no {}", metrics.SPECS["missing"])):
        tests = SpecTests(corr, spec, ["test_modality"], _is(kind))
        part = gap[gap["condition_kind"] == kind]
        for modality in sorted(part["test_modality"].unique(), key=_image_first(tidy)):
            columns.append(Column(title.format(modality_label(tidy, modality)),
                                  part[part["test_modality"] == modality],
                                  test=tests.test(modality)))
    table = columns_table("Redundancy gap (points): accuracy minus the unimodal model of the "
                          "intact modality, when a modality is corrupted or dropped",
                          columns, reference, against)
    return table


SCORES = ("accuracy", "macro_f1")  # per-cell scores the accuracy views can average


def build_table(view: str, tidy: pd.DataFrame, corr: pd.DataFrame | None = None,
                reference: str = metrics.DEFAULT_REFERENCE, against: str | None = AGAINST,
                sort_by: str = "mpc", score: str = "accuracy") -> Table:
    """The table of one view (see the module docstring). `score="macro_f1"` builds the
    accuracy views from each cell's macro-F1 instead (for unbalanced classes); its columns
    are not tested (the paired bootstrap resamples correctness, which is accuracy's)."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose from {', '.join(SCORES)}")
    notes = []
    if score != "accuracy" and view not in ("calibration", "redundancy"):
        label = metrics.CELL_METRICS[score].label
        others = tidy[tidy["metric"] != "accuracy"]
        tidy = pd.concat([tidy[tidy["metric"] == score].assign(metric="accuracy"), others])
        corr, against = None, None
        notes = [f"every value is the cells' {label}, not accuracy; no significance marks"]
    builders = {"main": main_table, "corruption": corruption_table, "severity": severity_table,
                "missing": missing_table, "conditions": conditions_table,
                "calibration": calibration_table, "redundancy": redundancy_table}
    if view == "leaderboard":
        table = leaderboard_table(tidy, corr, reference, against, sort_by)
    elif view in builders:
        table = builders[view](tidy, corr, reference, against)
    else:
        raise ValueError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    table.notes = (metrics.training_notes(tidy) + metrics.coverage_notes(tidy) + notes
                   + table.notes)
    if score != "accuracy" and notes:
        table.title = table.title.replace("Accuracy", metrics.CELL_METRICS[score].label)
    return table


serve_tables(build_table)  # `rambench.results.ResultSet.table` builds its tables here
