"""Robustness metrics over the tidy results table (`Store.tidy()`).

Conventions shared by every function here:

* **Per seed first.** Each metric is computed per (dataset, method, seed) and only then
  summarised over seeds with `summarise` (mean, sample std with ddof=1, which is NaN for a
  single seed, and the number of seeds).
* **Direction.** A metric with ``higher_is_better`` (accuracy) is used as a score
  ``s = value`` with error ``E = 1 - value``; a lower-is-better rate (an error rate) is the
  error itself, ``E = value`` and ``s = 1 - value``. Both assume a rate in [0, 1].
  A metric whose rows disagree about the direction is refused.
* **Cells.** Each row carries its ``condition_kind`` (clean, corruption, drop,
  random_missing, mixed; see `rambench.schema`), written with the record. A *corruption*
  is the pair (test_modality, corruption), so Gaussian noise on images and on audio are
  two corruptions. ``condition`` (the condition's label) identifies a cell.
* **Methods.** ``method`` is the method's label, e.g. ``raml[norm=hard]``: variants of a
  method are methods of their own.
* **Aggregation.** mPC is the mean over corruptions of the mean over that corruption's
  severities (Hendrycks & Dietterich, ICLR 2019); with the same severities for every
  corruption that is the plain mean over cells.
* **Undefined values.** A value whose denominator is zero or negative (or that lacks an
  input of the method itself) is NaN and the ``note`` column says why; nothing is divided
  by a non-positive number. A *reference* cell that is absent raises
  `MissingReferenceError`, naming the cell.

Every per-seed function returns a DataFrame with the key columns ``dataset, method, seed``,
its scope columns (e.g. ``test_modality, corruption``), ``value`` and ``note``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

UNIT = ["dataset", "method", "seed"]
CORRUPTION = ["test_modality", "corruption"]
CELL = ["condition"]  # the condition's label identifies a cell within a (dataset, seed)
DEFAULT_REFERENCE = "late_fusion"


class MissingReferenceError(ValueError):
    """A cell of the reference method needed for a normalised metric is not in the results."""


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


def _finish(frame: pd.DataFrame, scope: Sequence[str] = ()) -> pd.DataFrame:
    if "note" not in frame:
        frame["note"] = ""
    frame["note"] = frame["note"].fillna("")
    columns = [*UNIT, *scope, "value", "note"]
    return frame[columns].sort_values([*UNIT, *scope], kind="stable").reset_index(drop=True)


def _corruption_cells(tidy: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = scores(tidy, metric)
    return rows[rows["condition_kind"] == "corruption"]


def clean_accuracy(tidy: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Score on the clean test set, per (dataset, method, seed)."""
    rows = scores(tidy, metric)
    clean = rows[rows["condition_kind"] == "clean"].copy()
    clean["value"] = clean["score"]
    return _finish(clean)


def _by_columns(by: str | None) -> list[str]:
    if by in (None, "all"):
        return []
    if by == "modality":
        return ["test_modality"]
    if by == "family":
        return ["test_modality", "corruption_family"]
    if by == "corruption":
        return list(CORRUPTION)
    raise ValueError(f"by must be None, 'modality', 'family' or 'corruption'; got {by!r}")


def mpc(tidy: pd.DataFrame, by: str | None = None, metric: str = "accuracy") -> pd.DataFrame:
    """mPC: mean score under corruption, per seed.

    Mean over corruptions (in the scope `by`: None = all single-modality corruptions,
    'modality', 'family' or 'corruption') of the mean over each corruption's severities.
    """
    return _corruption_mean(_corruption_cells(tidy, metric), "score", by)


def _corruption_mean(cells: pd.DataFrame, column: str, by: str | None) -> pd.DataFrame:
    """Per seed, the mean over corruptions in scope `by` of the mean over each corruption's
    severities of `column`."""
    scope = _by_columns(by)
    per_corruption = cells.groupby(UNIT + CORRUPTION + (["corruption_family"] if by == "family"
                                                        else []),
                                   as_index=False)[column].mean()
    out = per_corruption.groupby(UNIT + scope, as_index=False)[column].mean()
    return _finish(out.rename(columns={column: "value"}), scope)


