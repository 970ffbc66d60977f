"""READ (baselines/read.py) against the reference's formulas: its loss recomputed in numpy,
one Adam step on the fusion attention's q, k, v projections of a tiny RAML checked against
an independent float64 re-implementation of RAML's token fusion, the prediction made after
the step, the methods it declines, its defaults, labels never used, and a harness run."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.late_fusion import LateFusion
from baselines.read import READ, READParams, read_loss
from rambench.batch import Batch
from rambench.methods import MethodContext
from rambench.methods.raml import RAML, RAMLParams
from tests.helpers import invoke_cli, linear_context

MODS = ("audio", "visual")
TOKENS = {"audio": 3, "visual": 2}  # tokens per modality (different, as in RAML's maps)
DIM, CLASSES, WIDTH, HEADS, LAYERS = 4, 3, 8, 2, 2
EPS_LN = 1e-5  # nn.LayerNorm's default eps
EPS_ADAM = 1e-8  # torch.optim.Adam's default eps
ADAPTED = {f"fusion.encoder.layers.{i}.self_attn.in_proj_{k}"
           for i in range(LAYERS) for k in ("weight", "bias")}


class TokenInputs(nn.Module):
    """A test encoder: inputs are already tokens (B, N, d); forward pools them."""

    def forward(self, x):
        return x.mean(dim=1)

    def tokens(self, x):
        return x


def tiny_raml(seed=0) -> RAML:
    """RAML with its default mechanisms (token fusion, clamp, gate), small sizes."""
    torch.manual_seed(seed)
    ctx = MethodContext(MODS, CLASSES, DIM, lambda m: TokenInputs())
    net = RAML(ctx, RAMLParams(width=WIDTH, heads=HEADS, layers=LAYERS, max_tokens=4))
    with torch.no_grad():  # embeddings and missing tokens of the size of the projections
        for p in (net.fusion.modality_embedding, net.fusion.position_embedding,
                  net.fusion.missing_tokens):
            p.normal_(0.0, 0.5)
    return net.eval()


def stream(n=6, seed=1, absent=(2,)) -> Batch:
    """An unlabelled batch; the audio of the samples `absent` is missing (zero-filled)."""
    g = torch.Generator().manual_seed(seed)
    inputs = {m: 2 * torch.randn(n, TOKENS[m], DIM, generator=g) for m in MODS}
    present = {m: torch.ones(n, dtype=torch.bool) for m in MODS}
    present["audio"][list(absent)] = False
    inputs["audio"][list(absent)] = 0.0
    return Batch(inputs, present, None, torch.arange(n))


# --------------------------------------------------------- the reference, in float64


def numpy_read_loss(logits: np.ndarray, gamma: float, lam: float) -> float:
    """READ.py lines 52-61 in float64: p = softmax; L_ra = mean p_max (1 - log p_max +
    log gamma); s = sum_i p_i; L_bal = -sum softmax(s) log softmax(s); L_ra - lam L_bal."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    p_max = p.max(1)
    l_ra = np.mean(p_max * (1.0 - np.log(p_max) + np.log(gamma)))
    s = p.sum(0)
    q = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    l_bal = -(q * np.log(q)).sum()
    return float(l_ra - lam * l_bal)


def torch64_read_loss(logits, gamma=1 / math.e, lam=1.0):
    """The same in float64 torch ops, for autograd."""
    p = torch.exp(logits - torch.logsumexp(logits, 1, keepdim=True))
    p_max = p.max(1).values
    l_ra = (p_max * (1.0 - torch.log(p_max) + math.log(gamma))).mean()
    s = p.sum(0)
    log_q = s - torch.logsumexp(s, 0)
    return l_ra + lam * (log_q.exp() * log_q).sum()


def layer_norm(x, prefix, w):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS_LN) * w[prefix + ".weight"] + w[prefix + ".bias"]


