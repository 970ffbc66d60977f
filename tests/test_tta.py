"""The test-time adaptation track: Tent against its reference formulas, labels never reach
an adaptation, every cell starts from the trained model, and `BASE+ADAPTATION` studies
share the base's training job while keeping cells of their own."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from baselines.tent import Tent, TentParams, softmax_entropy
from rambench.config import AdaptationSpec
from rambench.datasets import Split
from rambench.evaluate import predict_adapted
from rambench.methods import Method, MethodContext
from rambench.methods.adaptation import Adaptation, AdaptationParams
from tests.helpers import assert_usage_error, invoke_cli, make_batch

MODS = ("audio", "visual")
EPS_BN = 1e-5  # nn.BatchNorm1d's default eps
EPS_ADAM = 1e-8  # torch.optim.Adam's default eps


class NormNet(Method):
    """Per modality Linear(5, 4) then BatchNorm1d(4); one linear head on the concatenation."""

    def __init__(self, ctx, params=None):
        super().__init__(ctx, params)
        self.head = nn.Linear(4 * len(ctx.modalities), ctx.num_classes)

    def forward(self, batch):
        return self.head(torch.cat([self.encoders[m](batch.inputs[m]) for m in MODS], 1))

    def training_loss(self, batch):
        return {"loss": nn.functional.cross_entropy(self(batch), batch.y)}


def norm_net(seed=0) -> NormNet:
    torch.manual_seed(seed)
    ctx = MethodContext(MODS, 3, 4, lambda m: nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4)))
    net = NormNet(ctx)
    with torch.no_grad():  # affine parameters away from (1, 0), running stats not the batch's
        for m in MODS:
            bn = net.encoders[m][1]
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.fill_(3.0)
            bn.running_var.fill_(9.0)
    return net.eval()


def stream(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return make_batch({m: torch.randn(n, 5, generator=g) for m in MODS}, [0, 1, 2, 0, 1, 2][:n])


def numpy_forward(net: NormNet, batch, gamma, beta):
    """The reference's forward in float64: batch statistics (biased variance), then the
    affine parameters `gamma`, `beta` (dicts by modality)."""
    parts, normed = [], {}
    for m in MODS:
        lin = net.encoders[m][0]
        u = batch.inputs[m].double().numpy() @ lin.weight.double().detach().numpy().T \
            + lin.bias.double().detach().numpy()
        xhat = (u - u.mean(0)) / np.sqrt(u.var(0) + EPS_BN)
        normed[m] = xhat
        parts.append(xhat * gamma[m] + beta[m])
    head = net.head
    logits = np.concatenate(parts, 1) @ head.weight.double().detach().numpy().T \
        + head.bias.double().detach().numpy()
    return logits, normed


def affine(net):
    return ({m: net.encoders[m][1].weight.double().detach().numpy().copy() for m in MODS},
            {m: net.encoders[m][1].bias.double().detach().numpy().copy() for m in MODS})


def entropy_gradients(net, logits, normed):
    """d mean_i H(softmax(logits_i)) / d gamma_m and / d beta_m, by hand:
    dH/dz_j = -p_j (log p_j + H), back through the head's columns of modality m."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    h = -(p * np.log(p)).sum(1, keepdims=True)
    dlogits = -p * (np.log(p) + h) / len(p)
    w = net.head.weight.double().detach().numpy()
    grads = {}
    for i, m in enumerate(MODS):
        dz = dlogits @ w[:, 4 * i:4 * (i + 1)]
        grads[m] = ((dz * normed[m]).sum(0), dz.sum(0))
    return grads


def test_softmax_entropy_by_hand():
    logits = torch.tensor([[0.0, 0.0], [np.log(3.0), 0.0]])
    # H(1/2, 1/2) = log 2;  H(3/4, 1/4) = -(3/4 log 3/4 + 1/4 log 1/4)
    expected = [np.log(2), -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))]
    np.testing.assert_allclose(softmax_entropy(logits).numpy(), expected, rtol=1e-6)


def test_tent_predicts_before_its_step_and_takes_one_adam_step_on_the_affines():
    net = norm_net()
    frozen = {k: v.clone() for k, v in net.state_dict().items()
              if "encoders" not in k or ".0." in k}  # linear layers and head
    gamma, beta = affine(net)
    batch = stream()
    tent = Tent(net, TentParams(lr=1e-3))
    logits = tent.adapt(batch).double().numpy()
    expected, normed = numpy_forward(net, batch, gamma, beta)
    # float32 forward of a few dozen multiply-adds on O(1) values: relative error ~1e-6
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    # Adam's first step is lr * g / (|g| + eps) (both moments bias-corrected), per element
    grads = entropy_gradients(net, expected, normed)
    new_gamma, new_beta = affine(net)
    for m in MODS:
        g_gamma, g_beta = grads[m]
        assert np.abs(g_gamma).min() > 1e-4  # far from eps: the step is lr * sign(g)
        np.testing.assert_allclose(new_gamma[m], gamma[m] - 1e-3 * g_gamma /
                                   (np.abs(g_gamma) + EPS_ADAM), atol=1e-6)
        np.testing.assert_allclose(new_beta[m], beta[m] - 1e-3 * g_beta /
                                   (np.abs(g_beta) + EPS_ADAM), atol=1e-6)
    for k, v in frozen.items():  # nothing but the normalisation affines moved
        assert torch.equal(net.state_dict()[k], v), k


