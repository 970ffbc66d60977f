"""Missing-modality patterns: which modalities of a sample are absent, and which time
segment of a modality is lost.

The harness zero-fills a dropped input and marks it absent in the batch's presence mask,
so that methods can tell "missing" from "zero". A lost segment is zero-filled inside a
modality that is present (a microphone or camera that cuts out for a while).
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


def uneven_missing_mask(rates: tuple[float, ...], seed: int) -> np.ndarray:
    """bool (M,): modality j missing with probability `rates[j]`, never all of them (draws
    repeated until one is present: the independent-Bernoulli distribution conditioned on
    "not all missing")."""
    if not all(0.0 <= r < 1.0 for r in rates):
        raise ValueError(f"missing rates must be in [0, 1); got {list(rates)}")
    rng = np.random.default_rng(seed)
    while True:
        mask = rng.random(len(rates)) < np.asarray(rates)
        if not mask.all():
            return mask


# the fraction of a modality's time axis a lost segment covers, per severity 1-5
SEGMENT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)


def segment_span(steps: int, severity: int, seed: int) -> tuple[int, int]:
    """(start, length) of the segment lost at `severity` along a time axis of `steps`
    samples or frames: length round(fraction x steps) (at least 1), start uniform over
    the places it fits, drawn from `seed`."""
    length = min(steps, max(1, round(SEGMENT_FRACTIONS[severity - 1] * steps)))
    start = int(np.random.default_rng(seed).integers(0, steps - length + 1))
    return start, length


def lose_segments(x: np.ndarray, severity: int, seeds) -> tuple[np.ndarray, list]:
    """`x` (N, T, ...) with one segment of axis 1 zeroed per sample (audio (N, L): a span
    of samples; clips (N, T, H, W, C): a run of frames), and each sample's [start, length]."""
    out = np.array(x, copy=True)
    spans = [segment_span(x.shape[1], severity, int(s)) for s in seeds]
    for row, (start, length) in zip(out, spans, strict=True):
        row[start:start + length] = 0
    return out, [list(span) for span in spans]


def expected_missing_fraction(num_modalities: int, rate: float) -> float:
    """The realised per-modality missing rate of `random_missing_mask`."""
    m = num_modalities
    return rate * (1 - rate ** (m - 1)) / (1 - rate**m)
