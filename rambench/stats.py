"""Uncertainty and significance from per-sample correctness.

* `bootstrap_ci`: percentile 95 % CI of an accuracy (or of a weighted mean of cell
  accuracies) by resampling test samples.
* `bootstrap`: any summary metric (a `rambench.metrics.MetricSpec`) of a method, or its
  difference to another method on the same cells, per scope group, resampling the same
  test samples for both (the methods saw identical inputs: cells of one seed share their
  corrupted data), with a CI and a two-sided p-value; the statistic is the spec's own, so
  the value a table prints and the value its test is about are one computation.
  `paired_bootstrap`: the same for one group.
* `wilcoxon`: Wilcoxon signed-rank test over (seed, cell) pairs of accuracies, with the
  matched-pairs rank-biserial correlation as effect size.

A statistic over several seeds is the mean over seeds of the per-seed statistic, as in
`rambench.metrics`. Its bootstrap is two-level (a hierarchical bootstrap, Saravanan et al.,
"Application of the hierarchical bootstrap to multi-level data in neuroscience", NBDC 2020):
each replicate draws the seeds (the (dataset, seed) test sets) with replacement and, within
each drawn seed, its test samples with replacement. CIs and p-values therefore include the
seed-to-seed variation of training as well as test-sample noise. With one seed only the
second level remains: the CI then reflects test-sample noise for that one trained model,
and tables say so. With few seeds the first level is coarse (two seeds give three distinct
means): a difference that changes sign between seeds is not called significant, one that
keeps its sign may be; report more seeds for a firm claim. Every function starts from
``np.random.default_rng(seed)`` (seed 0 by default), so results are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from rambench.metrics import CELL, UNIT
from rambench.metrics.frame import tidy_rows
from rambench.metrics.specs import MetricSpec, MissingReferenceError, with_corruption_id
from rambench.schema import AXES, Record

B_DEFAULT = 1000


CONDITION_COLUMNS = ["condition", "condition_kind", *AXES, "modality_kind",
                     "corruption_family"]


def correctness(records: Iterable[Record]) -> pd.DataFrame:
    """One row per record: dataset, method (label), seed, the condition columns, n, key and
    ``correct`` (a bool array of length n)."""
    rows = []
    for r in records:
        tidy = tidy_rows(r)[0]
        rows.append({**{c: tidy[c] for c in [*UNIT, *CONDITION_COLUMNS]}, "n": r.n,
                     "key": r.key, "correct": r.correct})
    frame = pd.DataFrame(rows, columns=[*UNIT, *CONDITION_COLUMNS, "n", "key", "correct"])
    frame["severity"] = frame["severity"].astype("Int64")
    return frame


def resample_counts(n: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """(b, n) counts: how often each of n samples is drawn in each of b bootstrap resamples."""
    draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


@lru_cache(maxsize=16)
def _counts(ns: tuple[int, ...], b: int, seed: int) -> tuple[np.ndarray, ...]:
    """Resample counts for test sets of sizes `ns`, drawn in order from default_rng(seed).

    Cached (read-only), so the many comparisons of one table share the same resamples."""
    rng = np.random.default_rng(seed)
    out = tuple(resample_counts(n, b, rng) for n in ns)
    for counts in out:
        counts.flags.writeable = False
    return out


def over_seeds(points: list[float], replicates: list[np.ndarray], seed: int = 0
               ) -> tuple[float, np.ndarray]:
    """The mean over test sets (seeds) of a per-set statistic, and its (b,) replicates under
    the two-level bootstrap: replicate j is the mean, over S sets drawn with replacement,
    of their j-th test-sample replicate. One set: its own replicates."""
    reps = np.stack([np.asarray(r, dtype=np.float64) for r in replicates])  # (S, b)
    n_sets, b = reps.shape
    value = float(np.mean(points))
    if n_sets == 1:
        return value, reps[0]
    draws = np.random.default_rng([seed, n_sets]).integers(0, n_sets, size=(b, n_sets))
    return value, reps[draws, np.arange(b)[:, None]].mean(axis=1)


def format_p(p: float, b: int | None = B_DEFAULT) -> str:
    """A p-value for display: '< 0.001' at the floor of a bootstrap of b resamples (its
    smallest possible p, 1 / (b + 1), says only that p < 1/b), 3 significant digits
    otherwise, '-' when undefined. `b=None`: an exact test, no floor."""
    if p is None or not np.isfinite(p):
        return "-"
    if b is not None and p <= 1 / (b + 1) + 1e-12:
        return f"< {1 / b:g}"
    return f"{p:.3g}"


def _percentile_ci(replicates: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(replicates, [alpha, 1 - alpha])
    return float(lo), float(hi)


@dataclass
class Estimate:
    value: float
    low: float
    high: float


def bootstrap_ci(correct: np.ndarray, weights: np.ndarray | None = None, b: int = B_DEFAULT,
                 level: float = 0.95, seed: int = 0) -> Estimate:
    """Accuracy with a percentile bootstrap CI over test samples.

    `correct`: (n,) or (cells, n) booleans for one test set; the statistic is the weighted
    mean over cells (`weights`, default equal) of each cell's accuracy.
    """
    correct = np.atleast_2d(correct).astype(np.float64)
    cells, n = correct.shape
    w = np.full(cells, 1 / cells) if weights is None else np.asarray(weights, np.float64)
    counts = _counts((n,), b, seed)[0]
    stat = np.vstack([correct.mean(axis=1)[None, :], counts @ correct.T / n]) @ w
    return Estimate(float(stat[0]), *_percentile_ci(stat[1:], level))


@dataclass
class Paired:
    """Difference (method - other) of a statistic with its CI and two-sided p-value."""

    diff: float
    low: float
    high: float
    p: float
    cells: int  # matched (seed, cell) pairs
    seeds: int


def _p_value(point: float, reps: np.ndarray) -> float:
    """Two-sided bootstrap p-value of H0: no difference, from the null-centred replicates:
    (1 + #{|r - point| >= |point|}) / (b + 1)."""
    reps = reps[np.isfinite(reps)]
    if not np.isfinite(point) or len(reps) == 0:
        return float("nan")
    return float((1 + np.sum(np.abs(reps - point) >= abs(point) - 1e-12)) / (len(reps) + 1))


Select = Callable[[pd.DataFrame], pd.Series]
RESULT = ["value", "low", "high", "p", "cells", "seeds"]


def _scores(cells: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    """(1 + b, cells) accuracies of a test set's cells: row 0 on the data itself, the others
    on the b resamples `counts` (b, n)."""
    correct = np.stack(cells["correct"].to_list()).astype(np.float64)  # (cells, n)
    n = correct.shape[1]
    return np.vstack([correct.mean(axis=1)[None, :], counts @ correct.T / n])


def bootstrap(spec: MetricSpec, corr: pd.DataFrame, method: str, other: str | None = None,
              scope: Sequence[str] = (), select: Select | None = None,
              reference: str | None = None, b: int = B_DEFAULT, level: float = 0.95,
              seed: int = 0) -> pd.DataFrame:
    """The spec's statistic for `method` (or its difference to `other`), per scope group,
    with a two-level bootstrap CI and the two-sided p-value of no difference.

    Per (dataset, seed) test set, the per-cell accuracies of every method are resampled
    with the same test samples (the methods saw identical inputs), the spec's statistic
    is evaluated on each resample, and the test sets are combined by `over_seeds`. A paired
    comparison uses the cells both methods have; a spec with a reference reads the
    reference's cells on the same resamples (so the noise of a ratio's denominator is
    included). Columns: the scope columns, value, low, high, p, cells, seeds."""
    frame = with_corruption_id(spec.cells_of(corr, select))
    key = ["dataset", "seed", *CELL]
    mine = frame[frame["method"] == method]
    if other is not None:
        mine = mine.merge(frame[frame["method"] == other][key], on=key)
    scope = list(scope)
    if mine.empty:
        return pd.DataFrame(columns=[*scope, *RESULT])
    by_method = {m: part.set_index(key) for m, part in frame.groupby("method")
                 if m in (other, reference)}
    sets = list(mine.groupby(["dataset", "seed"], sort=True))
    all_counts = _counts(tuple(int(part["n"].iloc[0]) for _, part in sets), b, seed)
    per_group: dict[tuple, dict] = {}
    for ((dataset, test_seed), cells), counts in zip(sets, all_counts, strict=True):
        cells = cells.reset_index(drop=True)
        index = pd.MultiIndex.from_frame(cells[key])
        mats = {"a": _scores(cells, counts)}
        for name, label in (("o", other), ("r", reference if spec.needs_reference else None)):
            if label is None:
                continue
            rows = by_method.get(label)
            found = rows.reindex(index) if rows is not None else None
            if found is None or found["correct"].isna().any():
                if name == "r":
                    raise MissingReferenceError(
                        f"missing reference cells: method {reference!r}, dataset {dataset!r}, "
                        f"seed {test_seed} (needed to compare {method!r} on {spec.label})")
            mats[name] = _scores(found, counts)
        for group, idx in spec.groups(cells, scope):
            part = cells.iloc[idx]
            ref = mats["r"][:, idx] if "r" in mats else None
            value = spec.statistic(part, mats["a"][:, idx], ref)
            if "o" in mats:
                value = value - spec.statistic(part, mats["o"][:, idx], ref)
            found = per_group.setdefault(group, {"points": [], "reps": [], "cells": 0,
                                                 "seeds": set()})
            found["points"].append(value[0])
            found["reps"].append(value[1:])
            found["cells"] += len(idx)
            found["seeds"].add(test_seed)
    out = []
    for group, found in per_group.items():
        value, rep = over_seeds(found["points"], found["reps"], seed)
        out.append((*group, value, *_percentile_ci(rep, level), _p_value(value, rep),
                    found["cells"], len(found["seeds"])))
    return pd.DataFrame(out, columns=[*scope, *RESULT])


def paired_bootstrap(corr: pd.DataFrame, method: str, other: str, spec: MetricSpec,
                     select: Select | None = None, reference: str | None = None,
                     b: int = B_DEFAULT, level: float = 0.95, seed: int = 0) -> Paired:
    """Paired bootstrap of spec(method) - spec(other) over the cells `select` keeps (see
    `bootstrap`). NaNs with cells=0 when the two methods share no cell."""
    found = bootstrap(spec, corr, method, other, (), select, reference, b, level, seed)
    if found.empty:
        return Paired(np.nan, np.nan, np.nan, np.nan, 0, 0)
    r = found.iloc[0]
    return Paired(r["value"], r["low"], r["high"], r["p"], int(r["cells"]), int(r["seeds"]))


@dataclass
class Wilcoxon:
    statistic: float
    p: float
    rank_biserial: float  # in [-1, 1]; > 0: the method is better more often / by more
    pairs: int  # pairs used (zero differences are dropped)


def wilcoxon(a: np.ndarray, b: np.ndarray) -> Wilcoxon:
    """Wilcoxon signed-rank test of paired values a vs b (scipy.stats.wilcoxon, zero
    differences dropped) with the matched-pairs rank-biserial correlation
    r = (R+ - R-) / (R+ + R-) over the ranks of the non-zero |a - b|."""
    from scipy.stats import rankdata
    from scipy.stats import wilcoxon as scipy_wilcoxon

    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[np.isfinite(d)]
    nonzero = d[d != 0]
    if len(nonzero) == 0:
        return Wilcoxon(float("nan"), 1.0, 0.0, 0)
    ranks = rankdata(np.abs(nonzero))
    r_plus, r_minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    result = scipy_wilcoxon(nonzero)
    return Wilcoxon(float(result.statistic), float(result.pvalue),
                    float((r_plus - r_minus) / (r_plus + r_minus)), len(nonzero))


def wilcoxon_cells(tidy: pd.DataFrame, method: str, other: str, spec: MetricSpec,
                   select: Select | None = None, metric: str = "accuracy") -> Wilcoxon:
    """`wilcoxon` over every (seed, cell) both methods have among the cells `spec` reads (and
    `select` keeps), on the tidy scores."""
    from rambench.metrics import scores

    rows = spec.cells_of(scores(tidy, metric), select)
    key = ["dataset", "seed", *CELL]
    both = rows[rows["method"] == method][[*key, "score"]].merge(
        rows[rows["method"] == other][[*key, "score"]], on=key, suffixes=("_a", "_b"))
    return wilcoxon(both["score_a"].to_numpy(), both["score_b"].to_numpy())
