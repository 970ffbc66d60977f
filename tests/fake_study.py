"""A tiny fake study shaped like `rambench run`'s records, for the report's tests: three
methods clearly apart (late_fusion < tmc < raml) on a dozen conditions, two seeds."""

import numpy as np

from rambench.schema import Clean, Corrupt, Drop, Mixed, Predictions, RandomMissing, make_record
from rambench.store import Store

METHODS = {"late_fusion": 0.70, "raml": 0.92, "tmc": 0.85}  # clean accuracy
CONDITIONS = (
    [Clean()]
    + [Corrupt(m, c, s) for m, c in (("visual", "gaussian_noise"), ("visual", "fog"),
                                     ("audio", "reverb")) for s in (1, 3)]
    + [Drop("visual"), Drop("audio"), RandomMissing(0.3), RandomMissing(0.6),
       Mixed((("visual", "gaussian_noise"), ("audio", "gaussian_noise")), 2)]
)
KIND = {"visual": "image", "audio": "audio", "visual+audio": "image+audio"}
FAMILY = {"gaussian_noise": "noise", "fog": "weather", "reverb": "room",
          "gaussian_noise+gaussian_noise": "noise"}
N = 150
CONFIDENCE = 0.7  # every prediction of the fake study: ECE = |accuracy - 0.7| per cell


def predictions_for(correct):
    """Three classes, label i % 3; the top class (p 0.7) is the label where `correct`, the
    next class otherwise (the label then gets 0.2)."""
    labels = np.arange(len(correct)) % 3
    top = np.where(correct, labels, (labels + 1) % 3)
    probs = np.full((len(correct), 3), 0.1)
    probs[np.arange(len(correct)), labels] = 0.2
    probs[np.arange(len(correct)), top] = CONFIDENCE
    probs[correct] = np.where(probs[correct] == CONFIDENCE, CONFIDENCE, 0.15)
    return Predictions.from_probabilities(probs, labels)


def write_fake_study(root, study="fake", seeds=(0, 1), methods=METHODS):
    """Records shaped like `rambench run`'s: late_fusion < tmc < raml, clearly apart."""
    store = Store(root, study)
    rng = np.random.default_rng(7)
    for seed in seeds:
        for method, clean in methods.items():
            for i, condition in enumerate(CONDITIONS):
                axes = condition.axes()
                loss = (0.05 * (axes["severity"] or 0) + 0.25 * (condition.kind == "drop")
                        + 0.3 * (axes["missing_rate"] or 0))
                correct = rng.random(N) < clean - loss
                store.write(make_record(
                    key=f"{method}-{seed}-{i:02d}", dataset="avdigits", method=method,
                    seed=seed, condition=condition,
                    modality_kind=KIND.get(axes["test_modality"]),
                    corruption_family=FAMILY.get(axes["corruption"]), correct=correct,
                    predictions=predictions_for(correct),
                    provenance={"code_version": "0.1.0+abc", "device": "cpu:test",
                                "created": "2026-01-01T00:00:00",
                                "packages": {"numpy": "2.0", "torch": "2.3"},
                                "grid": {"name": "tiny", "hash": "feedbeef1234"}}))
    return store