def mean_value(tidy: pd.DataFrame, metric: str, kind: str, by: str | None = None
               ) -> pd.DataFrame:
    """The mean of a per-cell metric's own value (e.g. ECE, not 1 - ECE) over the cells of
    condition kind `kind`, per seed; corruption cells are averaged as mPC is (over
    severities, then over the corruptions in scope `by`)."""
    rows = scores(tidy, metric)
    cells = rows[rows["condition_kind"] == kind]
    if kind == "corruption":
        return _corruption_mean(cells, "value", by)
    out = cells.groupby(UNIT, as_index=False)["value"].mean()
    return _finish(out)


def group_score(tidy: pd.DataFrame, kinds: str | Sequence[str], metric: str = "accuracy",
                select: Callable[[pd.DataFrame], pd.Series] | None = None) -> pd.DataFrame:
    """Mean score over the cells of the condition kind(s) `kinds` (e.g. 'clean', or
    `MISSING_KINDS`), every cell weighted alike, optionally only the cells `select` keeps;
    per seed."""
    rows = scores(tidy, metric)
    rows = rows[rows["condition_kind"].isin([kinds] if isinstance(kinds, str) else kinds)]
    if select is not None:
        rows = rows[select(rows)]
    out = rows.groupby(UNIT, as_index=False)["score"].mean().rename(columns={"score": "value"})
    return _finish(out)


# Sums of error rates are multiples of 1/n; a denominator below this is a zero that
# floating-point subtraction left behind (e.g. (.2 - .3) + (.4 - .3) = 5.6e-17).
ZERO = 1e-9


def _divide(num: pd.Series, den: pd.Series, what: str) -> tuple[pd.Series, pd.Series]:
    """num / den where den > 0; NaN and a note elsewhere (never divides by den <= 0, nor by
    a rounding residue of zero: |den| < `ZERO` counts as 0)."""
    den = den.where(den.isna() | (den.abs() >= ZERO), 0.0)
    ok = den > 0
    value = pd.Series(np.nan, index=num.index)
    value[ok] = num[ok] / den[ok]
    note = pd.Series("", index=num.index, dtype=object)
    bad = ~ok & den.notna()
    note[bad] = [f"{what} denominator is {d:.4g} <= 0; undefined" for d in den[bad]]
    note[den.isna()] = f"{what} denominator missing"
    return value, note


def rpc(tidy: pd.DataFrame, by: str | None = None, metric: str = "accuracy") -> pd.DataFrame:
    """rPC = mPC / clean score, per seed (NaN with a note when the clean score is <= 0)."""
    m = mpc(tidy, by, metric)
    clean = clean_accuracy(tidy, metric)[UNIT + ["value"]].rename(columns={"value": "clean"})
    merged = m.merge(clean, on=UNIT, how="left")
    merged["value"], merged["note"] = _divide(merged["value"], merged["clean"], "rPC (clean)")
    return _finish(merged, _by_columns(by))


def _reference_values(cells: pd.DataFrame, all_rows: pd.DataFrame, reference: str,
                      on: list[str]) -> pd.Series:
    """The reference's error at each row's (dataset, seed, on...) cell; raises if absent."""
    ref = all_rows[all_rows["method"] == reference][["dataset", "seed", *on, "error"]]
    merged = cells[["method", "dataset", "seed", *on]].merge(
        ref, on=["dataset", "seed", *on], how="left", validate="many_to_one")
    absent = merged["error"].isna()
    if absent.any():
        row = merged[absent].iloc[0]
        where = ", ".join(f"{c} {row[c]}" if c == "severity" else f"{c} {row[c]!r}"
                          for c in on) or "condition 'clean'"
        raise MissingReferenceError(
            f"missing reference cell: method {reference!r}, seed {row['seed']}, {where} "
            f"(dataset {row['dataset']!r}; needed to normalise {row['method']!r}); run the "
            "reference on the same grid and seeds or choose another reference")
    return pd.Series(merged["error"].to_numpy(), index=cells.index)


def _own_clean(cells: pd.DataFrame, rows: pd.DataFrame) -> pd.Series:
    """Each row's own clean error (NaN where the method has no clean result)."""
    clean = rows[rows["condition_kind"] == "clean"][UNIT + ["error"]]
    merged = cells[UNIT].merge(clean, on=UNIT, how="left", validate="many_to_one")
    return pd.Series(merged["error"].to_numpy(), index=cells.index)


