"""Records as tables: the tidy export (one row per cell and metric, `EXPORT_COLUMNS`) and
the per-sample export (one row per cell and test sample)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rambench.metrics.cell import CELL_METRICS, cell_values
from rambench.schema import EXPORT_COLUMNS, Record


def tidy_rows(record: Record) -> list[dict[str, Any]]:
    """One row per metric of `record` with the public `EXPORT_COLUMNS`."""
    c = record.condition
    method = record.method
    base = {
        "study": record.study, "dataset": record.dataset, "method": method.label,
        "method_family": method.family, "family": method.family,
        "method_modalities": "+".join(method.modalities) if method.modalities else None,
        "seed": record.seed, "condition": c.label, "condition_kind": c.kind,
        "modality_kind": record.modality_kind, "corruption_family": record.corruption_family,
        **c.axes(),
    }
    tail = {"n": record.n, "split": record.split,
            "corruption_backend": record.corruption_backend, "key": record.key,
            "code_version": record.provenance.get("code_version"),
            "training_status": (record.provenance.get("training") or {}).get("status", "ok")}
    return [{**base, "metric": name, "value": value,
             "higher_is_better": CELL_METRICS[name].higher_is_better, **tail}
            for name, value in cell_values(record.metrics, record.predictions).items()]


def tidy_frame(records: list[Record]) -> pd.DataFrame:
    """The tidy table of `records`, in a stable order; severity as a nullable integer."""
    frame = pd.DataFrame([row for r in records for row in tidy_rows(r)],
                         columns=EXPORT_COLUMNS)
    frame["severity"] = frame["severity"].astype("Int64")
    frame["missing_rate"] = frame["missing_rate"].astype(float)
    order = ["dataset", "method", "seed", "condition_kind", "test_modality", "corruption",
             "severity", "missing_rate", "metric"]
    return frame.sort_values(order, kind="stable", na_position="first").reset_index(drop=True)


def per_sample_frame(records: list[Record]) -> pd.DataFrame:
    """One row per (cell, test sample): the cell's coordinates, `sample` (index in the test
    split), `correct`, and from the stored predictions the `label`, `prediction`,
    `confidence`, `label_probability`, and the ranked `class_i`/`prob_i` (every class up to
    64 classes, else the top 5). Records without predictions (schema 1) give `correct` only."""
    frames = []
    for r in records:
        rows: dict[str, Any] = {
            "study": r.study, "dataset": r.dataset, "method": r.method.label, "seed": r.seed,
            "condition": r.condition.label, "condition_kind": r.condition.kind, "key": r.key,
            "sample": np.arange(r.n), "correct": r.correct}
        p = r.predictions
        if p is not None:
            rows.update(label=p.labels.astype(int), prediction=p.predicted.astype(int),
                        confidence=p.confidence, label_probability=p.label_probability)
            for i in range(p.classes.shape[1]):
                rows[f"class_{i + 1}"] = p.classes[:, i].astype(int)
                rows[f"prob_{i + 1}"] = p.probabilities[:, i].astype(np.float32)
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
