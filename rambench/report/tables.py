"""Paper tables from the tidy results: methods x metrics, mean ± std over seeds.

Views (`build_table`):

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

A column's values and its test come from one metric spec (`rambench.metrics.specs`): given
the per-sample correctness (`rambench.stats.correctness`), each method is compared with
`against` (default raml) on the same cells by a paired two-level bootstrap of that spec's
statistic and marked when p < 0.05. Renderers: `render(table, 'md' | 'latex' | 'csv' |
'html' | 'json')`.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rambench import metrics
from rambench import stats as st
from rambench.report import DEFAULT_AGAINST, FORMATS, VIEWS

AGAINST = DEFAULT_AGAINST
ALPHA = 0.05
MARK_TEXT = {"md": {"win": "▲", "loss": "▼"}, "html": {"win": "▲", "loss": "▼"},
             "latex": {"win": r"^{\blacktriangle}", "loss": r"^{\blacktriangledown}"}}

Test = Callable[[str, str, str], "st.Paired | None"]  # (dataset, method, against)


def condition_label(row: pd.Series) -> str:
    """How a table names a test condition (from its kind and axes)."""
    kind = row["condition_kind"]
    if kind == "clean":
        return "clean"
    if kind == "drop":
        return f"missing {row['test_modality']}"
    if kind == "random_missing":
        return f"missing rate {row['missing_rate']:g}"
    if kind == "mixed":
        return f"mixed {row['corruption']} s{row['severity']}"
    if kind == "av":
        return f"AV {row['corruption']} s{row['severity']}"
    return f"{row['test_modality']} {row['corruption']} s{row['severity']}"


KIND_ORDER = {"clean": 0, "corruption": 1, "av": 2, "drop": 3, "random_missing": 4, "mixed": 5}


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


def to_markdown(table: pd.DataFrame, digits: int = 1) -> str:
    """A Markdown table of accuracies in percent (no extra dependency)."""
    if table.empty:
        return "(no results)"
    header = ["condition", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for condition, row in table.iterrows():
        cells = ["" if pd.isna(v) else f"{100 * v:.{digits}f}" for v in row]
        lines.append("| " + " | ".join([str(condition), *cells]) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the model


@dataclass
class Column:
    """One column of a methods x metrics table."""

    name: str
    per_seed: pd.DataFrame  # dataset, method, seed, value, note (from rambench.metrics)
    higher_is_better: bool = True
    scale: float = 100.0  # display factor: accuracies in %
    test: Test | None = None  # paired comparison with `against` on this column's statistic


@dataclass
class Table:
    """Cells as mean, std over seeds and significance marks; rendered by `render`."""

    title: str
    row_header: str
    mean: pd.DataFrame  # rows x columns, display units
    std: pd.DataFrame
    seeds: pd.DataFrame
    p: pd.DataFrame  # paired bootstrap p-value vs `against` (NaN: not tested)
    mark: pd.DataFrame  # "win" | "loss" | ""
    higher_is_better: dict[str, bool]
    against: str | None = None
    best_axis: str = "column"  # highlight the best per column, or per row
    notes: list[str] = field(default_factory=list)
    unit: str = "%"
    digits: int = 1
    spec: list[Column] = field(default_factory=list, repr=False)  # the columns it came from

    @property
    def rows(self) -> list[str]:
        return list(self.mean.index)

    @property
    def columns(self) -> list[str]:
        return list(self.mean.columns)

    @property
    def tested(self) -> bool:
        return bool(self.p.notna().to_numpy().any())

    def render(self, fmt: str = "md", label: str = "tab:results") -> str:
        """The table as Markdown, LaTeX, CSV or HTML (see `render`)."""
        return render(self, fmt, label)

    def transposed(self, row_header: str = "column") -> Table:
        """Columns as rows (e.g. corruptions down the page, methods across): for a wide
        table on a narrow page. The best is then marked per row."""
        return Table(self.title, row_header, self.mean.T, self.std.T, self.seeds.T, self.p.T,
                     self.mark.T, self.higher_is_better, self.against,
                     "row" if self.best_axis == "column" else "column", list(self.notes),
                     self.unit, self.digits)


def _row_order(methods: list[str], reference: str, against: str | None) -> list[str]:
    def key(m: str) -> tuple[int, str]:
        return (0 if m == reference else 2 if m == against else 1, m)

    return sorted(methods, key=key)


def _label(dataset: str, method: str, multi: bool) -> str:
    return f"{dataset}: {method}" if multi else method


def columns_table(title: str, columns: list[Column], reference: str, against: str | None,
                  alpha: float = ALPHA, notes: list[str] | None = None) -> Table:
    """A methods x columns Table: summarises each column over seeds and, where the column
    has a test, marks significant differences from `against`."""
    columns = [c for c in columns if not c.per_seed.empty]
    units = pd.concat([c.per_seed[["dataset", "method"]] for c in columns]).drop_duplicates() \
        if columns else pd.DataFrame(columns=["dataset", "method"])
    multi = units["dataset"].nunique() > 1
    units = units.assign(label=[_label(d, m, multi) for d, m in
                                zip(units["dataset"], units["method"], strict=True)])
    order = []
    for dataset in sorted(units["dataset"].unique()):
        names = _row_order(list(units[units["dataset"] == dataset]["method"]), reference,
                           against)
        order += [(dataset, m) for m in names]
    labels = [_label(d, m, multi) for d, m in order]
    frames = {k: pd.DataFrame(np.nan, index=labels, columns=[c.name for c in columns])
              for k in ("mean", "std", "seeds", "p")}
    mark = pd.DataFrame("", index=labels, columns=[c.name for c in columns])
    all_notes = list(notes or [])
    for col in columns:
        summary = metrics.summarise(col.per_seed, ["dataset", "method"])
        for row in summary.itertuples(index=False):
            label = _label(row.dataset, row.method, multi)
            frames["mean"].loc[label, col.name] = row.mean * col.scale
            frames["std"].loc[label, col.name] = row.std * col.scale
            frames["seeds"].loc[label, col.name] = row.seeds
        all_notes += [f"{col.name}: {n}" for n in metrics.notes(col.per_seed)]
        if col.test is None or against is None:
            continue
        for dataset, method in order:
            if method == against or not (units["method"] == against).any():
                continue
            result = col.test(dataset, method, against)
            if result is None or not np.isfinite(result.p):
                continue
            label = _label(dataset, method, multi)
            frames["p"].loc[label, col.name] = result.p
            if result.p < alpha and result.diff != 0:
                better = (result.diff > 0) == col.higher_is_better
                mark.loc[label, col.name] = "win" if better else "loss"
    return Table(title, "method", frames["mean"], frames["std"], frames["seeds"], frames["p"],
                 mark, {c.name: c.higher_is_better for c in columns}, against,
                 notes=list(dict.fromkeys(all_notes)), spec=columns)


# ---------------------------------------------------------------------------- the views


def modality_label(frame: pd.DataFrame, modality: str) -> str:
    """The kind of data a modality carries (image, audio), as recorded in its rows."""
    kinds = frame.loc[frame["test_modality"] == modality, "modality_kind"].dropna()
    return str(kinds.iloc[0]) if len(kinds) else modality


def _image_first(frame: pd.DataFrame):
    return lambda m: (modality_label(frame, m) != "image", m)


class SpecTests:
    """Paired tests of one metric spec against another method, per scope group: one
    `rambench.stats.bootstrap` per (dataset, method, against), cached; `test(*key)` serves
    the group `key` (the scope columns' values) to a Column."""

    def __init__(self, corr: pd.DataFrame | None, spec: metrics.MetricSpec,
                 scope: list[str] | None = None,
                 select: Callable[[pd.DataFrame], pd.Series] | None = None,
                 reference: str | None = None):
        self.corr, self.spec, self.scope = corr, spec, list(scope or [])
        self.select, self.reference = select, reference
        self.cache: dict[tuple[str, str, str], pd.DataFrame] = {}

    def _results(self, dataset: str, method: str, against: str) -> pd.DataFrame:
        key = (dataset, method, against)
        if key not in self.cache:
            corr = self.corr[self.corr["dataset"] == dataset]
            self.cache[key] = st.bootstrap(self.spec, corr, method, against, self.scope,
                                           self.select, self.reference)
        return self.cache[key]

    def test(self, *group) -> Test | None:
        if self.corr is None or self.corr.empty:
            return None

        def run(dataset: str, method: str, against: str) -> st.Paired | None:
            found = self._results(dataset, method, against)
            for column, value in zip(self.scope, group, strict=True):
                found = found[found[column] == value]
            if found.empty:
                return None
            r = found.iloc[0]
            return st.Paired(r["value"], r["low"], r["high"], r["p"], int(r["cells"]),
                             int(r["seeds"]))

        return run


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
                               ("random_missing", "missing_rate", "rate {:g}")):
        per = missing.per_seed(tidy, scope=[column], select=_is(kind))
        tests = SpecTests(corr, missing, [column], _is(kind))
        values = sorted(per[column].unique(), key=_image_first(tidy) if kind == "drop"
                        else None)
        for value in values:
            label = modality_label(tidy, value) if kind == "drop" else value
            columns.append(Column(name.format(label), per[per[column] == value],
                                  test=tests.test(value)))
    if (tidy["condition_kind"] == "random_missing").any():
        columns.append(spec_column("AUC", "missing_auc", tidy, corr))
    return columns_table("Accuracy (%) with a dropped modality and at random missing rates; "
                         "AUC: normalised area under accuracy vs missing rate", columns,
                         reference, against)


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
    methods = _row_order(list(rows["method"].unique()), reference, against)
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
            tests = st.bootstrap(metrics.specs.CELLWISE, corr, method, against,
                                 ["dataset", *metrics.CELL]).rename(columns={"value": "diff"})
            tests = tests.merge(label, on=["dataset", *metrics.CELL])
            for t in tests.itertuples(index=False):
                p.loc[t.display, method] = t.p
                if t.p < ALPHA and t.diff != 0:
                    mark.loc[t.display, method] = "win" if t.diff > 0 else "loss"
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
    notes = [] if columns else ["no calibration metrics: the records carry no predictions "
                                "(schema 1)"]
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