def linear(x, prefix, w):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def raml_forward64(net: RAML, batch: Batch, in_proj: dict) -> torch.Tensor:
    """RAML's test-time path (clamp constraint, gate, token fusion) written out in float64
    from the state dict, with the attention in-projections taken from `in_proj` (name ->
    float64 tensor, possibly requiring grad). Independent of nn.TransformerEncoderLayer."""
    w = {k: v.detach().double() for k, v in net.state_dict().items()}
    w.update(in_proj)
    r = math.sqrt(DIM)
    scaled, z, conf = {}, {}, []
    for m in MODS:
        t = batch.inputs[m].double()
        norm = t.mean(1).norm(dim=1, keepdim=True)
        scaled[m] = t * torch.clamp(r / norm, max=1.0).unsqueeze(-1)
        z[m] = scaled[m].mean(1)
        c = F.softmax(linear(z[m], f"heads.{m}", w), dim=1).max(1).values
        conf.append(torch.where(batch.present[m], c, torch.full_like(c, 1.0 / CLASSES)))
    conf = torch.stack(conf, 1)
    gate = len(MODS) * conf / conf.sum(1, keepdim=True)
    parts, bias = [], []
    for i, m in enumerate(MODS):
        n = TOKENS[m]
        x = linear(scaled[m], "fusion.project", w)
        absent = ~batch.present[m]
        x[absent] = w["fusion.missing_tokens"][i].expand(int(absent.sum()), n, WIDTH)
        parts.append(x + w["fusion.modality_embedding"][i] + w["fusion.position_embedding"][:n])
        bias.append(gate[:, i:i + 1].log().expand(-1, n))
    x, bias = torch.cat(parts, 1), torch.cat(bias, 1)
    b, length, hd = x.shape[0], x.shape[1], WIDTH // HEADS
    for layer in range(LAYERS):
        pre = f"fusion.encoder.layers.{layer}"
        qkv = x @ w[f"{pre}.self_attn.in_proj_weight"].T + w[f"{pre}.self_attn.in_proj_bias"]
        q, k, v = (u.reshape(b, length, HEADS, hd).transpose(1, 2) for u in qkv.split(WIDTH, -1))
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + bias[:, None, None, :]
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, length, WIDTH)
        x = layer_norm(x + linear(out, f"{pre}.self_attn.out_proj", w), f"{pre}.norm1", w)
        ff = linear(torch.relu(linear(x, f"{pre}.linear1", w)), f"{pre}.linear2", w)
        x = layer_norm(x + ff, f"{pre}.norm2", w)
    means = torch.stack([y.mean(1) for y in x.split(list(TOKENS.values()), 1)], 1)
    pooled = (means * (gate / gate.sum(1, keepdim=True)).unsqueeze(-1)).sum(1)
    return linear(layer_norm(pooled, "fusion.norm", w), "fusion.classifier", w)


def in_proj_of(net, requires_grad=False):
    return {k: v.detach().double().clone().requires_grad_(requires_grad)
            for k, v in net.state_dict().items() if k in ADAPTED}


# ------------------------------------------------------------------------------ tests


def test_read_loss_matches_the_reference_formula_in_float64():
    g = np.random.default_rng(0)
    logits = g.normal(scale=3.0, size=(7, 5)).astype(np.float32)
    for gamma, lam in [(math.exp(-1), 1.0), (0.6, 0.0), (0.2, 2.5)]:
        got = read_loss(torch.from_numpy(logits), gamma, lam).item()
        # float32 softmax/log/sums of a few dozen O(1) terms: relative error ~1e-7 per op
        assert got == pytest.approx(numpy_read_loss(logits.astype(np.float64), gamma, lam),
                                    rel=1e-5, abs=1e-6)


def test_the_reliability_term_sharpens_confident_samples_and_flattens_noisy_ones():
    # dL_ra/dp_max = log gamma - log p_max: below the threshold gamma a descent step
    # lowers the top logit, above it raises it (balance off to isolate the term)
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.3, 0.0, 0.0]], requires_grad=True)
    read_loss(logits, gamma=0.5, balance=0.0).backward()
    p_max = logits.softmax(1).max(1).values
    assert p_max[0] > 0.5 > p_max[1]
    assert logits.grad[0, 0] < 0 < logits.grad[1, 0]


