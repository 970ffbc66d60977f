"""Every robustness summary defined once, as a statistic of one test set.

A *test set* is the cells one method has on one (dataset, seed). A `MetricSpec` declares
a summary's name, label, direction, the condition kinds whose cells enter it, whether it
is normalised by a reference method, and its **statistic**:

    statistic(cells, S, R, notes) -> (rows,) values

`cells` is one row per cell (its condition columns), `S` a (rows, cells) matrix of the
method's per-cell scores and `R` the reference method's on the same cells (None when the
spec needs no reference). For a point estimate S has one row, the stored scores; in a
bootstrap each further row is a resampled test set (`rambench.stats.bootstrap`). Notes on
undefined values (a denominator <= 0, a missing clean cell) are appended to `notes` when it
is a list. The per-seed value (`MetricSpec.per_seed`), its confidence interval and the
paired test against another method all evaluate this one statistic: the arithmetic of
each metric is here and nowhere else.

Two shapes cover every summary:

* **weighted means** of cell scores (clean accuracy, mPC, the missing, AV and mixed groups,
  the severity and missing-rate AUCs): ``S @ w`` with weights from the cells;
* **ratios and differences against a reference** over per-corruption sums of errors
  (CE, mCE, relative mCE, effective robustness) and rPC (mPC over clean accuracy).

A scope (e.g. ``["test_modality"]``) evaluates the statistic per group of cells; for a
spec anchored on the clean cell (rPC, relative mCE, the AUCs, effective robustness) the
clean cell, which belongs to no modality or corruption, joins every group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rambench.schema import CONDITION_KINDS, MISSING_KINDS

if TYPE_CHECKING:
    import pandas as pd

UNIT = ["dataset", "method", "seed"]
CORRUPTION = ["test_modality", "corruption"]
CELL = ["condition"]  # the condition's label identifies a cell within a (dataset, seed)
DEFAULT_REFERENCE = "late_fusion"
# the columns that make a cell's "corruption" for the mPC weighting: a corruption's
# severities share it, every other cell (clean, a dropped modality, a missing rate, an AV
# event's severities) has its own
CORRUPTION_ID = ["condition_kind", "test_modality", "corruption", "missing_rate"]
# Sums of error rates are multiples of 1/n; a denominator below this is a zero that
# floating-point subtraction left behind (e.g. (.2 - .3) + (.4 - .3) = 5.6e-17).
ZERO = 1e-9


class MissingReferenceError(ValueError):
    """A cell of the reference method needed for a normalised metric is not in the results."""


Statistic = Callable[["object", np.ndarray, "np.ndarray | None", "list[str] | None"],
                     np.ndarray]


# ------------------------------------------------------------------------------ weights


def with_corruption_id(cells):
    """`cells` with a ``corruption_id`` column (see CORRUPTION_ID), computed once per frame
    so that the statistics of its subsets need no grouping."""
    cells = cells.copy()
    cells["corruption_id"] = cells.groupby(CORRUPTION_ID, sort=False,
                                           dropna=False).ngroup().to_numpy()
    return cells


def equal_weights(cells, notes: list[str] | None = None) -> np.ndarray:
    """Every cell alike."""
    return np.full(len(cells), 1.0 / len(cells))


def mpc_weights(cells, notes: list[str] | None = None) -> np.ndarray:
    """The mean over corruptions of the mean over each corruption's severities (Hendrycks &
    Dietterich, ICLR 2019); equal weights when every cell is a corruption of its own."""
    _, inverse, counts = np.unique(cells["corruption_id"].to_numpy(), return_inverse=True,
                                   return_counts=True)
    return 1.0 / counts[inverse] / len(counts)


def trapezoid_weights(x: Sequence[float]) -> np.ndarray:
    """Weights w with sum_i w_i y_i = normalised trapezoid area under y(x) (any x order).

    For sorted x: w_0 = (x_1 - x_0) / 2, w_i = (x_{i+1} - x_{i-1}) / 2, w_last =
    (x_last - x_{last-1}) / 2, all divided by the range x_last - x_0; they sum to 1.
    """
    x = np.asarray(x, float)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    if len(xs) < 2 or xs[-1] <= xs[0]:
        return np.full(len(x), np.nan)
    gaps = np.diff(xs)
    w_sorted = (np.concatenate([[0.0], gaps]) + np.concatenate([gaps, [0.0]])) / 2
    w = np.empty(len(x))
    w[order] = w_sorted / (xs[-1] - xs[0])
    return w


def trapezoid_area(x: Sequence[float], y: Sequence[float]) -> float:
    """Area under y(x) by the trapezoid rule divided by the x range (the mean height)."""
    return float(np.dot(trapezoid_weights(x), np.asarray(y, float)))


def _kind(cells) -> np.ndarray:
    return cells["condition_kind"].to_numpy()


def _one_clean(cells, notes: list[str] | None, note: str) -> int | None:
    """The position of the test set's clean cell, or None and `note` added to `notes`."""
    clean = np.flatnonzero(_kind(cells) == "clean")
    if len(clean) == 1:
        return int(clean[0])
    if notes is not None:
        notes.append(note)
    return None


