"""READ: test-time adaptation of the attention-based fusion with a reliability-aware loss.

M. Yang, Y. Li, C. Zhang, P. Hu, X. Peng, "Test-time Adaptation against Multi-modal
Reliability Bias", ICLR 2024. Follows the authors' code,
XLearning-SCU/2024-ICLR-READ@2f11912fe6959535928ba5754ce4d5a2cb2661b7 (the three files
below are unchanged since the code release 664ee214dc1d2abd13edd307866ca5c7867e4519):
- TTA/READ.py: configure_model (lines 109-119), collect_params (77-93), forward_and_adapt
  (43-74: forward 48-50, balance term 52-53, reliability term 55-59, total 61, optimiser
  step 63-67, the prediction re-computed after the step 69-72), READ.forward (25-34);
- run_read.py: the optimiser (147-149), the batch size (29), the evaluation loop (81-176:
  a freshly loaded model for every corruption x severity x seed, lines 105-126;
  `read_model.eval()` 153; the accuracy of `outputs[1]`, the post-step prediction, 165);
- models/cav_mae.py: the fusion attention (Attention 13-70: separate q, k, v projections
  for the fusion block, 22-23, initialised from the fused qkv projection on the first
  batch, 47-53; output projection `proj` 25, 67), one modality-shared fusion block
  `blocks_u` (146, 12 - 11 = 1 block) over the concatenated audio and video tokens
  (forward_eval 312-341).

Configuration: every parameter is frozen except the query, key and value projections
(weights and biases) of the fusion transformer's attention; the model stays in eval mode.
On each test batch, in stream order, with p_i = softmax(logits_i) over the K classes:

    L_ra  = (1/B) sum_i p_i^max (1 - log p_i^max + log gamma),   p_i^max = max_k p_ik
    s     = sum_i p_i                  (K,), the batch's summed probabilities
    L_bal = -sum_k q_k log q_k,        q = softmax(s)   (sic: a softmax of the sum)
    L     = L_ra - lambda L_bal        one optimiser step on L;
    the batch's prediction is a new forward pass AFTER the step (no gradient).

dL_ra/dp^max = log gamma - log p^max: minimising L_ra raises the confidence of a sample
whose p^max exceeds gamma and lowers it below gamma (the noisy predictions); gamma = 1/e
makes L_ra = mean_i -p_i^max log p_i^max. -L_bal pushes the batch's predictions towards
a uniform class balance. `steps` > 1 repeats forward-and-step on the same batch, the
prediction being the forward after the last step (READ.forward loops forward_and_adapt).
The adapted state and Adam's moments carry over to the next batch of the same cell
(online; the reference has no episodic reset); the harness resets between cells (a fresh
copy of the trained model), as run_read.py reloads the model.

Parameter mapping. The reference adapts `blocks_u.0.attn.{q,k,v}.{weight,bias}`: the
in-projection of the attention of CAV-MAE's modality-shared block, the one block whose
tokens are those of both modalities (its per-modality blocks, its output projection
`proj`, MLP and LayerNorms stay frozen). In rambench that attention is RAML's
`TokenFusion` (`rambench.models.fusion`): a transformer whose every layer attends over
the concatenated tokens of all modalities (the per-modality encoders play CAV-MAE's
modality-specific blocks). READ here adapts, in every layer `l` of every TokenFusion in
the method, `encoder.layers[l].self_attn.in_proj_weight` (3W, W) and `.in_proj_bias`
(3W): rows [0, W) are the query projection, [W, 2W) the key, [2W, 3W) the value, i.e.
exactly the reference's q, k, v split (Adam is elementwise, so updating the fused matrix
and the three parts is the same). Frozen: `self_attn.out_proj` (the reference's `proj`),
`linear1`/`linear2` (MLP), `norm1`/`norm2`, the token projection, modality and position
embeddings, missing tokens, final norm, classifier, and everything outside the fusion
(encoders, RAML's unimodal heads and gate). A method without a TokenFusion cannot be
adapted (`supports` says so).

Defaults (READParams): batch 64 (run_read.py line 29), Adam with lr 1e-4, betas
(0.9, 0.999), weight decay 0, eps torch's 1e-8 (run_read.py 147-149; `--lr` 27 has the
same 1e-4), gamma = exp(-1) (READ.py 57), lambda = 1 (READ.py 61), 1 step (READ.__init__
default, READ.py 14; run_read.py 151 keeps it).

Remaining deviations:
- the fusion is not CAV-MAE's: TokenFusion has `layers` (default 2) post-norm layers over
  small projected tokens, all of them fusion layers, so all of their in-projections are
  adapted (the reference's single fusion block is pre-norm); RAML's reliability gate adds
  log-weights of its frozen unimodal heads to the attention logits, which READ leaves as
  they are (the adapted queries and keys act before that bias);
- missing modalities: the reference has none (it corrupts one modality). Here an absent
  modality's tokens are TokenFusion's learned missing token (frozen), which the adapted
  attention sees like any other token;
- precision: the reference forwards under fp16 autocast with a GradScaler (which skips a
  step whose gradients overflow); here the forward runs in the harness's precision
  (float32 on CPU, bf16 autocast on CUDA, no scaler needed) and the loss in float32;
- the stream: the reference shuffles the test set (run_read.py 103) and averages five
  seeds; the harness feeds each cell's samples in their fixed order;
- eval mode: configure_model puts the model in train mode (READ.py 112) but run_read.py
  153 then calls `read_model.eval()`, which puts the wrapped model back in eval mode, so
  the reference adapts in eval mode, as here (CAV-MAE and TokenFusion have no dropout
  at test time either way; rambench's encoders keep their batch-norm running statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rambench.batch import Batch
from rambench.methods import Method
from rambench.methods.adaptation import Adaptation, AdaptationParams, adaptations
from rambench.models.fusion import TokenFusion


@dataclass
class READParams(AdaptationParams):
    batch_size: int = 64  # run_read.py line 29
    lr: float = 1e-4  # run_read.py line 147 (Adam, betas (0.9, 0.999), weight decay 0)
    gamma: float = math.exp(-1)  # READ.py line 57: the confidence threshold
    balance: float = 1.0  # READ.py line 61: lambda, the weight of the balance term
    steps: int = 1  # READ.py line 14

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1:
            raise ValueError("read.steps must be >= 1")
        if not self.lr > 0:
            raise ValueError("read.lr must be > 0")
        if not 0 < self.gamma <= 1:
            raise ValueError("read.gamma must be in (0, 1]")
        if not self.balance >= 0:
            raise ValueError("read.balance must be >= 0")


def reliability_term(logits: Tensor, gamma: float) -> Tensor:
    """L_ra = mean_i p_max,i (1 - log p_max,i + log gamma)."""
    confidence = logits.softmax(dim=1).amax(dim=1)
    return (confidence * (1.0 - confidence.log() + math.log(gamma))).mean()


def balance_term(logits: Tensor) -> Tensor:
    """L_bal = H(softmax(sum_i p_i)): the entropy of the softmax of the summed
    probabilities (as the reference computes it)."""
    summed = logits.softmax(dim=1).sum(dim=0)
    return -(summed.softmax(dim=0) * summed.log_softmax(dim=0)).sum()


def read_loss(logits: Tensor, gamma: float = math.exp(-1), balance: float = 1.0) -> Tensor:
    """READ's objective on a batch of logits (B, K): L_ra - balance * L_bal."""
    return reliability_term(logits, gamma) - balance * balance_term(logits)