# ---------------------------------------------------------------------------- rendering


def _ranks(table: Table) -> pd.DataFrame:
    """1 for the best value (as displayed) of each column (or row), 2 for the second."""
    rank = pd.DataFrame(0, index=table.mean.index, columns=table.mean.columns)
    shown = table.mean.round(table.digits)
    lines = shown.items() if table.best_axis == "column" else shown.T.items()
    for name, values in lines:
        values = values.dropna()
        if len(values) < 2:
            continue
        higher = table.higher_is_better.get(name, True)
        distinct = sorted(values.unique(), reverse=higher)
        for place, target in enumerate(distinct[:2], start=1):
            for label in values.index[values == target]:
                if table.best_axis == "column":
                    rank.loc[label, name] = place
                else:
                    rank.loc[name, label] = place
    return rank


def _number(table: Table, row: str, col: str) -> tuple[str, str] | None:
    mean, std = table.mean.loc[row, col], table.std.loc[row, col]
    if pd.isna(mean):
        return None
    d = table.digits
    mean = round(mean, d) + 0.0  # + 0.0: a value that rounds to zero prints as 0.0, not -0.0
    return f"{mean:.{d}f}", ("" if pd.isna(std) else f"{std:.{d}f}")


def _arrow(table: Table, col: str, fmt: str) -> str:
    if table.best_axis != "column":
        return ""
    up = table.higher_is_better.get(col, True)
    if fmt == "latex":
        return r" $\uparrow$" if up else r" $\downarrow$"
    return " ↑" if up else " ↓"


