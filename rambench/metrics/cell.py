"""Per-cell metrics: one number per evaluated cell, from its stored per-sample predictions.

Each metric is defined here once, with its direction; records store `accuracy`, and every
other metric is computed from the record's `Predictions` when the record is read (so old
records gain new metrics without being rewritten). Records of schema 1 carry no
predictions and give accuracy only.

* accuracy: fraction of samples whose most probable class is the label.
* ece: expected calibration error with `ECE_BINS` = 15 equal-width confidence bins
  (k/15, (k+1)/15], ECE = sum_b |sum_{i in b} (correct_i - confidence_i)| / N
  (Guo et al., ICML 2017; the binning of Ovadia et al., NeurIPS 2019).
* nll: mean negative log-likelihood of the label, -mean log max(p_label, `NLL_FLOOR`).
* brier: multi-class Brier score, mean over samples of sum_k (p_k - [k = label])^2
  = 1 - 2 p_label + sum_k p_k^2 (Brier 1950), in [0, 2].
* macro_f1: unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN), over the classes
  that occur as a label or a prediction (as scikit-learn's f1_score(average="macro")).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rambench.schema import Predictions

ECE_BINS = 15
NLL_FLOOR = 1e-12  # a label probability of 0 (float underflow) counts as 1e-12: NLL <= 27.6


@dataclass(frozen=True)
class CellMetric:
    """A per-cell metric: its name, direction, table label and how it is computed."""

    name: str
    higher_is_better: bool
    description: str
    label: str
    compute: Callable[[Predictions], float] | None = None  # None: stored in the record
    rate: bool = True  # a value in [0, 1], shown in % (nll and brier are not)


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin (k/bins, (k+1)/bins]: (count, mean confidence, accuracy); NaN
    for an empty bin. The reliability diagram draws them; ECE sums their gaps."""
    confidence = np.asarray(confidence, dtype=np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(index, confidence, minlength=bins) / count
        acc = np.bincount(index, np.asarray(correct, np.float64), minlength=bins) / count
    return count, conf, acc


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    count, conf, acc = calibration_bins(confidence, correct, bins)
    used = count > 0
    return float(np.sum(count[used] * np.abs(acc[used] - conf[used])) / count.sum())


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    classes = np.union1d(labels, predicted)
    size = int(classes.max()) + 1
    tp = np.bincount(labels[labels == predicted], minlength=size)[classes]
    fp = np.bincount(predicted, minlength=size)[classes] - tp
    fn = np.bincount(labels, minlength=size)[classes] - tp
    return float(np.mean(2 * tp / (2 * tp + fp + fn)))


def _ece(p: Predictions) -> float:
    return expected_calibration_error(p.confidence, p.correct)


def _nll(p: Predictions) -> float:
    return float(-np.mean(np.log(np.maximum(p.label_probability.astype(np.float64),
                                            NLL_FLOOR))))


def _brier(p: Predictions) -> float:
    return float(np.mean(1 - 2 * p.label_probability.astype(np.float64)
                         + p.squared_sum.astype(np.float64)))


def _macro_f1(p: Predictions) -> float:
    return macro_f1(p.labels, p.predicted)


CELL_METRICS: dict[str, CellMetric] = {m.name: m for m in (
    CellMetric("accuracy", True, "fraction of test samples whose top class is the label",
               "accuracy"),
    CellMetric("ece", False, f"expected calibration error, {ECE_BINS} equal-width "
               "confidence bins", "ECE", _ece),
    CellMetric("nll", False, "mean negative log-likelihood of the label", "NLL", _nll,
               rate=False),
    CellMetric("brier", False, "multi-class Brier score (sum over classes, 0-2)", "Brier",
               _brier, rate=False),
    CellMetric("macro_f1", True, "unweighted mean of per-class F1", "macro-F1", _macro_f1),
)}


def cell_values(stored: dict[str, float], predictions: Predictions | None
                ) -> dict[str, float]:
    """Every per-cell metric of a record: the stored ones, then those computed from its
    predictions (none without predictions)."""
    out = dict(stored)
    if predictions is not None:
        for name, metric in CELL_METRICS.items():
            if name not in out and metric.compute is not None:
                out[name] = metric.compute(predictions)
    return out
