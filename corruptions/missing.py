"""Missing-modality patterns: which modalities of a sample are absent.

The harness zero-fills a dropped input and marks it absent in the batch's presence mask,
so that methods can tell "missing" from "zero".
"""

from __future__ import annotations

import numpy as np


def random_missing_mask(num_modalities: int, rate: float, seed: int) -> np.ndarray:
    """bool (M,): each modality missing with probability `rate`, never all of them.

    Draws are repeated until at least one modality is present, i.e. the mask follows the
    independent-Bernoulli distribution conditioned on "not all missing"; the realised
    per-modality rate is therefore r (1 - r^(M-1)) / (1 - r^M), slightly below r.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"missing rate must be in [0, 1); got {rate}")
    rng = np.random.default_rng(seed)
    while True:
        mask = rng.random(num_modalities) < rate
        if not mask.all():
            return mask


def expected_missing_fraction(num_modalities: int, rate: float) -> float:
    """The realised per-modality missing rate of `random_missing_mask`."""
    m = num_modalities
    return rate * (1 - rate ** (m - 1)) / (1 - rate**m)