def legend(table: Table, fmt: str) -> list[str]:
    """The lines explaining a table: what the numbers are, highlighting, marks, notes."""
    esc = {"md": str, "html": html.escape, "latex": _latex_escape}[fmt]
    latex = fmt == "latex"
    seeds = table.seeds.to_numpy(dtype=float)
    seeds = seeds[np.isfinite(seeds)]
    span = "" if not len(seeds) else (f"{int(seeds.max())}" if seeds.min() == seeds.max()
                                      else f"{int(seeds.min())}-{int(seeds.max())}")
    bold, second = {"md": ("**bold**", "_italic_"), "html": ("<b>bold</b>", "<u>underlined</u>"),
                    "latex": (r"\textbf{bold}", r"\underline{underlined}")}[fmt]
    where = "per column" if table.best_axis == "column" else "per row"
    pm = r"$\pm$" if latex else "±"
    lines = [f"Mean {pm} std over {span} seed(s) (sample std; none for a single seed). "
             f"{bold}: best {where}, {second}: second."]
    if table.tested:
        win, loss = MARK_TEXT[fmt]["win"], MARK_TEXT[fmt]["loss"]
        if latex:
            win, loss = f"${win}$", f"${loss}$"
        if len(seeds) and seeds.max() > 1:
            test = "paired two-level bootstrap over seeds and test samples"
        else:
            test = ("paired bootstrap over test samples; one seed, so the variation "
                    "between training seeds is not accounted for")
        lines.append(f"{win} / {loss}: significantly better / worse than "
                     f"{esc(str(table.against))} ({test}, {st.B_DEFAULT} resamples, "
                     f"p {esc('<')} {ALPHA}).")
    lines += [f"Note: {esc(n)}" for n in table.notes]
    return lines


