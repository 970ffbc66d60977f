"""Planning: test conditions, training jobs, cells and their content-hash keys.

A key hashes everything that determines a result, in canonical JSON, so the same cell
gets the same key however the command that asked for it was spelled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def content_key(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Condition:
    """One test condition. `kind` is clean | corruption | missing | mixed."""

    kind: str
    modality: str = "all"  # the corrupted / dropped modality; "all" when not one
    corruption: str = "none"
    severity: int = 0
    missing_pattern: str = "none"  # none | drop | random
    missing_rate: float = 0.0
    mixed: tuple[tuple[str, str], ...] = ()  # (modality, corruption) pairs for kind=mixed
    mixed_probability: float = 0.0

    @property
    def label(self) -> str:
        if self.kind == "clean":
            return "clean"
        if self.kind == "corruption":
            return f"{self.modality}:{self.corruption}@{self.severity}"
        if self.kind == "missing":
            if self.missing_pattern == "drop":
                return f"missing:{self.modality}"
            return f"missing:rate={self.missing_rate:g}"
        return f"mixed:{self.corruption}@{self.severity}"

    def as_dict(self) -> dict[str, Any]:
        d = {
            "kind": self.kind, "modality": self.modality, "corruption": self.corruption,
            "severity": self.severity, "missing_pattern": self.missing_pattern,
            "missing_rate": self.missing_rate,
        }
        if self.kind == "mixed":
            d["mixed"] = [list(p) for p in self.mixed]
            d["mixed_probability"] = self.mixed_probability
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Condition:
        d = dict(d)
        d["mixed"] = tuple(tuple(p) for p in d.get("mixed", ()))
        return cls(**d)


CLEAN = Condition("clean", modality="none")


@dataclass(frozen=True)
class Job:
    """One training run: (dataset, method, hyper-parameters, seed, train condition)."""

    dataset: str
    dataset_version: str
    method: str
    family: str
    params: dict[str, Any] = field(hash=False)
    train_config: dict[str, Any] = field(hash=False)
    seed: int = 0
    train_condition: str = "clean"

    @property
    def key(self) -> str:
        return content_key({
            "dataset": [self.dataset, self.dataset_version], "method": self.method,
            "params": self.params, "train": self.train_config, "seed": self.seed,
            "train_condition": self.train_condition,
        })


@dataclass(frozen=True)
class Cell:
    job: Job
    condition: Condition
    backends: dict[str, str] = field(hash=False, default_factory=dict)  # corruption -> backend

    @property
    def data_key(self) -> str:
        """Key of the test *inputs*: shared by every method, so all see identical data."""
        return content_key({
            "dataset": [self.job.dataset, self.job.dataset_version], "seed": self.job.seed,
            "condition": self.condition.as_dict(), "backends": self.backends,
        })

    @property
    def key(self) -> str:
        return content_key({"job": self.job.key, "data": self.data_key})
