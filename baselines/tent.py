"""Tent: test-time entropy minimisation on the normalisation layers' affine parameters.

D. Wang, E. Shelhamer, S. Liu, B. Olshausen, T. Darrell, "Tent: Fully Test-Time Adaptation
by Entropy Minimization", ICLR 2021. Follows the authors' code,
DequanWang/tent@7d236b42a3020f488a75d041f31a3f4ef4a521ea:tent.py (configure_model lines
96-110, collect_params 64-80, softmax_entropy 42-45, forward_and_adapt 48-61, Tent.forward
26-33) with the
CIFAR-10-C settings of cfgs/tent.yaml (@fc5705f2e4f2feaea73d70c2a4ddb0e5476b1bdb: Adam,
lr 1e-3, beta 0.9, weight decay 0, 1 step, batch 200) and the evaluation loop of
cifar10c.py (the model is reset for every corruption x severity, lines 35-43).

Configuration: every parameter is frozen except the affine scale and shift of the batch
normalisation layers, which normalise with the statistics of the current batch (running
statistics dropped). On each test batch, in stream order:

    logits = f(x);   L = mean_i H(softmax(logits_i)),  H(p) = -sum_k p_k log p_k;
    one optimiser step on L;   the batch's prediction is `logits` (before the step)

`steps` > 1 repeats forward-and-step on the same batch, the prediction being the last
forward's (as Tent.forward). The adapted state carries over to the next batch of the same
cell (online, `episodic = False`); `episodic = True` resets before every batch. The
harness resets between cells (a fresh copy of the trained model), as cifar10c.py does.

Remaining deviations:
- the reference puts the whole model in train mode; here only the batch normalisation
  layers are (the rest stays in eval mode), so that a method whose forward differs in
  training (e.g. PDF's test-time calibration) keeps its test-time behaviour. For models
  whose only mode-dependent layers are batch norms (the reference's ResNets, rambench's
  encoders: no dropout) the two are the same;
- BatchNorm1d/3d are adapted like BatchNorm2d (the reference collects BatchNorm2d only;
  rambench's encoders have BatchNorm2d only);
- a method without batch normalisation cannot be adapted (`supports` says so; the reference
  asserts the same in check_model).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method
from rambench.methods.adaptation import Adaptation, AdaptationParams, adaptations

BatchNorm = nn.modules.batchnorm._BatchNorm


@dataclass
class TentParams(AdaptationParams):
    batch_size: int = 200  # cfgs/tent.yaml TEST.BATCH_SIZE
    lr: float = 1e-3  # OPTIM.LR
    # OPTIM.METHOD; sgd as conf.py sets it: momentum 0.9, nesterov, dampening 0
    optimizer: Literal["adam", "sgd"] = "adam"
    steps: int = 1  # OPTIM.STEPS
    episodic: bool = False  # MODEL.EPISODIC

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1:
            raise ValueError("tent.steps must be >= 1")
        if not self.lr > 0:
            raise ValueError("tent.lr must be > 0")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError("tent.optimizer must be adam or sgd")


def softmax_entropy(logits: Tensor) -> Tensor:
    """H(softmax(logits)) per row (B,)."""
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)


def norm_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, BatchNorm)]


@adaptations.register("tent")
class Tent(Adaptation):
    """Tent (Wang et al., ICLR 2021): test-time entropy minimisation on batch-norm affines."""

    citation = "Wang et al., Tent: Fully Test-Time Adaptation by Entropy Minimization, ICLR 2021"
    reference = "DequanWang/tent@7d236b42a3020f488a75d041f31a3f4ef4a521ea:tent.py"
    Params = TentParams

    @classmethod
    def supports(cls, method: Method) -> str | None:
        if not any(m.affine for m in norm_layers(method)):
            return "tent adapts batch-normalisation layers and the method has none"
        return None

    def __init__(self, method: Method, params: TentParams | None = None):
        super().__init__(method, params)
        method.eval()
        method.requires_grad_(False)
        self.parameters: list[nn.Parameter] = []
        for layer in norm_layers(method):
            layer.train()  # batch statistics, in train and eval mode alike
            layer.track_running_stats = False
            layer.running_mean = None
            layer.running_var = None
            if layer.affine:
                layer.requires_grad_(True)
                self.parameters += [layer.weight, layer.bias]
        p = self.params
        self.optimiser = (torch.optim.Adam(self.parameters, lr=p.lr, betas=(0.9, 0.999),
                                           weight_decay=0.0) if p.optimizer == "adam" else
                          torch.optim.SGD(self.parameters, lr=p.lr, momentum=0.9,
                                          dampening=0.0, weight_decay=0.0, nesterov=True))
        self._initial = ([t.detach().clone() for t in self.parameters],
                         copy.deepcopy(self.optimiser.state_dict())) if p.episodic else None

    def _reset(self) -> None:
        weights, state = self._initial
        with torch.no_grad():
            for t, w in zip(self.parameters, weights, strict=True):
                t.copy_(w)
        self.optimiser.load_state_dict(state)

    @torch.enable_grad()
    def adapt(self, batch: Batch) -> Tensor:
        if self._initial is not None:
            self._reset()
        for _ in range(self.params.steps):
            logits = self.method(batch)
            loss = softmax_entropy(logits.float()).mean(0)
            loss.backward()
            self.optimiser.step()
            self.optimiser.zero_grad()
        return logits.detach()
