"""MD (Multimodal Dynamics): parity with the authors' code on a fixed tiny batch, defaults,
gradient paths, absent modalities and a training smoke.

The numpy recomputations follow the pinned reference, MD.reference
(TencentAILabHealthcare/mmdynamics@06a2bb8a66953be77c53e6a027bc04193c5bdca4:model.py),
line by line, in float64 on the method's own weights and inputs.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.md import MD, MDParams
from rambench.errors import UsageError
from rambench.params import apply_overrides
from tests.helpers import (
    accuracy_on,
    blobs,
    identity_context,
    linear_context,
    make_batch,
    train_epochs,
)

MODS = ("audio", "visual")

# The method runs in float32, the recomputation in float64. Every compared value comes from
# at most four Linear layers of width <= 8 plus sigmoid / softmax / log-sum-exp, on O(1)
# inputs: float32 rounding (eps = 6e-8 per operation) accumulates to ~1e-6 relative at
# worst, so rtol = 1e-5 leaves a 10x margin; atol = 1e-6 covers entries that cancel to ~0.
RTOL, ATOL = 1e-5, 1e-6


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample CE (B,), nn.CrossEntropyLoss(reduction='none')."""
    m = logits.max(axis=1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    return lse - logits[np.arange(len(y)), y]


def linear(layer: torch.nn.Linear, x: np.ndarray) -> np.ndarray:
    return x @ np_(layer.weight).T + np_(layer.bias)


def _md(seed=3, **params) -> MD:
    torch.manual_seed(seed)
    params = {"hidden": 5, "dropout": 0.0, "sparsity_weight": 1.0, **params}  # the reference
    return MD(identity_context(dim=4, num_classes=3), MDParams(**params))


def _batch(seed=0, n=6, present=None):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return make_batch({m: 2 * torch.randn(n, 4, generator=g) for m in MODS}, y, present)


def _reference(md: MD, batch) -> dict:
    """model.py MMDynamic.forward (lines 47-71) in numpy, dropout 0. Where a modality is absent
    (rambench only) its block of the concatenation is 0 and its terms use present rows."""
    y = batch.y.numpy()
    gate, conf, logits, blocks = {}, {}, {}, []
    sparsity = mse = unimodal = 0.0
    for m in MODS:
        x = np_(batch.inputs[m])
        keep = batch.present[m].numpy()
        gate[m] = sigmoid(linear(md.gates[m], x))  # line 51: FeatureInfo
        feature = np.maximum(linear(md.hidden[m], x * gate[m]), 0.0)  # lines 52-55
        logits[m] = linear(md.heads[m], feature)  # line 56: TCPLogit
        conf[m] = linear(md.tcp[m], feature)[:, 0] * keep  # line 57: TCPConfidence
        blocks.append(feature * conf[m][:, None])  # line 58
        sparsity += gate[m][keep].mean()  # line 66: torch.mean(FeatureInfo)
        p_target = softmax(logits[m])[np.arange(len(y)), y][keep]  # lines 67-68
        mse += ((conf[m][keep] - p_target) ** 2).mean()  # line 69: F.mse_loss
        unimodal += cross_entropy(logits[m][keep], y[keep]).mean()  # line 69
    fused = linear(md.classifier, np.concatenate(blocks, axis=1))  # lines 60-61
    ce = cross_entropy(fused, y).mean()  # line 64
    return {"gate": gate, "confidence": conf, "logits": logits, "fused": fused, "ce": ce,
            "sparsity": sparsity, "mse": mse, "unimodal": unimodal,
            "loss": ce + sparsity + mse + unimodal}  # lines 64-70: every weight 1


def _assert_matches(md: MD, batch, ref: dict) -> None:
    out = md.outputs(batch)
    for m in MODS:
        assert np.allclose(np_(out.gates[m]), ref["gate"][m], rtol=RTOL, atol=ATOL), m
        assert np.allclose(np_(out.confidence[m]), ref["confidence"][m], rtol=RTOL, atol=ATOL)
        assert np.allclose(np_(out.logits[m]), ref["logits"][m], rtol=RTOL, atol=ATOL), m
    assert np.allclose(np_(out.fused), ref["fused"], rtol=RTOL, atol=ATOL)
    assert np.allclose(np_(md(batch)), ref["fused"], rtol=RTOL, atol=ATOL)
    losses = md.training_loss(batch)
    for name, key in (("ce", "ce"), ("sparsity", "sparsity"), ("confidence", "mse"),
                      ("unimodal", "unimodal"), ("loss", "loss")):
        assert losses[name].item() == pytest.approx(ref[key], rel=RTOL), name


def test_md_pin_is_owner_repo_at_commit_path():
    repo, _, rest = MD.reference.partition("@")
    commit, _, path = rest.partition(":")
    assert repo == "TencentAILabHealthcare/mmdynamics" and path == "model.py"
    assert len(commit) == 40 and int(commit, 16) >= 0
    assert MD.family == "dynamic fusion"


def test_md_outputs_and_every_loss_term_match_the_reference():
    md = _md().train()
    batch = _batch()
    ref = _reference(md, batch)
    # the batch exercises the formulas: live ReLUs, confidences of both signs / sizes
    conf = np.concatenate([ref["confidence"][m] for m in MODS])
    assert conf.std() > 0.05 and ref["mse"] > 0.01 and ref["sparsity"] > 0.1
    _assert_matches(md, batch, ref)
    md.eval()
    _assert_matches(md, batch, ref)


def test_md_absent_modality_terms_average_over_present_samples():
    present = {"audio": torch.tensor([True, False, True, True, False, True]),
               "visual": torch.tensor([True, True, False, True, True, True])}
    md = _md(seed=4)
    batch = _batch(seed=1, present=present)
    ref = _reference(md, batch)
    full = _reference(md, _batch(seed=1))
    assert ref["mse"] != pytest.approx(full["mse"], rel=1e-3)  # the masks do matter here
    _assert_matches(md, batch, ref)


def test_md_loss_weights_scale_their_terms():
    md = _md(sparsity_weight=0.5, confidence_weight=2.0, unimodal_weight=0.25)
    batch = _batch()
    ref = _reference(md, batch)
    expected = ref["ce"] + 0.5 * ref["sparsity"] + 2.0 * ref["mse"] + 0.25 * ref["unimodal"]
    assert md.training_loss(batch)["loss"].item() == pytest.approx(expected, rel=RTOL)


def test_md_defaults_follow_the_reference():
    p = MDParams()
    assert p.hidden == 1000  # train_test.py lines 93 and 99: hidden_dim = [1000]
    assert p.dropout == 0.5  # train_test.py line 111: MMDynamic(..., dropout=0.5)
    assert p.sparsity_weight == 0.1  # model.py line 66 has 1: a documented deviation
    assert p.confidence_weight == 1.0  # model.py line 69: F.mse_loss(...) + criterion(...)
    assert p.unimodal_weight == 1.0  # model.py line 69: the same sum
    assert p.detach_target is False  # model.py lines 67-68: p_target is not detached
    md = MD(identity_context(dim=4, num_classes=3, modalities=("a", "b", "c")), MDParams())
    # model.py lines 30-44: FeatureInforEncoder d -> d, FeatureEncoder d -> H, TCP layers
    # H -> K and H -> 1, MMClasifier (one Linear for hidden_dim of length 1) M H -> K
    assert md.gates["a"].weight.shape == (4, 4) and md.hidden["a"].weight.shape == (1000, 4)
    assert md.heads["a"].weight.shape == (3, 1000) and md.tcp["a"].weight.shape == (1, 1000)
    assert md.classifier.weight.shape == (3, 3000)
    # lines 7-11: Xavier-normal weights (std sqrt(2 / (fan_in + fan_out))), zero biases
    w = md.hidden["a"].weight
    assert w.std().item() == pytest.approx((2 / 1004) ** 0.5, rel=0.1)
    assert all(layer.bias.abs().sum() == 0 for layer in md.modules()
               if isinstance(layer, torch.nn.Linear))
    with pytest.raises(UsageError):
        apply_overrides(MDParams, "md", {"dropout": "1.0"})
    with pytest.raises(UsageError):
        apply_overrides(MDParams, "md", {"hidden": "0"})
    assert apply_overrides(MDParams, "md", {"detach_target": "true"}).detach_target


# ------------------------------------------------------------------ gradient paths


def _torch_reference_loss(md: MD, batch):
    """The reference loss (lines 50-70) in float64 torch on copies of the weights and inputs,
    without any stop-gradient (the reference has none). Returns (loss, weights, inputs)."""
    weights = {n: p.detach().double().clone().requires_grad_(True)
               for n, p in md.named_parameters()}
    inputs = {m: batch.inputs[m].detach().double().clone().requires_grad_(True) for m in MODS}
    y = batch.y

    def lin(name, x):
        return x @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]

    blocks, loss = [], 0.0
    for m in MODS:
        info = torch.sigmoid(lin(f"gates.{m}", inputs[m]))
        feature = torch.relu(lin(f"hidden.{m}", inputs[m] * info))
        tcp_logit = lin(f"heads.{m}", feature)
        conf = lin(f"tcp.{m}", feature)
        blocks.append(feature * conf)
        p_target = torch.gather(torch.softmax(tcp_logit, 1), 1, y.unsqueeze(1)).view(-1)
        loss = loss + info.mean() + ((conf.view(-1) - p_target) ** 2).mean() \
            + F.cross_entropy(tcp_logit, y)
    loss = loss + F.cross_entropy(lin("classifier", torch.cat(blocks, 1)), y)
    return loss, weights, inputs


