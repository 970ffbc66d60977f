"""Robustness summaries over the tidy results table (`rambench.metrics.frame.tidy_frame`).

The arithmetic of every summary is its `MetricSpec` (`rambench.metrics.specs`); the
functions here name the common ones. Conventions:

* **Per seed first.** Each metric is computed per (dataset, method, seed) and only then
  summarised over seeds with `summarise` (mean, sample std with ddof=1, which is NaN for a
  single seed, and the number of seeds).
* **Direction.** A metric with ``higher_is_better`` (accuracy) is used as a score
  ``s = value`` with error ``E = 1 - value``; a lower-is-better rate (an error rate) is the
  error itself, ``E = value`` and ``s = 1 - value``. Both assume a rate in [0, 1].
  A metric whose rows disagree about the direction is refused.
* **Cells.** Each row carries its ``condition_kind`` (clean, corruption, av, drop,
  random_missing, mixed; see `rambench.schema`), written with the record. A *corruption*
  is the pair (test_modality, corruption), so Gaussian noise on images and on audio are
  two corruptions. ``condition`` (the condition's label) identifies a cell.
* **Methods.** ``method`` is the method's label, e.g. ``raml[norm=hard]``: variants of a
  method are methods of their own.
* **Undefined values.** A value whose denominator is zero or negative (or that lacks an
  input of the method itself) is NaN and the ``note`` column says why; nothing is divided
  by a non-positive number. A *reference* cell that is absent raises
  `MissingReferenceError`, naming the cell.

Every per-seed function returns a DataFrame with the key columns ``dataset, method, seed``,
its scope columns (e.g. ``test_modality, corruption``), ``value`` and ``note``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from rambench.metrics.specs import (
    CELL,
    CORRUPTION,
    DEFAULT_REFERENCE,
    MPC,
    SPECS,
    scores,
)


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


def clean_accuracy(tidy: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Score on the clean test set, per (dataset, method, seed)."""
    return SPECS["clean"].per_seed(tidy, metric=metric)


def mpc(tidy: pd.DataFrame, by: str | None = None, metric: str = "accuracy") -> pd.DataFrame:
    """mPC: mean score under corruption, per seed: the mean over corruptions (in the scope
    `by`: None = all single-modality corruptions, 'modality', 'family' or 'corruption') of
    the mean over each corruption's severities."""
    return MPC.per_seed(tidy, scope=_by_columns(by), metric=metric)


def mean_value(tidy: pd.DataFrame, metric: str, kind: str, by: str | None = None
               ) -> pd.DataFrame:
    """The mean of a per-cell metric's own value (e.g. ECE, not 1 - ECE) over the cells of
    condition kind `kind`, per seed; corruption cells are averaged as mPC is (over
    severities, then over the corruptions in scope `by`)."""
    spec = MPC if kind == "corruption" else replace(SPECS["clean"], kinds=(kind,))
    return spec.per_seed(tidy, scope=_by_columns(by), metric=metric, column="value")


def rpc(tidy: pd.DataFrame, by: str | None = None, metric: str = "accuracy") -> pd.DataFrame:
    """rPC = mPC / clean score, per seed (NaN with a note when the clean score is <= 0)."""
    return SPECS["rpc"].per_seed(tidy, scope=_by_columns(by), metric=metric)


def corruption_errors(tidy: pd.DataFrame, reference: str = DEFAULT_REFERENCE,
                      relative: bool = False, metric: str = "accuracy") -> pd.DataFrame:
    """CE (or relative CE) per corruption and seed, normalised by `reference` on the same
    seed and cells; every severity of the method must exist for the reference (else
    `MissingReferenceError`)."""
    spec = SPECS["rmce" if relative else "mce"]
    return spec.per_seed(tidy, reference, scope=CORRUPTION, metric=metric)


def mce(tidy: pd.DataFrame, reference: str = DEFAULT_REFERENCE, relative: bool = False,
        by: str | None = None, metric: str = "accuracy") -> pd.DataFrame:
    """mCE (or relative mCE): the mean of CE_c over the corruptions in scope `by`, per seed.
    The reference's own mCE is exactly 1."""
    spec = SPECS["rmce" if relative else "mce"]
    return spec.per_seed(tidy, reference, scope=_by_columns(by), metric=metric)


def relative_mce(tidy: pd.DataFrame, reference: str = DEFAULT_REFERENCE, by: str | None = None,
                 metric: str = "accuracy") -> pd.DataFrame:
    """Relative mCE: `mce` with ``relative=True``."""
    return mce(tidy, reference, relative=True, by=by, metric=metric)


def severity_auc(tidy: pd.DataFrame, per_corruption: bool = False,
                 metric: str = "accuracy") -> pd.DataFrame:
    """Normalised area under score vs severity (clean as severity 0), per seed: per
    corruption, or (default) the mean over corruptions."""
    return SPECS["auc"].per_seed(tidy, scope=CORRUPTION if per_corruption else (),
                                 metric=metric)


def missing_rate_auc(tidy: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Normalised area under score vs random missing rate (clean as rate 0), per seed."""
    return SPECS["missing_auc"].per_seed(tidy, metric=metric)


def effective_robustness(tidy: pd.DataFrame, reference: str = DEFAULT_REFERENCE,
                         per_corruption: bool = False, metric: str = "accuracy") -> pd.DataFrame:
    """Effective robustness vs `reference`, per corruption or (default) the mean over
    corruptions."""
    return SPECS["er"].per_seed(tidy, reference, scope=CORRUPTION if per_corruption else (),
                                metric=metric)


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
