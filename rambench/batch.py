"""The batch every method sees: inputs and a presence mask per modality, labels, sample ids."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Batch:
    inputs: dict[str, Tensor]  # modality -> float tensor; an absent input is zero-filled
    present: dict[str, Tensor]  # modality -> bool (B,): False where the modality is missing
    y: Tensor | None  # long (B,); None in a test-time adaptation stream (no labels)
    index: Tensor  # long (B,): sample ids within the split, for per-sample randomness

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            inputs={m: x.to(device, non_blocking=True) for m, x in self.inputs.items()},
            present={m: p.to(device, non_blocking=True) for m, p in self.present.items()},
            y=None if self.y is None else self.y.to(device, non_blocking=True),
            index=self.index.to(device, non_blocking=True),
        )

    def with_missing(self, missing: dict[str, Tensor]) -> Batch:
        """A copy where `missing[m]` (bool (B,)) marks samples whose modality m is dropped."""
        inputs, present = dict(self.inputs), dict(self.present)
        for m, drop in missing.items():
            inputs[m] = zero_filled(inputs[m], drop)
            present[m] = present[m] & ~drop
        return Batch(inputs, present, self.y, self.index)


def zero_filled(x: Tensor, drop: Tensor) -> Tensor:
    """`x` (B, ...) with the rows where `drop` (bool (B,)) is True multiplied by 0: how an
    absent input is zero-filled."""
    return x * (~drop).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def mask_absent(features: Mapping[str, Tensor],
                present: Batch | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`features` (modality -> (B, ...)) with the rows of absent modalities set to 0
    (`present` is a Batch or its `present` dict: modality -> bool (B,)), so that what an
    absent input's zero-filled values make of an encoder never reaches the prediction.
    Rows are replaced, not multiplied: a non-finite feature of an absent input gives 0
    too; gradients reach the present rows only. Modalities not in `features` are ignored."""
    flags = present.present if isinstance(present, Batch) else present
    out = {}
    for m, f in features.items():
        keep = flags[m].to(device=f.device, dtype=torch.bool)
        out[m] = torch.where(keep.view(-1, *([1] * (f.dim() - 1))), f, f.new_zeros(()))
    return out
