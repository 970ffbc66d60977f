"""The dataset interface: what a dataset declares and what it hands to the harness.

A dataset returns *raw* inputs (uint8 images, float32 waveforms), because corruptions act
on raw data; the encoders own feature extraction (scaling, spectrograms).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rambench.batch import Batch
from rambench.registry import Registry

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ModalitySpec:
    name: str
    kind: str  # "image": uint8 (N, H, W, C) | "audio": float32 (N, T) in [-1, 1]
    shape: tuple[int, ...]  # per-sample shape
    encoder: str  # default encoder name
    sample_rate: int | None = None  # audio only
    encoder_options: tuple[tuple[str, Any], ...] = ()  # e.g. spectrogram settings


@dataclass
class Split:
    """One split held in memory as numpy arrays."""

    inputs: dict[str, np.ndarray]
    y: np.ndarray  # int64 (N,)
    groups: np.ndarray | None = None  # e.g. speaker ids, for disjointness checks
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.y.shape[0])


class Dataset(ABC):
    name: str
    version: str  # bump whenever the data or its preprocessing changes: it is in every key
    description: str
    modalities: dict[str, ModalitySpec]
    class_names: tuple[str, ...]
    train_defaults: dict[str, Any] = {}  # TrainConfig values for this dataset (train.* keys)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @abstractmethod
    def split(self, name: str) -> Split:
        """The split `name` (one of SPLITS)."""


datasets: Registry[type[Dataset]] = Registry(
    "dataset", ["rambench.datasets.avdigits", "rambench.datasets.real"])


def to_batch(split: Split, kinds: dict[str, str], idx: np.ndarray, inputs=None) -> Batch:
    """Rows `idx` of `split` (or of the replacement `inputs` arrays) as a float Batch."""
    arrays = inputs if inputs is not None else split.inputs
    tensors = {}
    for m, kind in kinds.items():
        x = torch.from_numpy(np.ascontiguousarray(arrays[m][idx]))
        if kind == "image":  # uint8 (N, [T,] H, W, C) -> float (N, [T,] C, H, W) in [0, 1]
            x = x.movedim(-1, -3).float().div_(255.0)
        tensors[m] = x.float()
    n = len(idx)
    present = {m: torch.ones(n, dtype=torch.bool) for m in kinds}
    return Batch(tensors, present, torch.from_numpy(split.y[idx]), torch.from_numpy(idx))