def test_md_gradients_match_the_reference_graph():
    # any stop-gradient the reference does not have changes some gradient below
    md = _md()
    batch = _batch()
    batch.inputs = {m: x.clone().requires_grad_(True) for m, x in batch.inputs.items()}
    md.training_loss(batch)["loss"].backward()
    loss, weights, inputs = _torch_reference_loss(md, batch)
    loss.backward()
    # gradients: a few more float32 operations than the values (the backward pass), and
    # sums of terms of both signs, so 1e-4 relative with 1e-6 absolute for ~0 entries
    for name, p in md.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert np.allclose(np_(p.grad), np_(weights[name].grad), rtol=1e-4, atol=1e-6), name
    for m in MODS:  # what an encoder below z_m would receive
        assert np.allclose(np_(batch.inputs[m].grad), np_(inputs[m].grad), rtol=1e-4, atol=1e-6)


def test_md_tcp_target_carries_gradient_unless_detach_target():
    batch = _batch()
    for detach in (False, True):
        md = _md(detach_target=detach)
        md.training_loss(batch)["confidence"].backward()
        # the unimodal classifier enters the TCP regression only through the target p_m[y]
        grads = [md.heads[m].weight.grad for m in MODS]
        if detach:
            assert all(g is None or g.abs().sum() == 0 for g in grads)
        else:  # model.py lines 67-69: p_target is not detached
            assert all(g is not None and g.abs().sum() > 0 for g in grads)
        assert all(md.tcp[m].weight.grad.abs().sum() > 0 for m in MODS)  # the predictor learns