def _reference_clean(cells: pd.DataFrame, rows: pd.DataFrame, reference: str) -> pd.Series:
    """The reference's clean error on each row's (dataset, seed); raises if absent."""
    clean = rows[rows["condition_kind"] == "clean"]
    return _reference_values(cells, clean, reference, [])


def corruption_errors(tidy: pd.DataFrame, reference: str = DEFAULT_REFERENCE,
                      relative: bool = False, metric: str = "accuracy") -> pd.DataFrame:
    """CE per corruption and seed, normalised by `reference` on the same seed and cells.

    CE_c = sum_s E_{c,s} / sum_s E^ref_{c,s}; with ``relative=True``
    relative CE_c = sum_s (E_{c,s} - E_clean) / sum_s (E^ref_{c,s} - E^ref_clean)
    (Hendrycks & Dietterich, ICLR 2019). The sums run over the method's severities, and
    every one of them must exist for the reference (else `MissingReferenceError`).
    """
    rows = scores(tidy, metric)
    cells = rows[rows["condition_kind"] == "corruption"].copy()
    cells["ref_error"] = _reference_values(cells, cells, reference, CORRUPTION + ["severity"])
    notes = pd.Series("", index=cells.index, dtype=object)
    if relative:
        cells["clean_error"] = _own_clean(cells, rows)
        cells["ref_clean_error"] = _reference_clean(cells, rows, reference)
        notes[cells["clean_error"].isna()] = "no clean result for the method"
        cells["num"] = cells["error"] - cells["clean_error"]
        cells["den"] = cells["ref_error"] - cells["ref_clean_error"]
    else:
        cells["num"], cells["den"] = cells["error"], cells["ref_error"]
    cells["missing_clean"] = notes
    sums = cells.groupby(UNIT + CORRUPTION, as_index=False).agg(
        num=("num", lambda s: s.sum(min_count=len(s))), den=("den", "sum"),
        missing_clean=("missing_clean", "first"))
    what = "relative CE" if relative else "CE"
    sums["value"], sums["note"] = _divide(sums["num"], sums["den"], what)
    sums.loc[sums["note"] != "", "note"] = [  # the reference's: the same for every method
        f"{n} for {mod}/{c}, seed {s} (reference {reference})"
        for n, s, mod, c in sums.loc[sums["note"] != "",
                                     ["note", "seed", *CORRUPTION]].itertuples(index=False)]
    has_missing = sums["missing_clean"] != ""
    sums.loc[has_missing, "value"] = np.nan
    sums.loc[has_missing, "note"] = sums.loc[has_missing, "missing_clean"]
    return _finish(sums, CORRUPTION)


def mce(tidy: pd.DataFrame, reference: str = DEFAULT_REFERENCE, relative: bool = False,
        by: str | None = None, metric: str = "accuracy") -> pd.DataFrame:
    """mCE (or relative mCE): the mean of CE_c over the corruptions in scope `by`, per seed.

    Corruptions whose CE is undefined (reference denominator <= 0) are left out of the
    mean, for every method alike since the denominator is the reference's, and noted.
    The reference's own mCE is exactly 1.
    """
    ce = corruption_errors(tidy, reference, relative, metric)
    if by == "family":
        families = scores(tidy, metric)[CORRUPTION + ["corruption_family"]].drop_duplicates()
        ce = ce.merge(families, on=CORRUPTION, how="left")
    scope = _by_columns(by)
    out = ce.groupby(UNIT + scope, as_index=False).agg(
        value=("value", "mean"), note=("note", lambda s: "; ".join(x for x in s if x)))
    out.loc[out["note"] != "", "note"] = "left out of the mean: " + out["note"]
    return _finish(out, scope)


def relative_mce(tidy: pd.DataFrame, reference: str = DEFAULT_REFERENCE, by: str | None = None,
                 metric: str = "accuracy") -> pd.DataFrame:
    """Relative mCE: `mce` with ``relative=True``."""
    return mce(tidy, reference, relative=True, by=by, metric=metric)


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


def _with_clean(points: pd.DataFrame, rows: pd.DataFrame, scope: list[str],
                x: str) -> pd.DataFrame:
    """Adds a clean point (x = 0) to each curve; curves of units without clean get a note."""
    clean = rows[rows["condition_kind"] == "clean"][UNIT + ["score"]]
    curves = points[UNIT + scope].drop_duplicates()
    zero = curves.merge(clean, on=UNIT, how="left").assign(**{x: 0.0})
    return pd.concat([zero, points[UNIT + scope + [x, "score"]]], ignore_index=True)