@pytest.mark.parametrize("episodic", [False, True])
def test_the_next_batch_sees_the_adapted_affines_unless_episodic(episodic):
    net = norm_net()
    start = affine(net)
    tent = Tent(net, TentParams(episodic=episodic))
    tent.adapt(stream(seed=1))
    after_first = affine(net)
    second = stream(seed=2)
    logits = tent.adapt(second).double().numpy()
    gamma, beta = start if episodic else after_first
    np.testing.assert_allclose(logits, numpy_forward(net, second, gamma, beta)[0],
                               rtol=1e-5, atol=1e-5)


def test_tent_declines_a_method_without_batch_normalisation():
    ctx = MethodContext(MODS, 3, 4, lambda m: nn.Linear(5, 4))
    assert "batch-normalisation" in Tent.supports(NormNet(ctx))
    assert Tent.supports(norm_net()) is None


def split_of(n=10):
    rng = np.random.default_rng(0)
    return Split({m: rng.normal(size=(n, 5)).astype(np.float32) for m in MODS},
                 np.arange(n) % 3)


class Spy(Adaptation):
    """Records what it is given; predicts from the batch index."""

    seen: list = []

    def adapt(self, batch):
        Spy.seen.append((batch.y, batch.index.tolist()))
        return torch.nn.functional.one_hot(batch.index % 3, 3).float()


def test_labels_never_reach_an_adaptation_and_the_stream_keeps_its_order():
    Spy.seen = []
    kinds = {m: "audio" for m in MODS}
    probabilities = predict_adapted(norm_net(), AdaptationSpec(Spy, AdaptationParams(4)),
                                    split_of(10), kinds, torch.device("cpu"))
    assert [y for y, _ in Spy.seen] == [None, None, None]
    assert [idx for _, idx in Spy.seen] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert probabilities.argmax(1).tolist() == [i % 3 for i in range(10)]


def test_every_cell_starts_from_the_trained_model():
    net = norm_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    spec = AdaptationSpec(Tent, TentParams(batch_size=4))
    kinds = {m: "audio" for m in MODS}
    first = predict_adapted(net, spec, split_of(), kinds, torch.device("cpu"))
    again = predict_adapted(net, spec, split_of(), kinds, torch.device("cpu"))
    np.testing.assert_array_equal(first, again)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


GRID = """\
conditions:
  clean: true
  missing_modalities: [audio]
"""


def test_an_adapted_method_shares_the_base_training_and_has_cells_of_its_own(tmp_path):
    (tmp_path / "grid.yaml").write_text(GRID)
    args = ("run", "--method", "late_fusion", "--method", "late_fusion+tent[lr=0.01]",
            "--grid", "grid.yaml", "--limit", "60", "--epochs", "1", "--study", "s")
    out = invoke_cli(*args, cwd=tmp_path).stdout
    header = out.splitlines()[0]
    assert "late_fusion" in header and "late_fusion+tent[lr=0.01]" in header
    assert len(list((tmp_path / "results/s/checkpoints").glob("*.pt"))) == 1  # one training
    records = [json.loads(p.read_text()) for p in (tmp_path / "results/s/records").glob("*.json")]
    adapted = [r for r in records if r["method"]["adaptation"]]
    source = [r for r in records if not r["method"]["adaptation"]]
    assert len(adapted) == len(source) == 2
    assert {r["method"]["label"] for r in adapted} == {"late_fusion+tent[lr=0.01]"}
    assert adapted[0]["method"]["adaptation"]["params"]["lr"] == 0.01
    assert {r["provenance"]["job_key"] for r in records} == {source[0]["provenance"]["job_key"]}
    assert not {r["key"] for r in adapted} & {r["key"] for r in source}
    again = invoke_cli(*args, "--dry-run", cwd=tmp_path).stdout
    assert "4 cells, 4 done, 0 to do" in again
    table = invoke_cli("table", "--study", "s", cwd=tmp_path)  # the pairs are named
    assert ("test-time adaptation: late_fusion+tent[lr=0.01] is late_fusion adapted by "
            "tent[lr=0.01]") in table.stderr


@pytest.mark.parametrize("label, fragments", [
    ("late_fusion+nope", ["nope", "tent"]),
    ("late_fusion+", ["name a test-time adaptation", "tent"]),
    ("late_fusion+tent[lr=0]", ["tent.lr must be > 0"]),
    ("late_fusion+tent[steps=two]", ["steps"]),
])
def test_a_bad_adaptation_is_a_usage_error_naming_the_choices(tmp_path, label, fragments):
    result = invoke_cli("run", "--method", label, "--grid", "smoke", "--dry-run",
                        cwd=tmp_path, check=False)
    assert_usage_error(result, *fragments)