def fusion_attention_parameters(method: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of the attention in-projections (query, key and value weights and
    biases) of every layer of every TokenFusion in `method`; empty if it has none."""
    names = {id(p): n for n, p in method.named_parameters()}
    out = []
    for fusion in (m for m in method.modules() if isinstance(m, TokenFusion)):
        for layer in fusion.encoder.layers:
            attention = layer.self_attn
            for p in (attention.in_proj_weight, attention.in_proj_bias):
                if p is not None:
                    out.append((names[id(p)], p))
    return out


@adaptations.register("read")
class READ(Adaptation):
    """READ (Yang et al., ICLR 2024): adapts the fusion attention's q, k, v projections."""

    citation = ("Yang et al., Test-time Adaptation against Multi-modal Reliability Bias, "
                "ICLR 2024")
    reference = "XLearning-SCU/2024-ICLR-READ@2f11912fe6959535928ba5754ce4d5a2cb2661b7:TTA/READ.py"
    Params = READParams

    @classmethod
    def supports(cls, method: Method) -> str | None:
        if not fusion_attention_parameters(method):
            return ("read adapts the query/key/value projections of an attention-based "
                    "fusion (a TokenFusion, e.g. raml with fusion=tokens) and the method "
                    "has none")
        return None

    def __init__(self, method: Method, params: READParams | None = None):
        super().__init__(method, params)
        reason = self.supports(method)
        if reason is not None:
            raise ValueError(reason)
        method.eval()
        method.requires_grad_(False)
        named = fusion_attention_parameters(method)
        self.names = [n for n, _ in named]
        self.parameters = [p.requires_grad_(True) for _, p in named]
        self.optimiser = torch.optim.Adam(self.parameters, lr=self.params.lr,
                                          betas=(0.9, 0.999), weight_decay=0.0)

    def loss(self, logits: Tensor) -> Tensor:
        return read_loss(logits.float(), self.params.gamma, self.params.balance)

    @torch.enable_grad()
    def adapt(self, batch: Batch) -> Tensor:
        for _ in range(self.params.steps):
            self.optimiser.zero_grad()
            self.loss(self.method(batch)).backward()
            self.optimiser.step()
        with torch.no_grad():
            return self.method(batch)
