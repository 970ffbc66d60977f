"""ETMC: parity with the authors' code on a fixed tiny batch, the defaults, the absent-modality
convention, the gradient paths, and a training smoke.

The parity test recomputes the reference formulas independently (numpy / scipy in float64,
written after the pinned lines of `ETMC.reference`, on the method's own weights and inputs).
Tolerances: the method computes in float32 (unit round-off 6e-8); each compared quantity
(an alpha >= 1, a loss of order 1) is O(10-30) float32 operations deep, softplus, sums,
divisions and the digamma / log-gamma series included, so its relative error is at most
about 1e-6; rtol = 1e-5 leaves a factor of 10. Alphas (>= 1) are compared rather than
evidence or log-alpha, whose values near 0 would make a relative tolerance meaningless.

The reference has no stop-gradient (TMC.py lines 123-142 and train_ETMC_nyud2.py lines
51-61 detach nothing); the gradient tests check that none was added: the pseudo view's loss
trains both encoders, and only the present rows of the inputs get a gradient.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import digamma, gammaln

from baselines.etmc import ETMC, ETMCParams
from baselines.tmc import combine_evidence, evidential_loss
from rambench.methods import methods
from rambench.params import apply_overrides
from tests.helpers import (
    identity_context,
    linear_context,
    make_batch,
)

MODS = ("audio", "visual")
RTOL = 1e-5  # float32 arithmetic over O(10-30) operations; see the module docstring
PIN = "hanmenghan/TMC@08d0ca4c4461b6de1cf73514d8c621598bc2b504:ETMC TPAMI/models/TMC.py"


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def feature_batch(seed: int, n: int, dim: int = 4, num_classes: int = 3, present=None):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    return make_batch({m: torch.randn(n, dim, generator=g) for m in MODS}, y, present)


# ---------------------------------------------------------------- the reference, in numpy


def softplus(h: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, h)


def ds_combin_two(a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """TMC.py DS_Combin_two, lines 55-91."""
    k = a1.shape[1]
    s1, s2 = a1.sum(1, keepdims=True), a2.sum(1, keepdims=True)
    b1, b2 = (a1 - 1) / s1, (a2 - 1) / s2  # lines 61-63
    u1, u2 = k / s1, k / s2  # line 64
    bb = np.einsum("bi,bj->bij", b1, b2)  # line 67
    conflict = bb.sum(axis=(1, 2)) - np.trace(bb, axis1=1, axis2=2)  # lines 75-78
    b_a = (b1 * b2 + b1 * u2 + b2 * u1) / (1 - conflict)[:, None]  # line 81
    u_a = u1 * u2 / (1 - conflict)[:, None]  # line 83
    return b_a * (k / u_a) + 1  # lines 87-90


def ce_loss(y: np.ndarray, a: np.ndarray, epoch: float, annealing_step: int) -> float:
    """TMC.py ce_loss (lines 19-28) with KL (lines 8-17)."""
    k = a.shape[1]
    s = a.sum(1, keepdims=True)
    label = np.eye(k)[y]
    first = (label * (digamma(s) - digamma(a))).sum(1)  # line 23
    coef = min(1.0, epoch / annealing_step)  # line 25
    alp = (a - 1) * (1 - label) + 1  # line 26
    s_alp = alp.sum(1)
    ln_b = gammaln(s_alp) - gammaln(alp).sum(1)  # line 12
    ln_b_uni = gammaln(np.ones(k)).sum() - gammaln(k)  # line 13
    kl = ((alp - 1) * (digamma(alp) - digamma(s_alp)[:, None])).sum(1) + ln_b + ln_b_uni
    return float((first + coef * kl).mean())  # line 28


def reference_alphas(etmc: ETMC, batch) -> dict[str, np.ndarray]:
    """TMC.py ETMC.forward, lines 128-141: per-view, pseudo-view and fused alphas."""
    x = {m: np_(batch.inputs[m]) for m in MODS}  # identity encoders: the features
    alpha = {}
    for m in MODS:  # lines 128-133, 139-140
        w, c = np_(etmc.heads[m].weight), np_(etmc.heads[m].bias)
        alpha[m] = softplus(x[m] @ w.T + c) + 1
    joint = np.concatenate([x[m] for m in MODS], axis=1)  # line 135, in modality order
    w, c = np_(etmc.pseudo_head.weight), np_(etmc.pseudo_head.bias)
    alpha["pseudo"] = softplus(joint @ w.T + c) + 1  # lines 136-140
    # line 141: DS_Combin_two(DS_Combin_two(depth, rgb), pseudo), the modalities first
    alpha["fused"] = ds_combin_two(ds_combin_two(alpha["audio"], alpha["visual"]),
                                   alpha["pseudo"])
    return alpha


# ---------------------------------------------------------------- parity


def test_etmc_evidence_combination_and_loss_match_the_reference():
    torch.manual_seed(11)
    etmc = ETMC(identity_context(dim=4, num_classes=3), ETMCParams(annealing_epochs=10))
    batch = feature_batch(seed=4, n=5)
    y = batch.y.numpy()
    ref = reference_alphas(etmc, batch)

    views, pseudo = etmc.evidence(batch)
    for m in MODS:
        np.testing.assert_allclose(np_(views[m]) + 1, ref[m], rtol=RTOL, atol=0)
    np.testing.assert_allclose(np_(pseudo) + 1, ref["pseudo"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(np.exp(np_(etmc(batch))), ref["fused"], rtol=RTOL, atol=0)
    # the pseudo view changes the fused opinion (the test would not see it dropped otherwise)
    assert not np.allclose(ds_combin_two(ref["audio"], ref["visual"]), ref["fused"], rtol=1e-3)

    # train_ETMC_nyud2.py lines 57-60: the four ce_loss terms summed, at the 0-based i_epoch
    losses = []
    for epoch in (0, 3, 25):  # annealing_coef 0, 0.3 and 1 (capped, line 25)
        etmc.start_epoch(epoch, 30)
        out = etmc.training_loss(batch)
        terms = {k: ce_loss(y, a, epoch, 10) for k, a in ref.items()}
        expected = sum(terms.values())
        assert out["loss"].item() == pytest.approx(expected, rel=RTOL)
        assert out["views"].item() == pytest.approx(terms["audio"] + terms["visual"], rel=RTOL)
        assert out["pseudo"].item() == pytest.approx(terms["pseudo"], rel=RTOL)
        assert out["combined"].item() == pytest.approx(terms["fused"], rel=RTOL)
        losses.append(expected)
    assert losses[0] != pytest.approx(losses[1], rel=1e-3) != pytest.approx(losses[2], rel=1e-3)


def test_defaults_registration_and_annealing_follow_the_reference():
    # train_ETMC_nyud2.py line 37 (and train_ETMC_sunrgbd.py line 37): annealing_epoch = 10
    assert ETMCParams() == ETMCParams(annealing_epochs=10)
    with pytest.raises(ValueError, match="etmc.annealing_epochs"):
        ETMCParams(annealing_epochs=-1)
    assert apply_overrides(ETMCParams, "etmc", {"annealing_epochs": "4"}).annealing_epochs == 4
    assert methods.get("etmc") is ETMC
    assert ETMC.family == "dynamic fusion"
    assert ETMC.reference == PIN
    repo, _, rest = ETMC.reference.partition("@")
    commit, _, path = rest.partition(":")
    assert repo.count("/") == 1 and len(commit) == 40 and path
    int(commit, 16)

    # ce_loss line 25: min(1, i_epoch / annealing_step), i_epoch 0-based (line 137)
    etmc = ETMC(identity_context())
    assert etmc.kl_weight == 0.0  # before the first start_epoch: epoch 0
    for epoch, weight in ((0, 0.0), (1, 0.1), (5, 0.5), (10, 1.0), (40, 1.0)):
        etmc.start_epoch(epoch, 50)
        assert etmc.kl_weight == pytest.approx(weight)
    constant = ETMC(identity_context(), ETMCParams(annealing_epochs=0))
    assert constant.kl_weight == 1.0
    constant.start_epoch(0, 50)
    assert constant.kl_weight == 1.0


# ---------------------------------------------------------------- missing modalities


def test_non_finite_absent_inputs_do_not_reach_the_prediction():
    """(The masking itself: test_baselines_uncertainty's absent-modality test, etmc case.)"""
    torch.manual_seed(0)
    method = ETMC(linear_context(num_classes=3)).eval()
    visual = torch.randn(3, 5)
    present = {"audio": torch.tensor([True, False, False]),
               "visual": torch.tensor([True, True, False])}
    finite = method(make_batch({"audio": torch.randn(3, 5), "visual": visual}, [0, 1, 2],
                               present))
    nan_audio = torch.full((3, 5), float("nan"))  # absent inputs may hold anything
    nan_audio[0] = 1.0
    out = method(make_batch({"audio": nan_audio, "visual": visual}, [0, 1, 2], present))
    assert torch.isfinite(out).all()
    assert torch.allclose(out[1:], finite[1:])


def test_pseudo_view_is_vacuous_unless_every_modality_is_present():
    torch.manual_seed(3)
    etmc = ETMC(identity_context(dim=4, num_classes=3))
    etmc.start_epoch(4, 30)
    present = {"audio": torch.tensor([True, False, True, False, True]),
               "visual": torch.tensor([True, True, False, False, True])}
    batch = feature_batch(seed=5, n=5, present=present)
    views, pseudo = etmc.evidence(batch)
    assert (pseudo[1:4] == 0).all() and (pseudo[[0, 4]] > 0).all()
    assert (views["audio"][[1, 3]] == 0).all() and (views["visual"][[2, 3]] == 0).all()

    alone = {m: F.softplus(etmc.heads[m](batch.inputs[m])) for m in MODS}
    logits = etmc(batch)
    # a partial sample: exactly the present modality's Dirichlet (TMC's convention)
    assert torch.allclose(logits[1], (alone["visual"][1] + 1).log(), rtol=RTOL, atol=1e-6)
    assert torch.allclose(logits[2], (alone["audio"][2] + 1).log(), rtol=RTOL, atol=1e-6)
    assert (logits[3] == 0).all()  # every modality absent: alpha = 1
    complete = combine_evidence([alone["audio"][[0, 4]], alone["visual"][[0, 4]],
                                 pseudo[[0, 4]]])
    assert torch.allclose(logits[[0, 4]], complete.log(), rtol=RTOL, atol=1e-6)

    # loss terms: each view over its present rows, the pseudo view over the complete rows,
    # the combination over every row
    out = etmc.training_loss(batch)
    w, y = 0.4, batch.y

    def view_loss(e: torch.Tensor, rows: list[int]) -> torch.Tensor:
        return evidential_loss(e[rows] + 1, y[rows], w).mean()

    assert out["views"].item() == pytest.approx(
        (view_loss(alone["audio"], [0, 2, 4]) + view_loss(alone["visual"], [0, 1, 4])).item(),
        rel=RTOL)
    assert out["pseudo"].item() == pytest.approx(view_loss(pseudo, [0, 4]).item(), rel=RTOL)
    assert out["combined"].item() == pytest.approx(
        evidential_loss(logits.exp(), y, w).mean().item(), rel=RTOL)
    # no complete sample: the pseudo term is 0, the others are still finite
    none = etmc.training_loss(feature_batch(seed=5, n=5, present={
        "audio": torch.tensor([True, False] * 2 + [True]),
        "visual": torch.tensor([False, True] * 2 + [False])}))
    assert none["pseudo"].item() == 0.0 and torch.isfinite(none["loss"])


def test_three_modalities_one_pseudo_view_on_all_of_them():
    torch.manual_seed(1)
    mods = ("audio", "depth", "visual")
    etmc = ETMC(identity_context(modalities=mods, dim=4, num_classes=3))
    assert etmc.pseudo_head.in_features == 12
    g = torch.Generator().manual_seed(2)
    x = {m: torch.randn(4, 4, generator=g) for m in mods}
    present = {m: torch.ones(4, dtype=torch.bool) for m in mods}
    present["depth"] = torch.tensor([True, True, False, True])
    batch = make_batch(x, [0, 1, 2, 0], present)
    views, pseudo = etmc.evidence(batch)
    assert (pseudo[2] == 0).all() and (pseudo[[0, 1, 3]] > 0).all()
    expected = F.softplus(etmc.pseudo_head(torch.cat([x[m] for m in mods], dim=1)))
    assert torch.allclose(pseudo[[0, 1, 3]], expected[[0, 1, 3]])
    # the fold of TMC.py line 141, the modalities in order and the pseudo view last; the rule
    # is associative, so another order differs only by rounding, which equality does see
    fused = combine_evidence([views[m] for m in mods] + [pseudo])
    assert torch.equal(etmc(batch), fused.log())


# ---------------------------------------------------------------- gradient paths


def _grads(loss: torch.Tensor, modules: dict[str, torch.nn.Module]) -> dict[str, float]:
    params = {k: list(m.parameters()) for k, m in modules.items()}
    flat = [p for ps in params.values() for p in ps]
    grads = torch.autograd.grad(loss, flat, allow_unused=True)
    out, i = {}, 0
    for k, ps in params.items():
        out[k] = sum(float(g.abs().sum()) if g is not None else 0.0
                     for g in grads[i:i + len(ps)])
        i += len(ps)
    return out


def test_no_stop_gradient_the_pseudo_view_trains_both_encoders():
    torch.manual_seed(0)
    etmc = ETMC(linear_context(num_classes=3))
    etmc.start_epoch(5, 30)
    g = torch.Generator().manual_seed(0)
    batch = make_batch({m: torch.randn(6, 5, generator=g) for m in MODS}, torch.arange(6) % 3)
    modules = {"enc_audio": etmc.encoders["audio"], "enc_visual": etmc.encoders["visual"],
               "head_audio": etmc.heads["audio"], "head_visual": etmc.heads["visual"],
               "pseudo_head": etmc.pseudo_head}
    pseudo = _grads(etmc.training_loss(batch)["pseudo"], modules)
    assert pseudo["enc_audio"] > 0 and pseudo["enc_visual"] > 0 and pseudo["pseudo_head"] > 0
    assert pseudo["head_audio"] == 0 and pseudo["head_visual"] == 0
    combined = _grads(etmc.training_loss(batch)["combined"], modules)
    assert all(v > 0 for v in combined.values()), combined
    views = _grads(etmc.training_loss(batch)["views"], modules)
    assert views["pseudo_head"] == 0 and all(
        views[k] > 0 for k in ("enc_audio", "enc_visual", "head_audio", "head_visual"))


def test_absent_rows_get_no_gradient_and_non_finite_absent_inputs_are_harmless():
    torch.manual_seed(0)
    etmc = ETMC(linear_context(num_classes=3))
    etmc.start_epoch(5, 30)
    g = torch.Generator().manual_seed(1)
    x = {m: torch.randn(4, 5, generator=g).requires_grad_() for m in MODS}
    present = {"audio": torch.tensor([True, False, True, True]),
               "visual": torch.tensor([True, True, True, False])}
    etmc.training_loss(make_batch(x, [0, 1, 2, 0], present))["loss"].backward()
    assert (x["audio"].grad[1] == 0).all() and (x["visual"].grad[3] == 0).all()
    assert (x["audio"].grad[[0, 2, 3]].abs().sum(1) > 0).all()
    assert (x["visual"].grad[[0, 1, 2]].abs().sum(1) > 0).all()
    # an absent input's non-finite values reach neither the loss nor a head's gradient
    # (identity encoders: a linear encoder's own weight gradient would be 0 * nan)
    heads = ETMC(identity_context(dim=5, num_classes=3))
    heads.start_epoch(5, 30)
    nan = {m: v.detach().clone() for m, v in x.items()}
    nan["audio"][1] = float("nan")
    nan["visual"][3] = float("inf")
    loss = heads.training_loss(make_batch(nan, [0, 1, 2, 0], present))["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in heads.parameters())
