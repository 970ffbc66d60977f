"""The test-time adaptation interface: an `Adaptation` changes a trained method online on
the unlabelled test stream of one cell.

A study names an adapted method `BASE+ADAPTATION` (`late_fusion+tent`,
`raml[norm=hard]+tent[lr=0.0001]`): BASE is trained exactly as it is alone (the same
training job and checkpoint), and each of its test cells is evaluated again through the
adaptation. The harness gives the adaptation a fresh copy of the trained model for every
cell (the state is reset between cells), feeds it the cell's test samples in their fixed
order in batches of `params.batch_size`, and records the outputs `adapt` returns. The
batches carry no labels (`batch.y` is None): adaptation is unsupervised by construction.

An adaptation declares `Params` (a dataclass with at least `batch_size`), `citation`,
`reference` (`owner/repo@commit:path`), optionally `supports(method)`, and implements
`adapt(batch) -> logits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from rambench.batch import Batch
from rambench.methods.base import Method
from rambench.registry import Registry


@dataclass
class AdaptationParams:
    batch_size: int = 64  # test samples per adaptation step (the stream's batch)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


class Adaptation:
    """Base class: adapts `method` (a copy owned by this object) on unlabelled batches."""

    citation: ClassVar[str] = ""
    reference: ClassVar[str] = ""  # "owner/repo@commit:path"
    Params: ClassVar[type] = AdaptationParams

    def __init__(self, method: Method, params: Any = None):
        self.method = method
        self.params = params if params is not None else self.Params()

    @classmethod
    def supports(cls, method: Method) -> str | None:
        """None if this adaptation can adapt `method`, else the reason it cannot."""
        return None

    def adapt(self, batch: Batch) -> Tensor:
        """Class logits (B, classes) for one batch of the test stream, adapting on it
        (`batch.y` is None)."""
        raise NotImplementedError

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


adaptations: Registry[type[Adaptation]] = Registry("adaptation", ["baselines"])