def severity_auc_weights(cells, notes: list[str] | None = None) -> np.ndarray:
    """Weights making a weighted mean of clean + corruption cells the severity AUC: the mean
    over corruptions of each one's trapezoid area under score vs severity (clean = 0)."""
    w = np.zeros(len(cells))
    clean = _one_clean(cells, notes, "no clean result: severity AUC undefined")
    corrupt = np.flatnonzero(_kind(cells) == "corruption")
    ids = cells["corruption_id"].to_numpy()[corrupt]
    if clean is None or not len(corrupt):
        return np.full(len(cells), np.nan)
    severity = cells["severity"].to_numpy(dtype=float)
    groups = np.unique(ids)
    for g in groups:
        members = corrupt[ids == g]
        tw = trapezoid_weights([0.0, *severity[members]])
        w[clean] += tw[0] / len(groups)
        w[members] += tw[1:] / len(groups)
    return w


def missing_auc_weights(cells, notes: list[str] | None = None) -> np.ndarray:
    """Weights making a weighted mean of clean + random-missing cells the area under score vs
    missing rate (clean = rate 0)."""
    if _one_clean(cells, notes, "no clean result: missing-rate AUC undefined") is None:
        return np.full(len(cells), np.nan)
    rate = cells["missing_rate"].to_numpy(dtype=float)
    return trapezoid_weights(np.where(_kind(cells) == "clean", 0.0, rate))


def weighted(weights: Callable) -> Statistic:
    """The statistic S @ w of a weighting."""
    def statistic(cells, s, r=None, notes=None):
        return s @ weights(cells, notes)

    return statistic


# ------------------------------------------------------------ ratios against a reference


