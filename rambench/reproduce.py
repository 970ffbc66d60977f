"""What `rambench reproduce` prints: a result bundle's values against a re-run's.

`compare`: the bundle's values against a re-run's, per
cell and per summary value (each method's columns of the main table), each with its
**noise band**, ±2σ where σ is the larger of

* the spread over seeds: the sample standard deviation of the value over the study's seeds
  (per seed: a cell's accuracy, or a column's per-seed value), the smaller of the bundle's
  and the re-run's when both have two seeds or more (one altered stored value widens the
  bundle's spread, never the re-run's); none with one seed;
* the binomial standard error of an accuracy on the test set, sqrt(p(1 - p) / n), p the
  stored accuracy and n the test samples; for a column that is not an accuracy (mCE, a
  ratio of errors), the same relative to the error: value x sqrt(p(1 - p) / n) / (1 - p),
  p the method's mean stored accuracy over its cells.

So with one seed the band is the binomial one, and with several it never falls below it.
A re-run on a debug subset of another size (`--limit`) sees other data: its values are
listed, not judged.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rambench.results import ResultSet

BAND_RULE = ("noise band: ±2σ, σ the larger of the spread over seeds (the smaller of the "
             "bundle's and the re-run's) and the binomial standard error sqrt(p(1-p)/n)")


@dataclass
class Row:
    """One value compared: a cell's accuracy or a method's summary column (display units)."""

    method: str
    name: str  # the cell's condition, or the summary column
    seed: int | None  # None for a summary value
    stored: float
    new: float
    band: float
    within: bool | None  # None: not judged (other data: --limit)

    @property
    def diff(self) -> float:
        return self.new - self.stored

    @property
    def label(self) -> str:
        return f"{self.method} seed {self.seed} {self.name}" if self.seed is not None \
            else f"{self.method} {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "diff": self.diff}


@dataclass
class Comparison:
    """A bundle's values against a re-run's (`rambench reproduce`)."""

    bundle: str
    rerun: str
    seeds: list[int]
    comparable: bool
    note: str = ""  # why the values are not judged
    rule: str = BAND_RULE  # how the bands were made
    cells: list[Row] = field(default_factory=list)
    summary: list[Row] = field(default_factory=list)
    run: Any = None  # the re-run's ResultSet

    @property
    def beyond(self) -> list[Row]:
        """The summary values that moved beyond their noise band (or are missing)."""
        return [r for r in self.summary if r.within is False]

    @property
    def cells_beyond(self) -> list[Row]:
        return [r for r in self.cells if r.within is False]

    def lines(self) -> list[str]:
        """The comparison for people: two tables and the verdict."""
        def table(rows: list[Row], head: str) -> list[str]:
            out = [f"| {head} | stored | new | diff | band | |",
                   "|" + "---|" * (head.count("|") + 1) + "---:|---:|---:|---:|---|"]
            for r in rows:
                where = " | ".join([r.method, *([str(r.seed)] if r.seed is not None else []),
                                    r.name])
                band = f"±{r.band:.2f}" if r.within is not None else "n/a"
                verdict = {True: "within", False: "BEYOND", None: "not judged"}[r.within]
                out.append(f"| {where} | {r.stored:.2f} | {r.new:.2f} | {r.diff:+.2f} | "
                           f"{band} | {verdict} |")
            return out

        lines = [f"bundle {self.bundle} re-run in {self.rerun} (seeds "
                 f"{', '.join(map(str, self.seeds))})"]
        lines.append(self.note if not self.comparable else self.rule)
        if self.cells:
            lines += ["", "cells (accuracy, %):", ""]
            lines += table(self.cells, "method | seed | condition")
        lines += ["", "summary (the main table's columns, per method):", ""]
        lines += table(self.summary, "method | column")
        lines.append("")
        lines.append(self.verdict())
        return lines

    def verdict(self) -> str:
        if not self.comparable:
            return "values not judged: " + self.note
        if not self.beyond:
            return (f"reproduced: all {len(self.summary)} summary values are within their "
                    f"noise band ({len(self.cells_beyond)} of {len(self.cells)} cells beyond "
                    "theirs)")
        moved = "; ".join(f"{r.label} (stored {r.stored:.2f}, new {r.new:.2f}, band "
                          f"±{r.band:.2f})" for r in self.beyond)
        cells = ", ".join(r.label for r in self.cells_beyond) or "none"
        return (f"not reproduced: {len(self.beyond)} of {len(self.summary)} summary values "
                f"moved beyond their noise band: {moved}; cells beyond theirs: {cells}")

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "rerun": self.rerun, "seeds": self.seeds,
                "comparable": self.comparable, "note": self.note,
                "reproduced": self.comparable and not self.beyond,
                "beyond": [r.label for r in self.beyond],
                "cells_beyond": [r.label for r in self.cells_beyond],
                "cells": [r.to_json() for r in self.cells],
                "summary": [r.to_json() for r in self.summary]}


def _std(values) -> float:
    """Sample standard deviation, NaN below two values."""
    values = [float(v) for v in values]
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _sigma(*spreads: float) -> float:
    """The smaller of the spreads that exist (0 when none does)."""
    known = [s for s in spreads if not math.isnan(s)]
    return min(known) if known else 0.0


def _binomial(p: float, n: float) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else 0.0


def _judge(stored: float, new: float, band: float, comparable: bool) -> bool | None:
    if not comparable:
        return None
    if math.isnan(new) or math.isnan(stored):
        return False
    return abs(new - stored) <= band + 1e-9


def compare(stored: ResultSet, new: ResultSet, seeds: list[int], comparable: bool = True,
            note: str = "", rerun: str = "") -> Comparison:
    """The bundle's values (`stored`, restricted to `seeds`) against a re-run's (`new`),
    each with its noise band (the module docstring's rule); `comparable`: the re-run saw the
    same data (no other `--limit`), else every value is listed and none judged."""
    seeds = sorted(seeds)
    subset = dataclasses.replace(stored, records=[r for r in stored.records
                                                  if r.seed in seeds])
    comparison = Comparison(str(stored.root), rerun or str(new.root), seeds, comparable,
                            note)
    old, now = stored.scores(), new.scores()
    cell = ["method", "condition"]
    spread_old = old.groupby(cell)["score"].apply(_std)
    spread_new = now.groupby(cell)["score"].apply(_std)
    values = {(r.method, r.seed, r.condition): float(r.score) for r in now.itertuples()}
    for r in old[old["seed"].isin(seeds)].itertuples():
        sigma = max(_sigma(spread_old.get((r.method, r.condition), math.nan),
                           spread_new.get((r.method, r.condition), math.nan)),
                    _binomial(r.score, r.n))
        value = values.get((r.method, r.seed, r.condition), math.nan)
        comparison.cells.append(Row(r.method, r.condition, int(r.seed), 100 * r.score,
                                    100 * value, 200 * sigma,
                                    _judge(r.score, value, 2 * sigma, comparable)))
    comparison.cells.sort(key=lambda r: (r.method, r.seed, r.name))
    whole, part, rerun_table = stored.table("main"), subset.table("main"), new.table("main")
    per_seed = {c.name: c for c in whole.spec}
    per_seed_new = {c.name: c for c in rerun_table.spec}
    accuracy = old[old["seed"].isin(seeds)].groupby("method")["score"].mean()
    samples = old.groupby("method")["n"].median()
    for method in part.rows:
        for column in part.columns:
            spec = per_seed[column]
            value = float(part.mean.loc[method, column])
            if math.isnan(value):
                continue
            try:
                fresh = float(rerun_table.mean.loc[method, column])
            except KeyError:
                fresh = math.nan
            spreads = [_std(c.per_seed[c.per_seed["method"] == method]["value"]) * c.scale
                       for c in (spec, per_seed_new.get(column)) if c is not None]
            n = float(samples.get(method, 0))
            if spec.higher_is_better:
                floor = _binomial(value / spec.scale, n) * spec.scale
            else:  # a ratio of errors (mCE): the binomial error relative to the error
                p = float(accuracy.get(method, 1.0))
                floor = value * _binomial(p, n) / (1 - p) if p < 1 else 0.0
            sigma = max(_sigma(*spreads), floor)
            comparison.summary.append(Row(method, column, None, value, fresh, 2 * sigma,
                                          _judge(value, fresh, 2 * sigma, comparable)))
    return comparison


PUBLISHED_RULE = ("band: the range of the published values, widened by two binomial standard "
                  "errors sqrt(p(1-p)/n) of an accuracy on this run's n test samples")


def compare_published(published: dict[str, dict[str, Any]], new: ResultSet, study: str,
                      comparable: bool = True, note: str = "") -> Comparison:
    """A run's main-table values against the values a study file says were published
    (`Study.published`: method -> column -> {values, sources}): `stored` is the middle of
    the published range, the band its half-width plus two binomial standard errors (the
    run's test samples; for a column that is not an accuracy, the range alone)."""
    comparison = Comparison(study, str(new.root), sorted({r.seed for r in new.records}),
                            comparable, note, PUBLISHED_RULE)
    table = new.table("main")
    specs = {c.name: c for c in table.spec}
    samples = new.scores().groupby("method")["n"].median()
    for method, columns in published.items():
        for column, entry in columns.items():
            low, high = min(entry["values"]), max(entry["values"])
            try:
                value = float(table.mean.loc[method, column])
            except KeyError:
                value = math.nan
            middle, spec = (low + high) / 2, specs.get(column)
            sigma = _binomial(middle / spec.scale, float(samples.get(method, 0))) * spec.scale \
                if spec is not None and spec.higher_is_better else 0.0
            band = (high - low) / 2 + 2 * sigma
            comparison.summary.append(Row(method, column, None, middle, value, band,
                                          _judge(middle, value, band, comparable)))
    return comparison