def test_one_step_adapts_only_the_fusion_qkv_and_predicts_after_the_step():
    net = tiny_raml()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batch = stream()
    lr = 1e-2  # a visible step, so the post-step prediction differs from the pre-step one
    read = READ(net, READParams(lr=lr))
    assert set(read.names) == ADAPTED
    assert {n for n, p in net.named_parameters() if p.requires_grad} == ADAPTED
    captured = {}
    for name, p in zip(read.names, read.parameters, strict=True):
        p.register_hook(lambda g, name=name: captured.__setitem__(name, g.double().clone()))

    logits = read.adapt(batch)

    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == ADAPTED  # nothing else moved (encoders' buffers included)
    assert not net.training
    # the gradient against autograd on an independent float64 forward and loss
    old = {k: before[k].double().requires_grad_(True) for k in sorted(ADAPTED)}
    loss64 = torch64_read_loss(raml_forward64(net, batch, old))
    grads = dict(zip(old, torch.autograd.grad(loss64, list(old.values())), strict=True))
    scale = max(g.abs().max().item() for g in grads.values())
    for name, g64 in grads.items():
        # float32 forward and backward through two layers: errors ~1e-6 of the largest
        np.testing.assert_allclose(captured[name].numpy(), g64.numpy(), atol=1e-4 * scale)
    # Adam's first step, both moments bias-corrected: lr * g / (|g| + eps), per element
    for name in ADAPTED:
        g, start = captured[name], before[name].double()
        step = net.state_dict()[name].double() - start
        np.testing.assert_allclose(step.numpy(), (-lr * g / (g.abs() + EPS_ADAM)).numpy(),
                                   atol=1e-6)
        large = grads[name].abs() > 1e-3 * scale  # where float32 keeps the sign: lr sign(g)
        assert large.sum() > len(large.flatten()) // 2
        np.testing.assert_allclose(step[large].numpy(), -lr * grads[name][large].sign().numpy(),
                                   atol=lr * 1e-3)
    # the prediction is the forward AFTER the step (run_read.py line 165 scores outputs[1])
    after = raml_forward64(net, batch, in_proj_of(net)).detach().numpy()
    pre = raml_forward64(net, batch, {k: v.detach() for k, v in old.items()}).detach().numpy()
    np.testing.assert_allclose(logits.double().numpy(), after, atol=1e-5)  # float32 forward
    assert np.abs(after - pre).max() > 1e-3
    with torch.no_grad():
        assert torch.equal(logits, net(batch))


def test_the_adapted_state_carries_over_to_the_next_batch():
    net = tiny_raml()
    origin = in_proj_of(net)
    lr = 1e-2
    read = READ(net, READParams(lr=lr))
    captured = {}
    for name, p in zip(read.names, read.parameters, strict=True):
        p.register_hook(lambda g, name=name: captured.setdefault(name, []).append(g.double()))
    read.adapt(stream(seed=1))
    start = in_proj_of(net, requires_grad=True)
    second = stream(seed=2, absent=())
    read.adapt(second)
    loss64 = torch64_read_loss(raml_forward64(net, second, start))  # at the adapted weights
    grads = torch.autograd.grad(loss64, list(start.values()))
    scale = max(g.abs().max().item() for g in grads)
    for name, g64 in zip(start, grads, strict=True):
        g1, g2 = captured[name]
        np.testing.assert_allclose(g2.numpy(), g64.numpy(), atol=1e-4 * scale)
        # Adam's second step on this batch's gradient alone, with the moments of the first:
        # m = 0.9 (0.1 g1) + 0.1 g2, v = 0.999 (0.001 g1^2) + 0.001 g2^2, bias-corrected
        m = (0.09 * g1 + 0.1 * g2) / (1 - 0.9 ** 2)
        v = (0.000999 * g1 ** 2 + 0.001 * g2 ** 2) / (1 - 0.999 ** 2)
        first = -lr * g1 / (g1.abs() + EPS_ADAM)
        expected = origin[name] + first - lr * m / (v.sqrt() + EPS_ADAM)
        np.testing.assert_allclose(in_proj_of(net)[name].numpy(), expected.numpy(), atol=1e-6)