def test_md_fused_loss_trains_the_confidence_layer_and_the_gate():
    md = _md()
    md.training_loss(_batch())["ce"].backward()
    for m in MODS:  # line 58: feature * TCPConfidence, not detached
        assert md.tcp[m].weight.grad.abs().sum() > 0
        assert md.gates[m].weight.grad.abs().sum() > 0
    md.zero_grad(set_to_none=True)
    md.training_loss(_batch())["sparsity"].backward()
    for m in MODS:  # the sparsity term reaches only the gates (and what lies below z_m)
        assert md.gates[m].weight.grad.abs().sum() > 0
        assert md.hidden[m].weight.grad is None and md.tcp[m].weight.grad is None


# ------------------------------------------------------------------ absent modalities


def test_md_absent_modality_does_not_influence_the_prediction():
    torch.manual_seed(0)
    md = MD(linear_context(num_classes=3), MDParams(hidden=16)).eval()
    visual = torch.randn(3, 5)
    present = {"audio": torch.tensor([True, False, False]),
               "visual": torch.tensor([True, True, False])}
    batches = [make_batch({"audio": torch.randn(3, 5) * 3, "visual": visual}, [0, 1, 2],
                          present) for _ in range(2)]
    batches[1].inputs["audio"][1] = float("nan")  # rows are replaced, not multiplied
    outs = [md(b) for b in batches]
    assert torch.allclose(outs[0][1:], outs[1][1:])  # audio absent in rows 1 and 2
    assert not torch.allclose(outs[0][0], outs[1][0])  # ... and used where present
    assert torch.isfinite(outs[1]).all()
    conf = md.outputs(batches[1]).confidence
    assert conf["audio"][1:].tolist() == [0.0, 0.0] and conf["visual"][2].item() == 0.0
    # training: no gradient reaches the absent inputs; a modality absent from the whole batch
    # contributes no per-modality term
    md.train()
    audio = torch.randn(3, 5, requires_grad=True)
    out = md.training_loss(make_batch({"audio": audio, "visual": visual}, [0, 1, 2], present))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and audio.grad[1:].abs().sum() == 0
    assert audio.grad[0].abs().sum() > 0
    none = {"audio": torch.zeros(3, dtype=torch.bool), "visual": torch.ones(3, dtype=torch.bool)}
    batch = make_batch({"audio": audio, "visual": visual}, [0, 1, 2], none)
    md.eval()  # no dropout: the two passes below see the same hidden features
    out, parts = md.training_loss(batch), md.outputs(batch)
    assert torch.isfinite(out["loss"])
    assert out["sparsity"].item() == pytest.approx(parts.gates["visual"].mean().item())
    unimodal = F.cross_entropy(parts.logits["visual"], batch.y)
    assert out["unimodal"].item() == pytest.approx(unimodal.item())


def test_md_dropout_only_in_training():
    md = _md(dropout=0.5, hidden=64)
    batch = _batch()
    md.train()
    assert not torch.allclose(md(batch), md(batch))
    md.eval()
    assert torch.equal(md(batch), md(batch))


# ------------------------------------------------------------------ training smoke


def test_md_training_smoke_beats_chance():
    train, test = blobs()
    torch.manual_seed(0)
    md = MD(linear_context(num_classes=3), MDParams(hidden=32))
    train_epochs(md, train, epochs=20, lr=0.01)
    assert accuracy_on(md, test) > 0.6  # chance is 1/3
