"""Significance marks of the tables: which differences from the compared method are real.

A column's test comes from the same metric spec as its values (`rambench.metrics.specs`):
given the per-sample correctness (`rambench.stats.correctness`), each method is compared
with `against` (default raml) on the same cells by a paired two-level bootstrap of that
spec's statistic (`rambench.stats.bootstrap`) and marked ▲ / ▼ when p < `ALPHA`.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from rambench import metrics
from rambench import stats as st

ALPHA = 0.05

Test = Callable[[str, str, str], "st.Paired | None"]  # (dataset, method, against)


def mark_for(p: float, diff: float, higher_is_better: bool = True,
             alpha: float = ALPHA) -> str:
    """"win" or "loss" where the difference is significant (p < alpha, not zero), else ""."""
    if p < alpha and diff != 0:
        return "win" if (diff > 0) == higher_is_better else "loss"
    return ""


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


def cellwise_tests(corr: pd.DataFrame, method: str, against: str) -> pd.DataFrame:
    """The paired bootstrap of `method` against `against` on every cell alone (accuracy):
    one row per (dataset, cell) with diff, low, high and p."""
    return st.bootstrap(metrics.specs.CELLWISE, corr, method, against,
                        ["dataset", *metrics.CELL]).rename(columns={"value": "diff"})
