"""The table model: a `Table` (mean ± std over seeds, significance marks) of `Column`s.

`columns_table` builds one from its columns (each one metric's per-seed values and its
paired test).

The views (`rambench.report.views`) choose the columns; the tests come from
`rambench.report.significance`; `Table.render` writes it out (`rambench.report.render`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rambench import metrics
from rambench.report.render import render
from rambench.report.significance import ALPHA, Test, mark_for


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


def row_order(methods: list[str], reference: str, against: str | None) -> list[str]:
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
        names = row_order(list(units[units["dataset"] == dataset]["method"]), reference,
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
            if marked := mark_for(result.p, result.diff, col.higher_is_better, alpha):
                mark.loc[label, col.name] = marked
    return Table(title, "method", frames["mean"], frames["std"], frames["seeds"], frames["p"],
                 mark, {c.name: c.higher_is_better for c in columns}, against,
                 notes=list(dict.fromkeys(all_notes)), spec=columns)

