"""Per-cell metrics from stored predictions, against hand arithmetic (and scikit-learn)."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from rambench.metrics.cell import (
    CELL_METRICS,
    calibration_bins,
    cell_values,
    expected_calibration_error,
    macro_f1,
)
from rambench.metrics.frame import tidy_rows
from rambench.schema import Predictions, make_record

# four samples, three classes; predictions 0, 0, 2, 0 -> correct, wrong, correct, wrong
PROBS = np.array([[0.7, 0.2, 0.1], [0.72, 0.18, 0.1], [0.1, 0.1, 0.8], [0.34, 0.33, 0.33]])
LABELS = np.array([0, 1, 2, 1])


def test_calibration_and_f1_match_hand_arithmetic():
    values = cell_values({}, Predictions.from_probabilities(PROBS, LABELS))
    assert "accuracy" not in values  # stored with the record, never recomputed
    # 0.7 and 0.72 share the bin (10/15, 11/15]: gap |1/2 - 0.71|, weight 2/4
    assert values["ece"] == pytest.approx((2 * 0.21 + 0.2 + 0.34) / 4, abs=1e-3)
    assert values["nll"] == pytest.approx(-np.log([0.7, 0.18, 0.8, 0.33]).mean(), abs=1e-6)
    brier = (0.14 + (0.72**2 + 0.82**2 + 0.1**2) + 0.06 + (0.34**2 + 0.67**2 + 0.33**2)) / 4
    assert values["brier"] == pytest.approx(brier, abs=1e-6)
    # class 0: TP 1, FP 2, FN 0 -> 0.5; class 1: TP 0 -> 0; class 2: TP 1 -> 1
    assert values["macro_f1"] == pytest.approx(0.5)


def test_ece_bins_are_right_closed_and_empty_bins_do_not_count():
    count, conf, acc = calibration_bins(np.array([1 / 15, 1 / 15 + 1e-9, 1.0]),
                                        np.array([True, False, True]))
    assert count[0] == 1 and count[1] == 1 and count[14] == 1 and count.sum() == 3
    assert np.isnan(conf[5]) and np.isnan(acc[5])
    # perfectly calibrated: half right at confidence 0.5 -> 0
    assert expected_calibration_error(np.full(4, 0.5), np.array([1, 0, 1, 0])) == 0
    assert expected_calibration_error(np.ones(3), np.zeros(3)) == 1


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_agrees_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, 200)
    predicted = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 9, 200))
    assert macro_f1(labels, predicted) == pytest.approx(
        f1_score(labels, predicted, average="macro"))


def test_records_give_every_metric_in_the_tidy_table_and_directions_are_declared():
    record = make_record(correct=PROBS.argmax(1) == LABELS,
                         predictions=Predictions.from_probabilities(PROBS, LABELS))
    rows = {r["metric"]: r for r in tidy_rows(record)}
    assert set(rows) == set(CELL_METRICS)
    assert rows["accuracy"]["value"] == 0.5
    assert [rows[m]["higher_is_better"] for m in ("accuracy", "ece", "nll", "brier",
                                                  "macro_f1")] == [True, False, False,
                                                                   False, True]
    no_predictions = make_record()
    assert [r["metric"] for r in tidy_rows(no_predictions)] == ["accuracy"]
