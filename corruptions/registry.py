"""The corruption registry: every corruption has a name, the kind of data it acts on,
a family, a parameter table for severities 1-5 and a per-sample reference function.

A corruption never sees labels or models. It takes one sample, a severity and an integer
seed, and must derive all of its randomness from that seed (never from global RNG state),
so that a sample's corruption does not depend on batch size or on the order of cells.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)

# `apply(sample, severity, seed, **context) -> sample` with the same shape and dtype.
# image samples: uint8 (H, W, C), C in {1, 3}; audio samples: float32 (T,), with
# context `sample_rate=...`.
ApplyFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Corruption:
    name: str
    kind: str  # "image" or "audio": the kind of data it acts on
    family: str  # e.g. noise / blur / weather / digital for images
    apply: ApplyFn
    severity_table: tuple[str, ...]  # a human-readable parameter for severities 1..5
    backend: str  # e.g. "imagecorruptions==1.1.2"

    def __call__(self, sample: np.ndarray, severity: int, seed: int, **context) -> np.ndarray:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        return self.apply(sample, severity, seed, **context)


_REGISTRY: dict[str, Corruption] = {}


def register(corruption: Corruption) -> Corruption:
    if corruption.name in _REGISTRY:
        raise ValueError(f"corruption {corruption.name!r} is already registered")
    _REGISTRY[corruption.name] = corruption
    return corruption


def _load_builtin() -> None:
    # Importing the modules registers their corruptions.
    from corruptions import audio, image  # noqa: F401


def get(name: str) -> Corruption:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(unknown_name_message("corruption", name, _REGISTRY)) from None


def names(kind: str | None = None) -> list[str]:
    _load_builtin()
    return [n for n, c in _REGISTRY.items() if kind is None or c.kind == kind]


def unknown_name_message(what: str, name: str, valid: Sequence[str]) -> str:
    """'unknown X 'nam'; did you mean 'name'? valid: ...' — shared by every registry."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} Valid: {', '.join(valid)}"