LATEX_SPECIAL = {"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "{": r"\{", "}": r"\}",
                 "$": r"\$", "\\": r"\textbackslash{}", "~": r"\textasciitilde{}",
                 "^": r"\^{}", "±": r"$\pm$", "<": r"$<$", ">": r"$>$", "↑": r"$\uparrow$",
                 "↓": r"$\downarrow$"}


def _latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_markdown_table(table: Table) -> str:
    if table.mean.empty:
        return "(no results)"
    rank = _ranks(table)
    header = [table.row_header, *(f"{c}{_arrow(table, c, 'md')}" for c in table.columns)]
    lines = [f"**{table.title}**", "", "| " + " | ".join(header) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for row in table.rows:
        cells = []
        for col in table.columns:
            number = _number(table, row, col)
            if number is None:
                cells.append("–")
                continue
            text = f"{number[0]} ± {number[1]}" if number[1] else number[0]
            text = {1: f"**{text}**", 2: f"_{text}_"}.get(rank.loc[row, col], text)
            cells.append(text + MARK_TEXT["md"].get(table.mark.loc[row, col], ""))
        lines.append("| " + " | ".join([row, *cells]) + " |")
    return "\n".join([*lines, "", *legend(table, "md")])


def to_latex(table: Table, label: str = "tab:results") -> str:
    """A booktabs table (needs \\usepackage{booktabs,amssymb,graphicx}); values as
    $a \\pm b$. Wide tables span both columns of a two-column page (table*) and are scaled
    down to the line width when still wider (never up)."""
    rank = _ranks(table)
    ncols = len(table.columns)
    env = "table*" if ncols > 6 else "table"
    lines = [r"% needs \usepackage{booktabs}, \usepackage{amssymb} and \usepackage{graphicx}",
             rf"\begin{{{env}}}[t]", r"\centering", r"\small" if ncols <= 6 else r"\scriptsize",
             rf"\caption{{{_latex_escape(table.title)}}}", rf"\label{{{label}}}",
             r"\sbox0{%", rf"\begin{{tabular}}{{l{'c' * ncols}}}", r"\toprule",
             " & ".join([_latex_escape(table.row_header.capitalize()),
                         *(_latex_escape(c) + _arrow(table, c, "latex")
                           for c in table.columns)]) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = []
        for col in table.columns:
            number = _number(table, row, col)
            if number is None:
                cells.append("--")
                continue
            body = rf"{number[0]} \pm {number[1]}" if number[1] else number[0]
            place = rank.loc[row, col]
            mark = MARK_TEXT["latex"].get(table.mark.loc[row, col], "")
            if place == 1:
                cells.append(rf"$\mathbf{{{body}}}{mark}$")
            elif place == 2:
                cells.append(rf"\underline{{${body}$}}" + (f"${mark}$" if mark else ""))
            else:
                cells.append(f"${body}{mark}$")
        lines.append(" & ".join([_latex_escape(row), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}%",
              r"\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi",
              r"\par\smallskip",
              r"\begin{minipage}{\linewidth}\footnotesize",
              " \\\\\n".join(legend(table, "latex")),
              r"\end{minipage}", rf"\end{{{env}}}"]
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    """Wide CSV in display units: per column its mean, `<col> std` and `<col> p`."""
    out = pd.DataFrame(index=table.mean.index)
    out.index.name = table.row_header
    for col in table.columns:
        out[col] = table.mean[col]
        out[f"{col} std"] = table.std[col]
        if table.p[col].notna().any():
            out[f"{col} p vs {table.against}"] = table.p[col]
    buffer = io.StringIO()
    out.to_csv(buffer)
    return buffer.getvalue()


def to_html(table: Table) -> str:
    rank = _ranks(table)
    esc = html.escape
    head = "".join(f"<th>{esc(c + _arrow(table, c, 'html'))}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for col in table.columns:
            number = _number(table, row, col)
            if number is None:
                cells.append("<td>–</td>")
                continue
            text = f"{number[0]} ± {number[1]}" if number[1] else number[0]
            text = {1: f"<b>{text}</b>", 2: f"<u>{text}</u>"}.get(rank.loc[row, col], text)
            mark = MARK_TEXT["html"].get(table.mark.loc[row, col], "")
            p = table.p.loc[row, col]
            title = f' title="p = {p:.3g} vs {esc(str(table.against))}"' if pd.notna(p) else ""
            cells.append(f"<td{title}>{text}{mark}</td>")
        body.append(f"<tr><th>{esc(row)}</th>{''.join(cells)}</tr>")
    notes = "".join(f"<p class='legend'>{line}</p>" for line in legend(table, "html"))
    return (f"<table><caption>{esc(table.title)}</caption><thead><tr>"
            f"<th>{esc(table.row_header)}</th>{head}</tr></thead><tbody>{''.join(body)}"
            f"</tbody></table>{notes}")


def to_json(table: Table) -> str:
    """Every cell as {row, column, mean, std, seeds, p, mark} in display units (p: the
    paired test against `against`, null where none was made), with the title and legend."""
    import json

    def number(value):
        return None if pd.isna(value) else float(value)

    cells = [{"row": row, "column": col, "mean": number(table.mean.loc[row, col]),
              "std": number(table.std.loc[row, col]),
              "seeds": None if pd.isna(table.seeds.loc[row, col])
              else int(table.seeds.loc[row, col]),
              "p": number(table.p.loc[row, col]), "mark": table.mark.loc[row, col] or None}
             for row in table.rows for col in table.columns]
    return json.dumps({"title": table.title, "against": table.against,
                       "higher_is_better": table.higher_is_better, "cells": cells,
                       "legend": legend(table, "md")}, indent=1)


def render(table: Table, fmt: str, label: str = "tab:results") -> str:
    if fmt == "json":
        return to_json(table)
    if fmt == "md":
        return to_markdown_table(table)
    if fmt == "latex":
        return to_latex(table, label)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "html":
        return to_html(table)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
