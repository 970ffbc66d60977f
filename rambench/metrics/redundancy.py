"""The redundancy gap: does a fused model exploit the modality that is still intact?

When modality m is corrupted or dropped, the other modality still carries what the
unimodal model trained on it alone can recognise. For a method, seed and a cell that
degrades m only (a corruption of m, or m dropped), the gap is

    gap = score(method, cell) - score(unimodal reference that ignores m, same cell, seed)

where the reference is the study's unimodal method of the other modality (e.g. `audio_only`
when the image is corrupted); it ignores m, so its score there is its clean score.
Summaries per modality: corruptions of m as mPC averages them (over severities, then over
corruptions), and the drop of m. A gap >= 0 means the fused model does at least as well
as the intact modality alone; a negative gap means the degraded modality drags it below.
Defined for datasets of two modalities (with more, "the other modality" is not one model).
"""

from __future__ import annotations

import pandas as pd

from rambench.metrics.specs import MPC, SPECS, UNIT, MissingReferenceError, scores

KINDS = ("corruption", "drop")  # the condition kinds that degrade one modality


def unimodal_references(tidy: pd.DataFrame) -> dict[str, str]:
    """Modality -> the label of the study's method that reads only that modality (the
    records' `method_modalities`; plain labels preferred)."""
    methods = tidy[["method", "method_modalities"]].drop_duplicates().dropna()
    found: dict[str, str] = {}
    for label, modalities in sorted(methods.itertuples(index=False),
                                    key=lambda row: ("[" in row[0], row[0])):
        if "+" not in modalities:
            found.setdefault(modalities, label)
    return found


def redundancy_gap(tidy: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per (dataset, method, seed, test_modality, condition_kind): the mean gap (see the
    module docstring) over the cells of that kind degrading that modality.

    Raises `MissingReferenceError` naming the unimodal reference a modality needs when the
    study lacks it."""
    rows = scores(tidy, metric)
    cells = rows[rows["condition_kind"].isin(KINDS)].copy()
    empty = pd.DataFrame(columns=[*UNIT, "test_modality", "condition_kind", "value", "note"])
    references = unimodal_references(rows)
    parts = []
    for (dataset, modality), part in cells.groupby(["dataset", "test_modality"], sort=True):
        others = sorted(set(cells.loc[cells["dataset"] == dataset, "test_modality"])
                        - {modality})
        if len(others) != 1:
            continue
        other = others[0]
        if other not in references:
            raise MissingReferenceError(
                f"the redundancy gap of {modality!r} needs the unimodal model of {other!r} "
                f"(e.g. {other}_only) trained in the same study; run it on the same grid "
                "and seeds")
        ref = part[part["method"] == references[other]][["seed", "condition", "score"]]
        merged = part.merge(ref, on=["seed", "condition"], suffixes=("", "_ref"), how="left")
        absent = merged["score_ref"].isna()
        if absent.any():
            row = merged[absent].iloc[0]
            raise MissingReferenceError(
                f"missing reference cell: method {references[other]!r}, seed {row['seed']}, "
                f"condition {row['condition']!r} (needed for the redundancy gap of "
                f"{row['method']!r})")
        merged["gap"] = merged["score"] - merged["score_ref"]
        parts.append(merged)
    if not parts:
        return empty
    gaps = pd.concat(parts, ignore_index=True)
    # a difference of weighted means is the weighted mean of the differences: corruptions
    # as mPC averages them, dropped cells alike
    out = [spec.evaluate(gaps[gaps["condition_kind"] == kind], ["test_modality"],
                         column="gap").assign(condition_kind=kind)
           for kind, spec in (("corruption", MPC), ("drop", SPECS["missing"]))
           if (gaps["condition_kind"] == kind).any()]
    frame = pd.concat(out, ignore_index=True)[empty.columns]
    return frame.sort_values([*UNIT, "test_modality", "condition_kind"],
                             kind="stable").reset_index(drop=True)
