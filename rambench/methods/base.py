"""The method interface: an nn.Module with `training_loss(batch)` and `forward(batch)`.

The harness owns everything else (optimiser, schedule, epochs, device, seeds, files, the
grid). A method only declares its hyper-parameters as a dataclass `Params`, so that the
harness can set them from `--set name.key=value` or a grid file and record them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from rambench.batch import Batch
from rambench.registry import Registry

FAMILIES = ("reference", "vanilla", "augmentation", "consistency", "uncertainty", "imbalance")


@dataclass(frozen=True)
class MethodContext:
    """What the harness tells a method about the data: modalities, classes, encoders."""

    modalities: tuple[str, ...]
    num_classes: int
    feature_dim: int
    make_encoder: Callable[[str], nn.Module]  # modality -> module mapping inputs to (B, dim)


@dataclass
class NoParams:
    pass


class Method(nn.Module):
    """Base class. Subclasses set `family`, `citation` and optionally `Params`."""

    family: ClassVar[str] = "vanilla"
    citation: ClassVar[str] = ""
    # The authors' code this implementation follows, "owner/repo@commit:path" ("" for none).
    reference: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams

    def __init__(self, ctx: MethodContext, params: Any = None):
        super().__init__()
        self.ctx = ctx
        self.params = params if params is not None else self.Params()
        self.encoders = nn.ModuleDict({m: ctx.make_encoder(m) for m in self.used_modalities()})

    def used_modalities(self) -> tuple[str, ...]:
        """The modalities this method reads (unimodal baselines override this)."""
        return self.ctx.modalities

    def encode(self, batch: Batch) -> dict[str, Tensor]:
        return {m: enc(batch.inputs[m]) for m, enc in self.encoders.items()}

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Losses for one training batch; must hold `loss` (the one to minimise)."""
        raise NotImplementedError

    def forward(self, batch: Batch) -> Tensor:
        """Class logits (B, num_classes) for a batch."""
        raise NotImplementedError

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        """Hook for schedules inside a loss (e.g. an annealed KL weight); default: nothing."""

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


methods: Registry[type[Method]] = Registry(
    "method", ["rambench.methods.raml", "baselines"]
)


def params_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)
