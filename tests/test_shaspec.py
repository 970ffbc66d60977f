"""ShaSpec: parity with the authors' code on a fixed tiny batch, the defaults, the generated
feature of a missing modality, absent inputs, the gradient paths, random mode and a training
smoke.

The numpy recomputation follows the pinned reference, ShaSpec.reference
(billhhh/ShaSpec@081fe7a1e40d6bbc0736dc93e779a0a5a439d091:DualNet_SS.py, with train_SS.py and
loss_Dual.py at the same commit), line by line, in float64 on the method's own weights and
inputs. Where rambench differs (absent modalities: their features are 0 and the auxiliary
terms skip them; the shared encoder is a per-modality encoder plus one shared projection)
the recomputation follows rambench's rule, as the module docstring states it.

Tolerances: the method computes in float32 (unit round-off 6e-8). Every compared value comes
from at most four Linear layers of width <= 15 plus an L1 mean or a log-sum-exp, on O(1)
inputs: the rounding accumulates to ~1e-6 relative at worst, so rtol = 1e-5 leaves a factor
of 10; atol = 1e-6 covers entries that cancel to ~0.

The reference has no stop-gradient (DualNet_SS.py lines 369-496 and train_SS.py lines
274-302 detach nothing; nn.L1Loss at line 250 reads two live tensors): the gradient test
compares every parameter's gradient with a float64 torch graph of the reference formulas
without any detach, and the path tests check which modules each term reaches.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import baselines.shaspec
from baselines.shaspec import ShaSpec, ShaSpecParams, random_mode_keep
from rambench.errors import UsageError
from rambench.methods import methods
from rambench.params import apply_overrides
from tests.helpers import (
    accuracy_on,
    blobs,
    identity_context,
    linear_context,
    make_batch,
    train_epochs,
)

MODS = ("audio", "depth", "visual")  # three: the "first" and "mean" fills differ
RTOL, ATOL = 1e-5, 1e-6  # float32 through <= 4 small Linear layers; see the docstring
PIN = "billhhh/ShaSpec@081fe7a1e40d6bbc0736dc93e779a0a5a439d091:DualNet_SS.py"
ALPHA, BETA = 0.1, 0.02  # train_SS.py lines 25-26


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def linear(layer: torch.nn.Linear, x: np.ndarray) -> np.ndarray:
    out = x @ np_(layer.weight).T
    return out if layer.bias is None else out + np_(layer.bias)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row CE (N,), nn.CrossEntropyLoss(reduction='none')."""
    m = logits.max(axis=1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    return lse - logits[np.arange(len(y)), y]


def _shaspec(mods=MODS, seed=3, **params) -> ShaSpec:
    torch.manual_seed(seed)
    return ShaSpec(linear_context(modalities=mods, dim=4, num_classes=3, in_dim=5),
                   ShaSpecParams(**params))


def _batch(mods=MODS, seed=0, n=6, present=None):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return make_batch({m: 2 * torch.randn(n, 5, generator=g) for m in mods}, y, present)


def _reference(method: ShaSpec, batch, available=None, fill="mean") -> dict:
    """DualNet_SS.forward (lines 369-496) and the train_SS.py loss (lines 279-301) in numpy,
    the segmentation terms replaced by the cross-entropy. `available`: the modalities the
    fusion reads (mode_split), default the present ones."""
    mods = method.ctx.modalities
    y = batch.y.numpy()
    present = {m: batch.present[m].numpy() for m in mods}
    available = present if available is None else {m: available[m].numpy() for m in mods}
    shared, specific = {}, {}
    for m in mods:
        x = np_(batch.inputs[m])
        h = linear(method.shared_encoders[m], x)  # rambench: H_m, then the shared P
        s = linear(method.shared_projection, h)  # lines 399-409: shared_ft of modality m
        z = linear(method.encoders[m], x)  # lines 417-420: the specific encoder
        shared[m] = np.where(present[m][:, None], s, 0.0)  # rambench: absent rows are 0
        specific[m] = np.where(present[m][:, None], z, 0.0)
    n = len(y)
    generated = np.zeros((n, 4))
    for i in range(n):
        avail = [m for m in mods if available[m][i]]
        if avail and fill == "mean":  # lines 412-414 (commented out): the average
            generated[i] = np.mean([shared[m][i] for m in avail], axis=0)
        elif avail:  # line 411: general_shared_ft = shared_ft[mode_split[0]::C]
            generated[i] = shared[avail[0]][i]
    fused = {}
    for m in mods:
        # lines 451-466: compos_layer(shared, specific) if available, else general_shared_ft;
        # CompositionalLayer lines 332-336: f1 + conv(cat(f1, f2))
        composed = shared[m] + linear(method.compose,
                                      np.concatenate([shared[m], specific[m]], axis=1))
        fused[m] = np.where(available[m][:, None], composed, generated)
    logits = linear(method.classifier, np.concatenate([fused[m] for m in mods], axis=1))
    ce = cross_entropy(logits, y).mean()
    # train_SS.py lines 285-288: L1Loss (line 250, mean) over the cycle's consecutive pairs
    pairs = [(mods[i], mods[(i + 1) % len(mods)]) for i in range(len(mods))]
    pairs = pairs[:1] if len(mods) == 2 else pairs
    dist = 0.0
    for a, b in pairs:
        rows = present[a] & present[b]
        if rows.any():
            dist += np.abs(shared[a][rows] - shared[b][rows]).mean()
    # lines 294-299: the domain label of a specific feature is its modality's index;
    # loss_Dual.py lines 244-252: one nn.CrossEntropyLoss (mean) over all of them
    dom_logits = np.concatenate([linear(method.domain_classifier, specific[m][present[m]])
                                 for m in mods])
    dom_labels = np.concatenate([np.full(present[m].sum(), i) for i, m in enumerate(mods)])
    dom = cross_entropy(dom_logits, dom_labels).mean()
    return {"shared": shared, "specific": specific, "generated": generated, "fused": fused,
            "logits": logits, "ce": ce, "dist": dist, "dom": dom,
            "loss": ce + ALPHA * dist + BETA * dom}  # line 301


def _assert_matches(method: ShaSpec, batch, ref: dict) -> None:
    out = method.outputs(batch)
    for m in method.ctx.modalities:
        for key, got in (("shared", out.shared), ("specific", out.specific),
                         ("fused", out.fused)):
            np.testing.assert_allclose(np_(got[m]), ref[key][m], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{key} {m}")
    np.testing.assert_allclose(np_(out.generated), ref["generated"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np_(out.logits), ref["logits"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np_(method(batch)), ref["logits"], rtol=RTOL, atol=ATOL)
    losses = method.training_loss(batch)
    for name in ("ce", "dist", "dom", "loss"):
        assert losses[name].item() == pytest.approx(ref[name], rel=RTOL), name


# ---------------------------------------------------------------- parity


def test_shaspec_pin_family_and_registration():
    assert ShaSpec.reference == PIN
    repo, _, rest = ShaSpec.reference.partition("@")
    commit, _, path = rest.partition(":")
    assert repo == "billhhh/ShaSpec" and path == "DualNet_SS.py"
    assert len(commit) == 40 and int(commit, 16) >= 0
    assert ShaSpec.family == "imputation"
    assert methods.get("shaspec") is ShaSpec
    assert ShaSpec.summary().startswith("ShaSpec (Wang et al., CVPR 2023)")
    assert "MMANet" in baselines.shaspec.__doc__  # why ShaSpec rather than MMANet


def test_shaspec_features_fusion_and_every_loss_term_match_the_reference():
    method = _shaspec()
    batch = _batch()
    ref = _reference(method, batch)
    # the batch exercises every term: unaligned shared features, an unsure domain classifier
    assert ref["dist"] > 0.5 and ref["dom"] > 0.5 and ref["ce"] > 0.5
    _assert_matches(method, batch, ref)  # (every modality available: g is never used)
    method.eval()
    _assert_matches(method, batch, ref)


@pytest.mark.parametrize("fill", ["mean", "first"])
def test_shaspec_partial_samples_match_the_reference(fill):
    present = {"audio": torch.tensor([True, False, True, False, True, False]),
               "depth": torch.tensor([True, True, False, False, True, True]),
               "visual": torch.tensor([False, True, True, True, True, False])}
    method = _shaspec(seed=4, fill=fill)
    batch = _batch(seed=1, present=present)
    ref = _reference(method, batch, fill=fill)
    full = _reference(method, _batch(seed=1))
    assert abs(ref["dist"] - full["dist"]) > 1e-3 and abs(ref["dom"] - full["dom"]) > 1e-3
    _assert_matches(method, batch, ref)
    other = _reference(method, batch, fill="first" if fill == "mean" else "mean")
    assert not np.allclose(other["logits"], ref["logits"], rtol=1e-3)  # the fills differ


def test_shaspec_two_modalities_align_their_one_pair_once():
    mods = ("audio", "visual")
    method = _shaspec(mods=mods, seed=5)
    batch = _batch(mods=mods, seed=2)
    ref = _reference(method, batch)
    out = method.outputs(batch)
    one = F.l1_loss(out.shared["audio"], out.shared["visual"]).item()
    assert ref["dist"] == pytest.approx(one, rel=RTOL)  # not (a, b) + (b, a)
    _assert_matches(method, batch, ref)
    # with two modalities the first available one is the mean of the available ones
    present = {"audio": torch.tensor([True, False, True, False, True, True]),
               "visual": torch.tensor([False, True, True, True, False, True])}
    partial = _batch(mods=mods, seed=2, present=present)
    first = _shaspec(mods=mods, seed=5, fill="first")
    assert torch.equal(first(partial), method(partial))


def test_four_modalities_align_the_cycle_not_the_diagonals():
    # train_SS.py lines 285-288: (flair, t1), (t1, t1ce), (t1ce, t2), (t2, flair); the
    # diagonals (flair, t1ce) and (t1, t2) are commented out (lines 289-290)
    mods = ("flair", "t1", "t1ce", "t2")
    method = _shaspec(mods=mods, seed=8)
    batch = _batch(mods=mods, seed=6)
    s = method.outputs(batch).shared
    cycle = sum(F.l1_loss(s[a], s[b]).item() for a, b in
                (("flair", "t1"), ("t1", "t1ce"), ("t1ce", "t2"), ("t2", "flair")))
    diagonals = F.l1_loss(s["flair"], s["t1ce"]).item() + F.l1_loss(s["t1"], s["t2"]).item()
    assert diagonals > 0.1
    assert method.training_loss(batch)["dist"].item() == pytest.approx(cycle, rel=RTOL)
    _assert_matches(method, batch, _reference(method, batch))
    assert method.domain_classifier.out_features == 4  # line 357: out_features=4


def test_shaspec_defaults_follow_the_reference():
    p = ShaSpecParams()
    assert p.alpha == 0.1  # train_SS.py line 25: alpha = 0.1  # shared domain loss weight
    assert p.beta == 0.02  # train_SS.py line 26: beta = 0.02  # specific domain loss weight
    # run.sh line 11: --num_steps=80000 with every modality, then (lines 34, 45-47) resumed
    # with --mode=random up to --num_steps=180000 (train_SS.py lines 241, 266, 314)
    assert p.warmup == 80_000 / 180_000
    # the paper's mean; DualNet_SS.py lines 412-414 (commented out); line 411 is "first"
    assert p.fill == "mean"
    method = ShaSpec(identity_context(modalities=MODS, dim=4, num_classes=3))
    # line 319: conv3x3x3(256 * 2, 256, bias=False), one compos layer for all (line 356)
    assert method.compose.weight.shape == (4, 8) and method.compose.bias is None
    # line 357: nn.Linear(in_features=256, out_features=4, bias=True): one output per modality
    assert method.domain_classifier.weight.shape == (3, 4)
    assert method.domain_classifier.bias is not None
    assert method.shared_projection.weight.shape == (4, 4)  # P: one for every modality
    assert method.classifier.weight.shape == (3, 12)  # the concatenation, line 487
    # lines 345 and 359-362: the shared encoder and the specific ones are different networks
    assert set(method.shared_encoders) == set(method.encoders) == set(MODS)
    assert all(method.shared_encoders[m] is not method.encoders[m] for m in MODS)
    with pytest.raises(UsageError):
        apply_overrides(ShaSpecParams, "shaspec", {"warmup": "1.5"})
    with pytest.raises(UsageError):
        apply_overrides(ShaSpecParams, "shaspec", {"alpha": "-1"})
    with pytest.raises(UsageError):
        apply_overrides(ShaSpecParams, "shaspec", {"fill": "last"})
    with pytest.raises(ValueError, match="shaspec.fill"):
        ShaSpecParams(fill="last")
    assert apply_overrides(ShaSpecParams, "shaspec", {"fill": "first"}).fill == "first"
    one = identity_context(modalities=("visual",))
    assert "two modalities" in ShaSpec.supports(one)
    with pytest.raises(ValueError, match="two modalities"):
        ShaSpec(one)


# ---------------------------------------------------------------- missing modalities


def test_missing_feature_is_the_mean_of_the_present_shared_features():
    method = _shaspec(seed=6).eval()
    batch = _batch(seed=3, n=4)
    with torch.no_grad():
        s = method.outputs(batch).shared  # every modality present: each s_m of each sample
        present = {"audio": torch.tensor([True, False, True, False]),
                   "depth": torch.tensor([True, True, False, False]),
                   "visual": torch.tensor([False, True, False, False])}
        out = method.outputs(make_batch(batch.inputs, batch.y, present))
    # by hand: sample 0 misses visual -> (s_audio + s_depth) / 2; sample 1 misses audio ->
    # (s_depth + s_visual) / 2; sample 2 has audio only -> s_audio; sample 3 nothing -> 0
    expected = torch.stack([(s["audio"][0] + s["depth"][0]) / 2,
                            (s["depth"][1] + s["visual"][1]) / 2, s["audio"][2],
                            torch.zeros(4)])
    assert torch.allclose(out.generated, expected, rtol=RTOL, atol=ATOL)
    assert torch.allclose(out.fused["visual"][[0, 2, 3]], expected[[0, 2, 3]])
    assert torch.allclose(out.fused["audio"][[1, 3]], expected[[1, 3]])
    assert torch.allclose(out.fused["depth"][[2, 3]], expected[[2, 3]])
    # a present modality keeps its composed feature s + C [s; z]
    composed = s["audio"][0] + method.compose(torch.cat([s["audio"][0], out.specific["audio"][0]]))
    assert torch.allclose(out.fused["audio"][0], composed, rtol=RTOL, atol=ATOL)
    # line 411 (fill = "first"): the first available one in modality order
    first = _shaspec(seed=6, fill="first").eval()
    with torch.no_grad():
        got = first.outputs(make_batch(batch.inputs, batch.y, present)).generated
    assert torch.allclose(got, torch.stack([s["audio"][0], s["depth"][1], s["audio"][2],
                                            torch.zeros(4)]), rtol=RTOL, atol=ATOL)


def test_absent_inputs_do_not_influence_the_output():
    method = _shaspec(seed=7).eval()
    present = {"audio": torch.tensor([True, False, False, True]),
               "depth": torch.tensor([True, True, False, False]),
               "visual": torch.tensor([True, True, True, False])}
    base = _batch(seed=4, n=4, present=present)
    noisy = {m: x.clone() for m, x in base.inputs.items()}
    for m in MODS:
        noisy[m][~present[m]] = 100 * torch.randn(int((~present[m]).sum()), 5)
    nan = {m: x.clone() for m, x in base.inputs.items()}
    for m in MODS:
        nan[m][~present[m]] = float("nan")  # rows are replaced, not multiplied
    with torch.no_grad():
        outs = [method(make_batch(x, base.y, present)) for x in (base.inputs, noisy, nan)]
    assert torch.isfinite(outs[2]).all()
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    changed = {m: x.clone() for m, x in base.inputs.items()}
    changed["audio"][0] += 1.0  # ... and a present input is read
    with torch.no_grad():
        assert not torch.allclose(method(make_batch(changed, base.y, present))[0], outs[0][0])
    # training: no gradient reaches an absent input, through any of the three terms; a
    # modality absent from the whole batch is no term of L_dist nor of L_dom
    method.train()
    inputs = {m: x.clone().requires_grad_(True) for m, x in base.inputs.items()}
    out = method.training_loss(make_batch(inputs, base.y, present))
    out["loss"].backward()
    for m in MODS:
        assert inputs[m].grad[~present[m]].abs().sum() == 0, m
        assert inputs[m].grad[present[m]].abs().sum() > 0, m
    alone = {"audio": torch.zeros(4, dtype=torch.bool), "depth": torch.ones(4, dtype=torch.bool),
             "visual": torch.zeros(4, dtype=torch.bool)}
    only_depth = {**nan, "depth": base.inputs["depth"]}  # NaN wherever the input is absent
    out = method.training_loss(make_batch(only_depth, base.y, alone))
    assert torch.isfinite(out["loss"]) and out["dist"].item() == 0.0
    z = method.outputs(make_batch(only_depth, base.y, alone)).specific["depth"]
    dom = F.cross_entropy(method.domain_classifier(z), torch.full((4,), 1))
    assert out["dom"].item() == pytest.approx(dom.item(), rel=RTOL)


# ---------------------------------------------------------------- gradient paths


def _torch_reference_loss(method: ShaSpec, batch):
    """The reference loss (every modality present) in float64 torch on copies of the weights
    and inputs, with no stop-gradient (the reference has none). Returns (loss, weights,
    inputs)."""
    weights = {n: p.detach().double().clone().requires_grad_(True)
               for n, p in method.named_parameters()}
    inputs = {m: batch.inputs[m].detach().double().clone().requires_grad_(True) for m in MODS}

    def lin(name, x):
        out = x @ weights[f"{name}.weight"].T
        return out + weights[f"{name}.bias"] if f"{name}.bias" in weights else out

    shared = {m: lin("shared_projection", lin(f"shared_encoders.{m}", inputs[m])) for m in MODS}
    specific = {m: lin(f"encoders.{m}", inputs[m]) for m in MODS}
    fused = [shared[m] + lin("compose", torch.cat([shared[m], specific[m]], 1)) for m in MODS]
    ce = F.cross_entropy(lin("classifier", torch.cat(fused, 1)), batch.y)
    dist = sum(F.l1_loss(shared[a], shared[b])
               for a, b in zip(MODS, MODS[1:] + MODS[:1], strict=True))
    labels = torch.arange(len(MODS)).repeat_interleave(len(batch.y))
    dom = F.cross_entropy(lin("domain_classifier", torch.cat([specific[m] for m in MODS])),
                          labels)
    return ce + ALPHA * dist + BETA * dom, weights, inputs


def test_shaspec_gradients_match_the_reference_graph():
    # any stop-gradient the reference does not have changes some gradient below
    method = _shaspec()
    batch = _batch()
    batch.inputs = {m: x.clone().requires_grad_(True) for m, x in batch.inputs.items()}
    method.training_loss(batch)["loss"].backward()
    loss, weights, inputs = _torch_reference_loss(method, batch)
    loss.backward()
    # gradients: a few more float32 operations than the values (the backward pass), sums of
    # terms of both signs, so 1e-4 relative with 1e-6 absolute for ~0 entries
    for name, p in method.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        np.testing.assert_allclose(np_(p.grad), np_(weights[name].grad), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
    for m in MODS:
        np.testing.assert_allclose(np_(batch.inputs[m].grad), np_(inputs[m].grad), rtol=1e-4,
                                   atol=1e-6, err_msg=m)


def _grads(method: ShaSpec, term: str, batch) -> dict[str, bool]:
    method.zero_grad(set_to_none=True)
    method.training_loss(batch)[term].backward()
    groups = {"specific": method.encoders, "shared": method.shared_encoders,
              "projection": method.shared_projection, "compose": method.compose,
              "domain": method.domain_classifier, "classifier": method.classifier}
    return {k: any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
            for k, g in groups.items()}


def test_each_term_trains_what_the_reference_trains():
    method = _shaspec()
    batch = _batch()
    # L_dist (line 250, both arguments live): every shared encoder and P, nothing else
    assert _grads(method, "dist", batch) == {
        "specific": False, "shared": True, "projection": True, "compose": False,
        "domain": False, "classifier": False}
    for m in MODS:  # both sides of every pair (no detached target)
        assert method.shared_encoders[m].weight.grad.abs().sum() > 0, m
    # L_dom (lines 493-494, 299): the specific encoders and D only
    assert _grads(method, "dom", batch) == {
        "specific": True, "shared": False, "projection": False, "compose": False,
        "domain": True, "classifier": False}
    # the task loss: everything but D
    assert _grads(method, "ce", batch) == {
        "specific": True, "shared": True, "projection": True, "compose": True,
        "domain": False, "classifier": True}
    # a modality missing for the fusion gets no task gradient; the generated feature trains
    # the available modalities' shared encoders (line 454: general_shared_ft is live)
    method.zero_grad(set_to_none=True)
    keep = {"audio": torch.ones(6, dtype=torch.bool), "depth": torch.zeros(6, dtype=torch.bool),
            "visual": torch.ones(6, dtype=torch.bool)}
    out = method.outputs(batch, keep)
    F.cross_entropy(out.logits, batch.y).backward()
    for enc in (method.encoders["depth"], method.shared_encoders["depth"]):
        assert enc.weight.grad is None or enc.weight.grad.abs().sum() == 0
    method.zero_grad(set_to_none=True)
    method.outputs(batch, keep).fused["depth"].sum().backward()  # the missing one's slot
    for m in ("audio", "visual"):
        assert method.shared_encoders[m].weight.grad.abs().sum() > 0, m
        assert method.encoders[m].weight.grad is None  # g reads shared features only
    assert method.shared_projection.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- random mode


def test_random_mode_keeps_a_uniform_number_and_subset_of_the_present_modalities():
    torch.manual_seed(0)
    n = 6000
    present = {m: torch.ones(n, dtype=torch.bool) for m in MODS}
    present["depth"][: n // 2] = False  # the first half has two present modalities
    keep = random_mode_keep(present)
    kept = torch.stack([keep[m] for m in MODS], 1)
    assert not (kept & ~torch.stack([present[m] for m in MODS], 1)).any()
    counts = kept.sum(1)
    assert counts.min() >= 1
    # line 380: random.randint(1, n) (uniform count); line 386: random.sample (uniform subset)
    full, half = counts[n // 2:], counts[: n // 2]
    for k in (1, 2, 3):
        assert (full == k).float().mean().item() == pytest.approx(1 / 3, abs=0.03)
    for k in (1, 2):
        assert (half == k).float().mean().item() == pytest.approx(1 / 2, abs=0.03)
    singles = kept[n // 2:][full == 1].float().mean(0)
    assert torch.allclose(singles, torch.full((3,), 1 / 3), atol=0.04)
    none = {m: torch.zeros(3, dtype=torch.bool) for m in MODS}
    assert not any(v.any() for v in random_mode_keep(none).values())


def test_warmup_then_random_mode_and_its_loss():
    method = _shaspec()
    assert not method.random_mode  # epoch 0, before start_epoch
    for epoch, expected in ((0, False), (3, False), (4, True), (8, True)):
        method.start_epoch(epoch, 9)  # round(4/9 * 9) = 4 epochs with every modality
        assert method.random_mode is expected, epoch
    always = _shaspec(warmup=0.0)
    assert always.random_mode
    never = _shaspec(warmup=1.0)
    never.start_epoch(99, 100)
    assert not never.random_mode
    # in random mode the fusion reads the kept modalities, the auxiliary terms every present
    batch = _batch(n=12)
    torch.manual_seed(5)
    out = method.training_loss(batch)
    torch.manual_seed(5)
    keep = random_mode_keep({m: batch.present[m] for m in MODS})
    assert 0 < out["dropped_fraction"].item() < 1
    ref = _reference(method, batch, available=keep)
    full = _reference(method, batch)
    assert out["ce"].item() == pytest.approx(ref["ce"], rel=RTOL)
    assert out["ce"].item() != pytest.approx(full["ce"], rel=1e-3)
    assert out["dist"].item() == pytest.approx(full["dist"], rel=RTOL)
    assert out["dom"].item() == pytest.approx(full["dom"], rel=RTOL)
    assert out["loss"].item() == pytest.approx(ref["ce"] + ALPHA * full["dist"]
                                               + BETA * full["dom"], rel=RTOL)
    method.eval()  # prediction never drops anything
    assert torch.equal(method(batch), method(batch))


# ---------------------------------------------------------------- training smoke

EPOCHS = 9


def test_shaspec_training_smoke_beats_chance_with_and_without_a_modality():
    mods = ("audio", "visual")
    train, test = blobs(modalities=mods)
    torch.manual_seed(0)
    method = ShaSpec(linear_context(modalities=mods, num_classes=3, dim=8))
    train_epochs(method, train, EPOCHS, lr=0.01, batch_size=75)  # 4 full, then random mode
    only_visual = {"audio": torch.zeros(150, dtype=torch.bool),
                   "visual": torch.ones(150, dtype=torch.bool)}
    both, one = accuracy_on(method, test), accuracy_on(method, test, only_visual)
    assert both > 0.6 and one > 0.5, (both, one)  # chance is 1/3
