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

    def provided(self) -> dict[str, dict[str, Any]]:
        """Corrupted test sets another benchmark's generators wrote, prepared beside the
        data (name -> modality, corruption, severity, digest of the array); none here."""
        return {}

    def provided_inputs(self, name: str) -> np.ndarray:
        """A provided test set's inputs, row for row the test split's."""
        raise KeyError(f"{self.name} has no provided test set {name!r}")


datasets: Registry[type[Dataset]] = Registry(
    "dataset", ["rambench.datasets.avdigits", "rambench.datasets.real"])


def _as_float(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Raw rows as the encoders' input: images uint8 (N, [T,] H, W, C) -> float
    (N, [T,] C, H, W) in [0, 1]; audio as float32."""
    if kind == "image":
        return x.movedim(-1, -3).float().div_(255.0)
    return x.float()


def to_batch(split: Split, kinds: dict[str, str], idx: np.ndarray, inputs=None) -> Batch:
    """Rows `idx` of `split` (or of the replacement `inputs` arrays) as a float Batch."""
    arrays = inputs if inputs is not None else split.inputs
    tensors = {m: _as_float(torch.from_numpy(np.ascontiguousarray(arrays[m][idx])), kind)
               for m, kind in kinds.items()}
    n = len(idx)
    present = {m: torch.ones(n, dtype=torch.bool) for m in kinds}
    return Batch(tensors, present, torch.from_numpy(split.y[idx]), torch.from_numpy(idx))


RESIDENT_SHARE = 0.5  # upload a split whole when it takes under this share of free memory


class Batcher:
    """Batches of a split (or of replacement `inputs` arrays), as `to_batch` makes them, on
    `device`.

    Resident (by default on a CUDA device whose free memory holds the arrays several times
    over): the raw arrays are uploaded once as they are (uint8 frames stay uint8, a
    quarter of float32) and a batch is an index on the device, converted there. Otherwise
    a batch is built on the CPU (in pinned memory on CUDA) and copied without blocking.
    Inputs drawn anew each epoch (clips with `reseed`) are never resident. Both paths give
    identical values: `resident=True` works on the CPU too, which is how tests check it."""

    def __init__(self, split: Split, kinds: dict[str, str], device: torch.device,
                 inputs: dict[str, np.ndarray] | None = None, resident: bool | None = None):
        self.split, self.kinds, self.device = split, kinds, device
        self.arrays = inputs if inputs is not None else split.inputs
        if any(hasattr(a, "reseed") for a in self.arrays.values()):
            resident = False
        elif resident is None:
            resident = device.type == "cuda" and sum(
                np.asarray(a).nbytes for a in self.arrays.values()) < RESIDENT_SHARE * \
                torch.cuda.mem_get_info(device)[0]
        self.resident = resident
        if resident:
            self.tensors = {m: torch.from_numpy(np.ascontiguousarray(self.arrays[m]))
                            .to(device) for m in kinds}
            self.y = torch.from_numpy(split.y).to(device)

    def __call__(self, idx: np.ndarray) -> Batch:
        from rambench.device import to_device

        if not self.resident:
            batch = to_batch(self.split, self.kinds, idx, self.arrays)
            if self.device.type == "cuda":
                batch.inputs = {m: x.pin_memory() for m, x in batch.inputs.items()}
            return to_device(batch, self.device)
        index = torch.from_numpy(np.asarray(idx)).to(self.device)
        tensors = {m: _as_float(self.tensors[m].index_select(0, index), kind)
                   for m, kind in self.kinds.items()}
        present = {m: torch.ones(len(idx), dtype=torch.bool, device=self.device)
                   for m in self.kinds}
        return to_device(Batch(tensors, present, self.y.index_select(0, index), index),
                         self.device)
