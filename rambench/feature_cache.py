"""Encoder outputs of unchanged test inputs, computed once per trained model and reused.

A cell that corrupts the audio feeds the same images as the clean cell, and a cell that
drops the audio feeds the same images too: a trained model's image encoder then gives the
same features, batch for batch. While a model predicts (`rambench.evaluate.predict`), the
cache stands in front of the `forward` and `tokens` of each of its `encoders`: a call on a
batch of a modality's *clean* test inputs (the split's own array, the evaluation's batch
rows) returns the stored output of the first such call. Any other call (a corrupted input,
an encoder called on something else than the batch's input tensor) computes as usual.

A batch with missing samples feeds its modality zero-filled in those rows
(`rambench.batch.zero_filled`). Its output is assembled row by row from two stored
outputs of the same batch rows: the clean one, and the one of the batch with every row
zero-filled (which a cell that drops the modality computes anyway).

The outputs are bit for bit the ones computed without the cache. A stored output is the
same module's on the same input values of the same shape. An assembled one also needs a
sample's features to depend on that sample alone: the same operations on the same values
at the same row of a batch of the same shape, whatever the other rows hold. This holds for
per-sample encoders in eval mode (convolutions, linear layers, batch norm with running
statistics, attention within a sample). A method whose encoders are not deterministic
functions of each sample in eval mode (dropout at test time, statistics over the batch)
sets `reuse_features = False`. `RAMBENCH_FEATURE_REUSE=0` turns reuse off (to measure what
it saves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rambench._fs import switched_off
from rambench.batch import zero_filled
from rambench.memory import MemoryBudget


def reuse_enabled() -> bool:
    """False where `RAMBENCH_FEATURE_REUSE` is 0/false/no/off."""
    return not switched_off("RAMBENCH_FEATURE_REUSE")


@dataclass(frozen=True)
class _Offer:
    key: tuple  # (source array, batch rows)
    tensor: Tensor  # what the batch feeds the encoder
    clean: Tensor  # the batch's clean inputs (`tensor` itself where nothing is missing)
    drop: Tensor | None  # bool (B,): the rows zero-filled in `tensor`; None: none is


class FeatureCache:
    """Per-model encoder outputs of clean test batches (and of those batches zero-filled),
    as many as `memory` holds (past that, outputs are computed and not stored); `release`
    gives their memory back."""

    def __init__(self, memory: MemoryBudget | None = None):
        self.memory = memory or MemoryBudget()
        self.bytes = self.hits = self.misses = 0
        self.refused = False  # an output was not stored for lack of room
        self._entries: dict[tuple, Tensor] = {}
        self._held: dict[int, Any] = {}  # keeps every keyed object alive, so ids stay unique
        self._offered: dict[str, _Offer] = {}

    def release(self) -> None:
        """Drop every stored output and give its memory back."""
        self.memory.give(self.bytes)
        self.bytes = 0
        self._entries.clear()
        self._held.clear()

    def _id(self, obj: Any) -> int:
        self._held.setdefault(id(obj), obj)
        return id(obj)

    def offer(self, inputs: Mapping[str, Tensor], clean: Mapping[str, np.ndarray],
              rows: tuple[int, int], unmasked: Mapping[str, Tensor] | None = None,
              drop: Mapping[str, Tensor] | None = None) -> None:
        """The batch about to be predicted: `inputs` (modality -> tensor), of which the
        modalities in `clean` come from these source arrays, rows [start, stop), unchanged
        or, for a modality in `drop` (bool (B,)), `unmasked[m]` zero-filled where True."""
        drop = drop or {}
        self._offered = {
            m: _Offer((self._id(source), rows), inputs[m],
                      (unmasked or inputs)[m] if m in drop else inputs[m], drop.get(m))
            for m, source in clean.items()}

    @contextmanager
    def attached(self, method: nn.Module) -> Iterator[None]:
        """While inside, the encoders of `method` consult the cache."""
        encoders = getattr(method, "encoders", None)
        if not getattr(method, "reuse_features", True) or not isinstance(encoders, nn.ModuleDict):
            yield
            return
        patched = []
        for modality, encoder in encoders.items():
            for name in ("forward", "tokens"):
                if callable(getattr(encoder, name, None)) and name not in vars(encoder):
                    setattr(encoder, name, self._wrap(encoder, modality, name,
                                                      getattr(encoder, name)))
                    patched.append((encoder, name))
        try:
            yield
        finally:
            for encoder, name in patched:
                delattr(encoder, name)
            self._offered = {}

    def _wrap(self, encoder: nn.Module, modality: str, name: str,
              compute: Callable[..., Tensor]) -> Callable[..., Tensor]:
        def cached(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            offer = self._offered.get(modality)
            if args or kwargs or offer is None or offer.tensor is not x:
                return compute(x, *args, **kwargs)
            key = (self._id(encoder), name, *offer.key)
            if offer.drop is None:
                out, stored = self._stored(key, lambda: compute(x))
                return out.clone() if stored else out  # a caller may edit it in place
            filled = (*key, "zero-filled")
            if self.refused and not (key in self._entries and filled in self._entries):
                self.misses += 1
                return compute(x)  # the two outputs would not both be kept
            clean, _ = self._stored(key, lambda: compute(offer.clean))
            zeros, _ = self._stored(filled, lambda: compute(
                zero_filled(offer.clean, torch.ones_like(offer.drop))))
            return torch.where(offer.drop.view(-1, *([1] * (clean.dim() - 1))), zeros, clean)

        return cached

    def _stored(self, key: tuple, compute: Callable[[], Tensor]) -> tuple[Tensor, bool]:
        """The stored output under `key` (and True), else `compute()`, stored (a copy) if
        the budget holds it (and False)."""
        hit = self._entries.get(key)
        if hit is not None:
            self.hits += 1
            return hit, True
        self.misses += 1
        out = compute()
        size = out.element_size() * out.nelement() if isinstance(out, Tensor) else None
        if size is not None and self.memory.take(size):
            self._entries[key] = out.detach().clone()
            self.bytes += size
        else:
            self.refused = True
        return out, False
