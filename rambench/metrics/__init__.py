"""Metrics, each defined once: per-cell metrics from stored predictions (`cell`), every
robustness summary as a `MetricSpec` (`specs`: the point estimate, bootstrap interval and
paired test all evaluate its one statistic), named summaries over the tidy results table
(`robustness`), the redundancy gap against the unimodal references (`redundancy`), and
records as tables (`frame`)."""

from rambench.metrics.cell import CELL_METRICS, CellMetric, cell_values
from rambench.metrics.redundancy import redundancy_gap, unimodal_references
from rambench.metrics.robustness import (
    clean_accuracy,
    corruption_errors,
    coverage_notes,
    effective_robustness,
    mce,
    mean_value,
    missing_rate_auc,
    mpc,
    notes,
    relative_mce,
    rpc,
    severity_auc,
    summarise,
    training_notes,
)
from rambench.metrics.specs import (
    CELL,
    CORRUPTION,
    DEFAULT_REFERENCE,
    MPC,
    SPECS,
    UNIT,
    DuplicateCellError,
    MetricSpec,
    MissingReferenceError,
    scores,
    trapezoid_area,
    trapezoid_weights,
)

__all__ = [
    "CELL", "CELL_METRICS", "CORRUPTION", "DEFAULT_REFERENCE", "MPC", "SPECS", "UNIT",
    "CellMetric", "DuplicateCellError", "MetricSpec", "MissingReferenceError", "cell_values",
    "clean_accuracy", "corruption_errors", "coverage_notes", "effective_robustness", "mce",
    "mean_value", "missing_rate_auc", "mpc", "notes", "redundancy_gap", "relative_mce", "rpc",
    "scores", "severity_auc", "summarise", "training_notes", "trapezoid_area",
    "trapezoid_weights", "unimodal_references",
]
