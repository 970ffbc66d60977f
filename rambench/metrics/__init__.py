"""Metrics, each defined once: per-cell metrics from stored predictions (`cell`), robustness
summaries over the tidy results table (`robustness`), and the redundancy gap against the
unimodal references (`redundancy`)."""

from rambench.metrics.cell import CELL_METRICS, CellMetric, cell_values
from rambench.metrics.redundancy import redundancy_gap, unimodal_references
from rambench.metrics.robustness import (
    CELL,
    CORRUPTION,
    DEFAULT_REFERENCE,
    UNIT,
    DuplicateCellError,
    MissingReferenceError,
    clean_accuracy,
    corruption_errors,
    coverage_notes,
    effective_robustness,
    group_score,
    mce,
    mean_value,
    missing_auc_weights,
    missing_rate_auc,
    mpc,
    mpc_weights,
    notes,
    relative_mce,
    rpc,
    scores,
    severity_auc,
    severity_auc_weights,
    summarise,
    training_notes,
    trapezoid_area,
    trapezoid_weights,
)

__all__ = [
    "CELL", "CELL_METRICS", "CORRUPTION", "DEFAULT_REFERENCE", "UNIT", "CellMetric",
    "DuplicateCellError", "MissingReferenceError", "cell_values", "clean_accuracy",
    "corruption_errors", "coverage_notes", "effective_robustness", "group_score", "mce",
    "mean_value", "missing_auc_weights", "missing_rate_auc", "mpc", "mpc_weights", "notes",
    "redundancy_gap", "relative_mce", "rpc", "scores", "severity_auc", "severity_auc_weights",
    "summarise", "training_notes", "trapezoid_area", "trapezoid_weights",
    "unimodal_references",
]