def _divide(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """num / den where den > 0 (a rounding residue |den| < ZERO counts as 0), NaN elsewhere;
    also the cleaned denominators."""
    den = np.where(np.abs(den) < ZERO, 0.0, den)
    ok = den > 0
    return np.where(ok, num / np.where(ok, den, 1.0), np.nan), den


def _corruption_sums(cells, values: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(rows, corruptions) sums over each corruption's severities of (rows, corrupt cells)
    values, and the position of one cell of each corruption."""
    ids = cells["corruption_id"].to_numpy()[_kind(cells) == "corruption"]
    groups, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    member = np.zeros((len(ids), len(groups)))
    member[np.arange(len(ids)), inverse] = 1.0
    return values @ member, list(np.flatnonzero(_kind(cells) == "corruption")[first])


def _name(cells, position: int) -> str:
    row = cells.iloc[position]
    return f"{row['test_modality']}/{row['corruption']}"


def corruption_error(relative: bool) -> Statistic:
    """mCE: the mean over corruptions c of CE_c = sum_s E(c, s) / sum_s E_ref(c, s), errors
    E = 1 - score; relative: sum_s (E(c, s) - E_clean) / sum_s (E_ref(c, s) - E_ref,clean)
    (Hendrycks & Dietterich, ICLR 2019). A corruption whose reference denominator is <= 0
    is left out of the mean (for every method alike: the denominator is the reference's),
    with a note; one corruption alone is then undefined."""
    what = "relative CE" if relative else "CE"

    def statistic(cells, s, r, notes=None):
        corrupt = _kind(cells) == "corruption"
        e, e_ref = 1.0 - s[:, corrupt], 1.0 - r[:, corrupt]
        if relative:
            clean = _one_clean(cells, notes, "no clean result for the method")
            if clean is None:
                return np.full(len(s), np.nan)
            e = e - (1.0 - s[:, [clean]])
            e_ref = e_ref - (1.0 - r[:, [clean]])
        num, first = _corruption_sums(cells, e)
        den, _ = _corruption_sums(cells, e_ref)
        ce, den = _divide(num, den)
        bad = den[0] <= 0
        if notes is not None and bad.any():
            prefix = "left out of the mean: " if len(first) > 1 else ""
            notes += [f"{prefix}{what} denominator is {den[0, j]:.4g} <= 0; undefined for "
                      f"{_name(cells, first[j])}" for j in np.flatnonzero(bad)]
        out = np.full(len(s), np.nan)
        defined = np.isfinite(ce)
        counts = defined.sum(axis=1)
        np.divide(np.where(defined, ce, 0.0).sum(axis=1), counts, out=out, where=counts > 0)
        return out

    return statistic


def effective_robustness_statistic(cells, s, r, notes=None) -> np.ndarray:
    """Effective robustness against the reference (after Taori et al., NeurIPS 2020): the mean
    over corruptions of sum_s [(f_s - f_0) - (b_s - b_0)], f / b the method's / reference's
    score at severity s (0 = clean). Positive: the method loses less than the reference."""
    clean = _one_clean(cells, notes, "no clean result for the method")
    if clean is None:
        return np.full(len(s), np.nan)
    corrupt = _kind(cells) == "corruption"
    term = (s[:, corrupt] - s[:, [clean]]) - (r[:, corrupt] - r[:, [clean]])
    sums, _ = _corruption_sums(cells, term)
    return sums.mean(axis=1)


def rpc_statistic(cells, s, r=None, notes=None) -> np.ndarray:
    """rPC = mPC / clean score (Michaelis et al., 2019)."""
    clean = _one_clean(cells, notes, "no clean result: rPC undefined")
    if clean is None:
        return np.full(len(s), np.nan)
    corrupt = _kind(cells) == "corruption"
    value, den = _divide(s[:, corrupt] @ mpc_weights(cells[corrupt]), s[:, clean])
    if notes is not None and den[0] <= 0:
        notes.append(f"rPC (clean) denominator is {den[0]:.4g} <= 0; undefined")
    return value


# ------------------------------------------------------------------------------ the spec


@dataclass(frozen=True)
class MetricSpec:
    """One summary metric (see the module docstring)."""

    key: str  # the name commands take (--metric)
    label: str  # the name tables print
    kinds: tuple[str, ...]  # condition kinds whose cells enter it
    statistic: Statistic
    higher_is_better: bool = True
    needs_reference: bool = False
    anchor_clean: bool = False  # the clean cell joins every scope group

    def groups(self, cells, scope: Sequence[str]) -> Iterator[tuple[tuple, np.ndarray]]:
        """(scope key, positions) of each group of `cells` sharing the scope columns."""
        anchor = np.flatnonzero(_kind(cells) == "clean") if self.anchor_clean \
            else np.zeros(0, dtype=int)
        others = np.setdiff1d(np.arange(len(cells)), anchor)
        if not len(others):  # nothing but the anchor: the metric is not defined here
            return
        if not scope:
            yield (), np.arange(len(cells))
            return
        part = cells.iloc[others]
        for key, idx in part.groupby(list(scope), sort=True, dropna=False).indices.items():
            key = key if isinstance(key, tuple) else (key,)
            yield key, np.concatenate([anchor, others[idx]])

    def cells_of(self, frame, select: Callable | None = None):
        """The rows of `frame` (tidy scores or per-sample correctness) this metric reads."""
        keep = frame["condition_kind"].isin(self.kinds)
        if select is not None:
            keep &= select(frame)
        return frame[keep]

    def per_seed(self, tidy, reference: str | None = DEFAULT_REFERENCE,
                 scope: Sequence[str] = (), metric: str = "accuracy",
                 column: str = "score", select: Callable | None = None):
        """The value per (dataset, method, seed) and scope group: columns dataset, method,
        seed, the scope columns, value, note. `column="value"` averages a per-cell metric's
        own value (e.g. ECE) instead of its score."""
        rows = self.cells_of(scores(tidy, metric), select)
        return self.evaluate(rows, scope, reference, column)

    def evaluate(self, rows, scope: Sequence[str] = (), reference: str | None = None,
                 column: str = "score"):
        """`per_seed` on rows already selected (one per cell, with a `column` to average)."""
        import pandas as pd

        rows = with_corruption_id(rows)
        scope = list(scope)
        references = self._reference_cells(rows, reference)
        out = []
        for (dataset, method, seed), unit in rows.groupby(UNIT, sort=True):
            ref = references.get((dataset, seed)) if self.needs_reference else None
            for key, idx in self.groups(unit, scope):
                cells = unit.iloc[idx]
                s = cells[column].to_numpy(dtype=float)[None, :]
                r = None
                if self.needs_reference:
                    r = _match(cells, ref, reference, method, dataset, seed)[None, :]
                notes: list[str] = []
                value = float(self.statistic(cells, s, r, notes)[0])
                suffix = f", seed {seed} (reference {reference})" if self.needs_reference \
                    else ""
                out.append((dataset, method, seed, *key, value,
                            "; ".join(dict.fromkeys(n + suffix for n in notes))))
        frame = pd.DataFrame(out, columns=[*UNIT, *scope, "value", "note"])
        return frame.sort_values([*UNIT, *scope], kind="stable").reset_index(drop=True)

    def _reference_cells(self, rows, reference: str | None) -> dict:
        if not self.needs_reference:
            return {}
        if reference is None or not (rows["method"] == reference).any():
            raise MissingReferenceError(
                f"the reference method {reference!r} has no results for {self.label}; run "
                "it on the same grid and seeds or choose another reference")
        mine = rows[rows["method"] == reference]
        return {key: part.set_index("condition")["score"]
                for key, part in mine.groupby(["dataset", "seed"])}


def _match(cells, ref, reference: str, method: str, dataset: str, seed) -> np.ndarray:
    """The reference's scores on `cells` (same dataset and seed); raises naming the first
    absent cell."""
    values = (ref.reindex(cells["condition"]).to_numpy(dtype=float) if ref is not None
              else np.full(len(cells), np.nan))
    absent = np.flatnonzero(np.isnan(values))
    if len(absent):
        import pandas as pd


        row = cells.iloc[absent[0]]
        where = ("condition 'clean'" if row["condition_kind"] == "clean" else
                 ", ".join(f"{c} {row[c]}" if c == "severity" else f"{c} {row[c]!r}"
                           for c in ["test_modality", "corruption", "severity"]
                           if pd.notna(row[c])))
        raise MissingReferenceError(
            f"missing reference cell: method {reference!r}, seed {seed}, {where} (dataset "
            f"{dataset!r}; needed to normalise {method!r}); run the reference on the same "
            "grid and seeds or choose another reference")
    return values


MPC = MetricSpec("mpc", "mPC", ("corruption",), weighted(mpc_weights))
# each cell alone (scope ["condition"]): the per-condition tests of the conditions table
CELLWISE = MetricSpec("cell", "accuracy", CONDITION_KINDS, weighted(equal_weights))
SPECS: dict[str, MetricSpec] = {spec.key: spec for spec in (
    MetricSpec("clean", "clean", ("clean",), weighted(equal_weights)),
    MPC,
    MetricSpec("rpc", "rPC", ("clean", "corruption"), rpc_statistic, anchor_clean=True),
    MetricSpec("mce", "mCE", ("corruption",), corruption_error(relative=False),
               higher_is_better=False, needs_reference=True),
    MetricSpec("rmce", "rel. mCE", ("clean", "corruption"), corruption_error(relative=True),
               higher_is_better=False, needs_reference=True, anchor_clean=True),
    MetricSpec("auc", "severity AUC", ("clean", "corruption"), weighted(severity_auc_weights),
               anchor_clean=True),
    MetricSpec("missing", "missing", MISSING_KINDS, weighted(equal_weights)),
    MetricSpec("missing_auc", "missing AUC", ("clean", "random_missing"),
               weighted(missing_auc_weights), anchor_clean=True),
    MetricSpec("er", "eff. robustness", ("clean", "corruption"),
               effective_robustness_statistic, needs_reference=True, anchor_clean=True),
    MetricSpec("av", "AV events", ("av",), weighted(equal_weights)),
    MetricSpec("mixed", "mixed", ("mixed",), weighted(equal_weights)),
)}


class DuplicateCellError(ValueError):
    """One (dataset, method, seed, test condition) occurs more than once."""


def scores(tidy: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """The rows of one metric with ``score`` (higher is better) and ``error`` = 1 - score.

    Raises ValueError if a metric's direction is inconsistent or a cell occurs twice.
    """
    rows = tidy[tidy["metric"] == metric].copy()
    directions = set(rows["higher_is_better"].astype(bool))
    if len(directions) > 1:
        raise ValueError(f"metric {metric!r} has rows with both directions (higher_is_better)")
    value = rows["value"].astype(float)
    higher = directions != {False}
    rows["score"] = value if higher else 1.0 - value
    rows["error"] = 1.0 - rows["score"]
    duplicated = rows.duplicated(UNIT + CELL, keep=False)
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        raise DuplicateCellError(
            f"{int(duplicated.sum())} results for one cell: {_describe(first)}; a study "
            "holds one result per (method label, seed, condition): filter the table first")
    return rows.reset_index(drop=True)


def _describe(row: pd.Series) -> str:
    return f"method {row['method']!r}, seed {row['seed']}, condition {row['condition']!r}"