def test_steps_repeat_forward_and_step_on_the_same_batch():
    batch = stream()
    one, two = tiny_raml(), tiny_raml()
    twice = READ(one, READParams(lr=1e-2))
    twice.adapt(batch)
    first = twice.adapt(batch)
    logits = READ(two, READParams(lr=1e-2, steps=2)).adapt(batch)
    torch.testing.assert_close(logits, first)
    for k, v in one.state_dict().items():
        torch.testing.assert_close(two.state_dict()[k], v)


def test_read_declines_a_method_without_attention_fusion():
    late = LateFusion(linear_context())
    assert "TokenFusion" in READ.supports(late)
    concat = RAML(linear_context(), RAMLParams(fusion="concat", token_corruption=0.0))
    assert "attention-based fusion" in READ.supports(concat)
    assert READ.supports(tiny_raml()) is None
    with pytest.raises(ValueError, match="TokenFusion"):
        READ(late)


def test_defaults_are_the_reference_ones():
    p = READParams()
    assert p.batch_size == 64  # run_read.py line 29
    assert p.lr == 1e-4  # run_read.py lines 27 and 147
    assert p.gamma == math.exp(-1)  # TTA/READ.py line 57
    assert p.balance == 1.0  # TTA/READ.py line 61: loss_ra - 1 * loss_bal
    assert p.steps == 1  # TTA/READ.py line 14
    optimiser = READ(tiny_raml()).optimiser
    assert isinstance(optimiser, torch.optim.Adam)  # run_read.py lines 147-149
    d = optimiser.defaults
    assert (d["lr"], d["betas"], d["weight_decay"], d["eps"]) == (1e-4, (0.9, 0.999), 0.0,
                                                                  EPS_ADAM)
    assert READ.reference.startswith("XLearning-SCU/2024-ICLR-READ@")
    commit = READ.reference.split("@")[1].split(":")[0]
    assert len(commit) == 40 and int(commit, 16) >= 0
    for bad in (dict(lr=0.0), dict(steps=0), dict(gamma=0.0), dict(balance=-1.0)):
        with pytest.raises(ValueError):
            READParams(**bad)


def test_labels_are_never_used():
    batch = stream()
    labelled = Batch(batch.inputs, batch.present, torch.tensor([0, 1, 2, 0, 1, 2]),
                     batch.index)
    a, b = tiny_raml(), tiny_raml()
    got = READ(a, READParams(lr=1e-2)).adapt(batch)  # y is None, as the harness passes it
    torch.testing.assert_close(READ(b, READParams(lr=1e-2)).adapt(labelled), got,
                               rtol=0, atol=0)
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k


@pytest.mark.slow  # the default suite: test_check's raml+read contract and test_tta's run
def test_raml_read_runs_through_the_harness(tmp_path):
    (tmp_path / "grid.yaml").write_text("conditions:\n  clean: true\n")
    invoke_cli("run", "--method", "raml+read", "--grid", "grid.yaml", "--limit", "60",
               "--epochs", "1", "--study", "s", cwd=tmp_path)
    records = [json.loads(p.read_text()) for p in (tmp_path / "results/s/records").glob("*.json")]
    assert len(records) == 1
    adaptation = records[0]["method"]["adaptation"]
    assert adaptation["name"] == "read"
    assert adaptation["params"]["lr"] == 1e-4 and adaptation["params"]["batch_size"] == 64
    assert records[0]["method"]["name"] == "raml"