def _areas(curves: pd.DataFrame, scope: list[str], x: str, what: str) -> pd.DataFrame:
    out = []
    for key, curve in curves.groupby(UNIT + scope, sort=True):
        if curve["score"].isna().any():
            out.append((*key, np.nan, f"no clean result: {what} undefined"))
        else:
            out.append((*key, trapezoid_area(curve[x], curve["score"]), ""))
    return pd.DataFrame(out, columns=[*UNIT, *scope, "value", "note"])


def severity_auc(tidy: pd.DataFrame, per_corruption: bool = False,
                 metric: str = "accuracy") -> pd.DataFrame:
    """Normalised area under score vs severity (clean as severity 0), per seed.

    Trapezoid over the actual severity values divided by their range, i.e. the mean score
    over [0, max severity]. Per corruption, or (default) the mean over corruptions.
    """
    rows = scores(tidy, metric)
    cells = rows[rows["condition_kind"] == "corruption"].assign(
        severity=lambda f: f["severity"].astype(float))
    curves = _with_clean(cells, rows, CORRUPTION, "severity")
    areas = _areas(curves, CORRUPTION, "severity", "severity AUC")
    if per_corruption:
        return _finish(areas, CORRUPTION)
    return _finish(_mean_over(areas, []), [])


def missing_rate_auc(tidy: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Normalised area under score vs random missing rate (clean as rate 0), per seed."""
    rows = scores(tidy, metric)
    cells = rows[rows["condition_kind"] == "random_missing"]
    curves = _with_clean(cells, rows, [], "missing_rate")
    return _finish(_areas(curves, [], "missing_rate", "missing-rate AUC"), [])


def _mean_over(frame: pd.DataFrame, scope: list[str]) -> pd.DataFrame:
    return frame.groupby(UNIT + scope, as_index=False).agg(
        value=("value", "mean"), note=("note", lambda s: "; ".join(dict.fromkeys(x for x in s
                                                                                if x))))


def effective_robustness(tidy: pd.DataFrame, reference: str = DEFAULT_REFERENCE,
                         per_corruption: bool = False, metric: str = "accuracy") -> pd.DataFrame:
    """Effective robustness vs `reference`: sum_s [(f_s - f_0) - (b_s - b_0)] per corruption.

    f / b: the method's / reference's score at severity s (0 = clean) on the same seed.
    Positive: the method loses less than the reference. Per corruption, or (default) the
    mean over corruptions.
    """
    rows = scores(tidy, metric)
    cells = rows[rows["condition_kind"] == "corruption"].copy()
    cells["ref_error"] = _reference_values(cells, cells, reference, CORRUPTION + ["severity"])
    cells["clean_error"] = _own_clean(cells, rows)
    cells["ref_clean_error"] = _reference_clean(cells, rows, reference)
    # scores are 1 - errors: (f_s - f_0) - (b_s - b_0) = (E_0 - E_s) - (E^ref_0 - E^ref_s)
    cells["term"] = ((cells["clean_error"] - cells["error"])
                     - (cells["ref_clean_error"] - cells["ref_error"]))
    per = cells.groupby(UNIT + CORRUPTION, as_index=False).agg(
        value=("term", lambda s: s.sum(min_count=len(s))))
    per["note"] = np.where(per["value"].isna(), "no clean result for the method", "")
    if per_corruption:
        return _finish(per, CORRUPTION)
    return _finish(_mean_over(per, []), [])


def coverage_notes(tidy: pd.DataFrame, metric: str = "accuracy", limit: int = 5) -> list[str]:
    """Notes on (method, seed) units that lack cells other units of their dataset have:
    their averages run over other cells and are not comparable (e.g. a study still
    running)."""
    rows = scores(tidy, metric)
    out = []
    for dataset, part in rows.groupby("dataset", sort=True):
        cells = part[CELL].drop_duplicates()
        total = len(cells)
        for (method, seed), unit in part.groupby(["method", "seed"], sort=True):
            if len(unit) == total:
                continue
            lacking = cells.merge(unit[CELL], how="left", indicator=True)
            lacking = lacking[lacking["_merge"] == "left_only"]
            example = lacking.iloc[0]["condition"]
            out.append(f"incomplete: {method} seed {seed} has {len(unit)} of the {total} "
                       f"cells of {dataset} (lacks e.g. {example}); its averages are not "
                       "comparable")
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more incomplete (method, seed)"]
    return out


def training_notes(tidy: pd.DataFrame) -> list[str]:
    """Notes on (method, seed) units whose training ended at chance accuracy."""
    if "training_status" not in tidy:
        return []
    flagged = tidy[tidy["training_status"] != "ok"][["method", "seed", "training_status"]]
    return [f"{method} seed {seed}: training {status.replace('_', ' ')} (best validation "
            "accuracy within noise of always predicting the commonest class); its numbers "
            "are not a result of the method working"
            for method, seed, status in flagged.drop_duplicates().itertuples(index=False)]


def summarise(per_seed: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for one seed) and number of seeds of a per-seed metric.

    Groups by dataset, method and the scope columns (every column except seed, value,
    note), or by `by` if given. NaN values (see their notes) are left out.
    """
    if by is None:
        by = [c for c in per_seed.columns if c not in ("seed", "value", "note")]
    by = list(by)
    grouped = per_seed.groupby(by, sort=True, dropna=False)
    out = grouped["value"].agg(mean="mean", std=lambda s: s.std(ddof=1), seeds="count")
    out["note"] = grouped["note"].agg(lambda s: "; ".join(dict.fromkeys(x for x in s if x)))
    return out.reset_index()


def notes(*frames: pd.DataFrame) -> list[str]:
    """The distinct notes (warnings) carried by metric frames."""
    found: dict[str, None] = {}
    for frame in frames:
        for note in frame.get("note", pd.Series(dtype=object)):
            if note:
                found[note] = None
    return list(found)

# ------------------------------------------------------------- the same metrics as weights
# mPC, severity AUC and missing-rate AUC are weighted means of one seed's cell accuracies;
# these weights are how `rambench.stats` bootstraps them (and a test checks that a table's
# value and its bootstrap's point estimate agree).


def _corruption_id(cells: pd.DataFrame, within: list[str]) -> pd.Series:
    """An id per (within..., corruption) where a 'corruption' is (modality, corruption,
    missing pattern, missing rate): a missing or clean cell is a corruption of its own."""
    keys = [*within, "condition_kind", *CORRUPTION, "missing_rate"]
    return cells.groupby(keys, sort=False, dropna=False).ngroup()


def mpc_weights(cells: pd.DataFrame, within: list[str] | None = None) -> np.ndarray:
    """Weights making a mean over cells the mean over corruptions of the mean over severities
    (the mPC weighting; equal weights when every cell is its own corruption). With
    `within`, weights sum to 1 inside each group of those columns."""
    within = within or []
    if len(cells) == 1:
        return np.ones(1)
    corruption = _corruption_id(cells, within)
    per_corruption = corruption.map(corruption.value_counts())
    if within:
        n_corruptions = corruption.groupby([cells[c] for c in within]).transform("nunique")
    else:
        n_corruptions = corruption.nunique()
    return (1.0 / per_corruption / n_corruptions).to_numpy(dtype=np.float64)


def severity_auc_weights(cells: pd.DataFrame) -> np.ndarray:
    """Weights making a weighted mean of one seed's clean + corruption cells the severity AUC
    (the mean over corruptions of each corruption's trapezoid area, clean as severity 0)."""
    w = np.zeros(len(cells))
    clean = np.flatnonzero((cells["condition_kind"] == "clean").to_numpy())
    corrupt = cells[cells["condition_kind"] == "corruption"]
    groups = corrupt.groupby(CORRUPTION, sort=False).indices
    if len(clean) != 1 or not groups:
        return np.full(len(cells), np.nan)
    positions = {label: i for i, label in enumerate(cells.index)}
    for idx in groups.values():
        sub = corrupt.iloc[idx]
        tw = trapezoid_weights([0.0, *sub["severity"].astype(float)])
        w[clean[0]] += tw[0] / len(groups)
        for label, weight in zip(sub.index, tw[1:], strict=True):
            w[positions[label]] += weight / len(groups)
    return w


def missing_auc_weights(cells: pd.DataFrame) -> np.ndarray:
    """Weights making a weighted mean of one seed's clean + random-missing cells the area
    under accuracy vs missing rate (clean as rate 0)."""
    x = np.where(cells["condition_kind"] == "clean", 0.0, cells["missing_rate"].astype(float))
    return trapezoid_weights(x)
