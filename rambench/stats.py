"""Uncertainty and significance from per-sample correctness.

* `bootstrap_ci`: percentile 95 % CI of an accuracy (or of a weighted mean of cell
  accuracies) by resampling test samples.
* `paired_bootstrap`: a method's accuracy minus another's on the same cells, resampling the
  same test samples for both (the methods saw identical inputs: cells of one seed share
  their corrupted data), with a CI and a two-sided p-value.
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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from rambench.metrics import CELL, CORRUPTION, UNIT, mpc_weights
from rambench.schema import AXES, Record

B_DEFAULT = 1000


CONDITION_COLUMNS = ["condition", "condition_kind", *AXES, "modality_kind",
                     "corruption_family"]


def correctness(records: Iterable[Record]) -> pd.DataFrame:
    """One row per record: dataset, method (label), seed, the condition columns, n, key and
    ``correct`` (a bool array of length n)."""
    rows = []
    for r in records:
        tidy = r.tidy_rows()[0]
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
    value, reps = _linear_replicates([np.atleast_2d(correct)],
                                     [weights] if weights is not None else None, b, seed)
    return Estimate(value, *_percentile_ci(reps, level))


def _linear_replicates(sets: list[np.ndarray], weights: list[np.ndarray] | None, b: int,
                       seed: int) -> tuple[float, np.ndarray]:
    """Mean over test sets of a weighted mean of cell accuracies, and its b replicates.

    Each set is (cells, n) values per sample (booleans, or differences of booleans); the
    statistic is linear in the per-sample values, so it is resampled through one (n,)
    vector of weighted per-sample contributions: fast for many cells.
    """
    points, reps = [], []
    counts = _counts(tuple(np.shape(v)[1] for v in sets), b, seed)
    for i, values in enumerate(sets):
        values = np.asarray(values, dtype=np.float64)
        cells, n = values.shape
        w = np.full(cells, 1 / cells) if weights is None else np.asarray(weights[i], float)
        per_sample = w @ values  # (n,)
        points.append(per_sample.mean())
        reps.append(counts[i] @ per_sample / n)
    return over_seeds(points, reps, seed)


@dataclass
class Paired:
    """Difference (method - other) in accuracy with its CI and two-sided p-value."""

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


def matched(corr: pd.DataFrame, method: str, other: str,
            select: Callable[[pd.DataFrame], pd.Series] | None = None) -> pd.DataFrame:
    """Cells both methods have (on the same dataset and seed), with columns correct_a/_b."""
    if select is not None:
        corr = corr[select(corr)]
    key = ["dataset", "seed", *CELL]
    a = corr[corr["method"] == method][[*key, "n", *CONDITION_COLUMNS[1:], "correct"]]
    b = corr[corr["method"] == other][[*key, "correct"]]
    both = a.merge(b, on=key, suffixes=("_a", "_b"))
    return both.sort_values(key, kind="stable").reset_index(drop=True)


Weighting = str | Callable[[pd.DataFrame], np.ndarray]


def cell_weights(cells: pd.DataFrame, weighting: Weighting) -> np.ndarray:
    """'mpc' (`mpc_weights`), 'equal', or a function of the cells of one test set."""
    if callable(weighting):
        return np.asarray(weighting(cells), dtype=np.float64)
    if weighting == "mpc":
        return mpc_weights(cells)
    if weighting == "equal":
        return np.full(len(cells), 1 / len(cells))
    raise ValueError(f"weighting must be 'mpc', 'equal' or a function; got {weighting!r}")


def _grouped(frame: pd.DataFrame, values: list[np.ndarray], by: list[str],
             weighting: Weighting, b: int, level: float, seed: int) -> pd.DataFrame:
    """The engine behind every bootstrap here: for each group of rows sharing `by`, the
    mean over (dataset, seed) test sets of a weighted mean over the group's cells of the
    per-sample `values` (booleans, or differences of booleans), with b replicates drawn
    by resampling each test set's samples (one shared draw per test set, so that groups
    and methods are resampled alike). The statistic is linear in the samples, so each
    test set needs a single (b, n) @ (n, cells) product for all groups.

    Returns by..., value, low, high, p (of value = 0), cells, seeds."""
    frame = frame.reset_index(drop=True).copy()
    frame["_set"] = frame.groupby(["dataset", "seed", "n"], sort=True).ngroup()
    frame["_group"] = frame.groupby(by, sort=True).ngroup() if by else 0
    sets = frame.drop_duplicates("_set").sort_values("_set")
    counts = _counts(tuple(int(n) for n in sets["n"]), b, seed)
    point = np.array([v.mean() for v in values])
    replicates, position = [], np.empty(len(frame), dtype=int)
    for s, rows in frame.groupby("_set", sort=True).indices.items():
        n = int(frame["n"].iloc[rows[0]])
        matrix = np.stack([np.asarray(values[i], dtype=np.float64) for i in rows])  # (k, n)
        replicates.append(counts[s] @ matrix.T / n)  # (b, k)
        position[rows] = np.arange(len(rows))
    if weighting in ("mpc", "equal"):
        within = ["_group", "_set"]
        if weighting == "mpc":
            weights = mpc_weights(frame, within)
        else:
            weights = 1.0 / frame.groupby(within)["n"].transform("size").to_numpy(float)
    else:
        weights = np.empty(len(frame))
        for rows in frame.groupby(["_group", "_set"]).indices.values():
            weights[rows] = cell_weights(frame.iloc[rows], weighting)
    out = []
    set_of, seed_of = frame["_set"].to_numpy(), frame["seed"].to_numpy()
    keys = frame[by].to_numpy(dtype=object) if by else None
    for rows in frame.groupby("_group", sort=True).indices.values():
        points, reps = [], []
        for s in np.unique(set_of[rows]):
            idx = rows[set_of[rows] == s]
            w = weights[idx]
            points.append(w @ point[idx])
            reps.append(replicates[s][:, position[idx]] @ w)
        value, rep = over_seeds(points, reps, seed)
        key = list(keys[rows[0]]) if by else []
        out.append((*key, value, *_percentile_ci(rep, level), _p_value(value, rep), len(rows),
                    len(np.unique(seed_of[rows]))))
    return pd.DataFrame(out, columns=[*by, "value", "low", "high", "p", "cells", "seeds"])


def _differences(both: pd.DataFrame) -> list[np.ndarray]:
    return [a.astype(np.int8) - c.astype(np.int8)
            for a, c in zip(both["correct_a"], both["correct_b"], strict=True)]


def paired_bootstrap(corr: pd.DataFrame, method: str, other: str,
                     select: Callable[[pd.DataFrame], pd.Series] | None = None,
                     weighting: Weighting = "mpc", b: int = B_DEFAULT, level: float = 0.95,
                     seed: int = 0) -> Paired:
    """Paired bootstrap of accuracy(method) - accuracy(other) over the cells `select` keeps.

    Per (dataset, seed) the statistic is the mean over cells (``weighting='mpc'``: over
    corruptions of the mean over severities; 'equal': every cell alike) of the accuracy
    difference, on the same resampled test samples for both methods; then the mean over
    seeds. `weighting` may also be a function giving the weights of one test set's cells
    (e.g. trapezoid weights, to test an area under a curve). Returns NaNs with cells=0
    when the two methods share no cell.
    """
    both = matched(corr, method, other, select)
    if both.empty:
        return Paired(np.nan, np.nan, np.nan, np.nan, 0, 0)
    r = _grouped(both, _differences(both), [], weighting, b, level, seed).iloc[0]
    return Paired(r["value"], r["low"], r["high"], r["p"], int(r["cells"]), int(r["seeds"]))


def paired_bootstrap_by(corr: pd.DataFrame, method: str, other: str, by: list[str],
                        select: Callable[[pd.DataFrame], pd.Series] | None = None,
                        weighting: Weighting = "mpc", b: int = B_DEFAULT, level: float = 0.95,
                        seed: int = 0) -> pd.DataFrame:
    """`paired_bootstrap` for each group of cells sharing the `by` columns (e.g. each
    corruption, or each cell), matching the methods once: fast for many groups.

    Columns: the `by` columns, diff, low, high, p, cells, seeds."""
    both = matched(corr, method, other, select)
    if both.empty:
        return pd.DataFrame(columns=[*by, "diff", "low", "high", "p", "cells", "seeds"])
    out = _grouped(both, _differences(both), list(by), weighting, b, level, seed)
    return out.rename(columns={"value": "diff"})


def paired_bootstrap_mce(corr: pd.DataFrame, method: str, other: str, reference: str,
                         select: Callable[[pd.DataFrame], pd.Series] | None = None,
                         b: int = B_DEFAULT, level: float = 0.95, seed: int = 0) -> Paired:
    """Paired bootstrap of mCE(method) - mCE(other), both normalised by `reference`.

    The reference's errors are resampled with the same samples, so the ratio's noise is
    included. Corruptions with a zero reference error sum in a resample are left out of
    that resample's mean.
    """
    def select_corr(frame: pd.DataFrame) -> pd.Series:
        keep = frame["condition_kind"] == "corruption"
        return keep & select(frame) if select is not None else keep

    both = matched(corr, method, other, select_corr)
    ref = corr[corr["method"] == reference][["dataset", "seed", *CELL, "correct"]]
    both = both.merge(ref.rename(columns={"correct": "correct_r"}),
                      on=["dataset", "seed", *CELL])
    if both.empty:
        return Paired(np.nan, np.nan, np.nan, np.nan, 0, 0)
    groups = [g for _, g in both.groupby(["dataset", "seed", "n"], sort=True)]
    all_counts = _counts(tuple(int(g["n"].iloc[0]) for g in groups), b, seed)
    points, reps = [], []
    for group, resampled in zip(groups, all_counts, strict=True):
        n = int(group["n"].iloc[0])
        codes = group.groupby(CORRUPTION, sort=False).ngroup().to_numpy()
        member = np.zeros((len(group), codes.max() + 1))
        member[np.arange(len(group)), codes] = 1.0  # cell -> corruption indicator
        errors = {k: 1.0 - np.stack(group[f"correct_{k}"].to_list()).astype(np.float64)
                  for k in ("a", "b", "r")}
        counts = np.vstack([np.ones((1, n)), resampled])  # row 0: the data itself
        sums = {k: counts @ (e.T @ member) / n for k, e in errors.items()}  # (1+b, corr)
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = sums["r"] > 0
            ce_a = np.where(ok, sums["a"] / np.where(ok, sums["r"], 1), np.nan)
            ce_b = np.where(ok, sums["b"] / np.where(ok, sums["r"], 1), np.nan)
            diff = np.nanmean(ce_a, axis=1) - np.nanmean(ce_b, axis=1)
        points.append(diff[0])
        reps.append(diff[1:])
    point, rep = over_seeds(points, reps, seed)
    low, high = _percentile_ci(rep, level)
    return Paired(point, low, high, _p_value(point, rep), len(both), both["seed"].nunique())


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


def wilcoxon_cells(tidy: pd.DataFrame, method: str, other: str,
                   select: Callable[[pd.DataFrame], pd.Series] | None = None,
                   metric: str = "accuracy") -> Wilcoxon:
    """`wilcoxon` over every (seed, cell) both methods have, on the tidy scores."""
    from rambench.metrics import scores

    rows = scores(tidy, metric)
    if select is not None:
        rows = rows[select(rows)]
    key = ["dataset", "seed", *CELL]
    both = rows[rows["method"] == method][[*key, "score"]].merge(
        rows[rows["method"] == other][[*key, "score"]], on=key, suffixes=("_a", "_b"))
    return wilcoxon(both["score_a"].to_numpy(), both["score_b"].to_numpy())


def bootstrap_cells_ci(corr: pd.DataFrame, method: str,
                       select: Callable[[pd.DataFrame], pd.Series] | None = None,
                       weighting: Weighting = "mpc", b: int = B_DEFAULT,
                       level: float = 0.95, seed: int = 0) -> Estimate:
    """Accuracy of `method` over the selected cells (weighted as in `paired_bootstrap`),
    mean over seeds, with a bootstrap CI over test samples."""
    cells = corr[corr["method"] == method]
    if select is not None:
        cells = cells[select(cells)]
    if cells.empty:
        return Estimate(np.nan, np.nan, np.nan)
    r = _grouped(cells, list(cells["correct"]), [], weighting, b, level, seed).iloc[0]
    return Estimate(r["value"], r["low"], r["high"])


def bootstrap_cells_ci_by(corr: pd.DataFrame, by: list[str],
                          select: Callable[[pd.DataFrame], pd.Series] | None = None,
                          weighting: Weighting = "mpc", b: int = B_DEFAULT,
                          level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """`bootstrap_cells_ci` for every group of `by` (e.g. method and family) at once:
    by..., value, low, high, p, cells, seeds."""
    cells = corr[select(corr)] if select is not None else corr
    if cells.empty:
        return pd.DataFrame(columns=[*by, "value", "low", "high", "p", "cells", "seeds"])
    return _grouped(cells, list(cells["correct"]), list(by), weighting, b, level, seed)
