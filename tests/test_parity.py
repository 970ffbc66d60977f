"""Parity with the authors' code: OGM-GE, QMF, PDF and TMC on a fixed tiny batch.

Each test recomputes the reference formula independently (numpy / scipy arithmetic written
after the pinned reference lines, on the same weights and inputs) and compares it with what
the rambench method returns; a second set checks that each switch restores rambench's
previous form. The pins are the methods' `reference` attributes.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import digamma, gammaln
from torch import nn

from baselines.ogm_ge import OGMGE, OGMGEParams
from baselines.pdf import PDF, PDFParams
from baselines.qmf import QMF, QMFParams
from baselines.tmc import TMC, TMCParams
from rambench.errors import UsageError
from rambench.methods import MethodContext
from rambench.params import apply_overrides
from tests.helpers import identity_context, make_batch

MODS = ("audio", "visual")


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1))


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample CE (B,)."""
    return logsumexp(logits) - logits[np.arange(len(y)), y]


def feature_batch(seed=0, n=6, dim=4, num_classes=3):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    return make_batch({m: torch.randn(n, dim, generator=g) for m in MODS}, y)


def test_every_pinned_reference_is_owner_repo_at_commit_path():
    for cls in (OGMGE, QMF, PDF, TMC):
        repo, _, rest = cls.reference.partition("@")
        commit, _, path = rest.partition(":")
        assert repo.count("/") == 1 and len(commit) == 40 and path, cls.reference
        int(commit, 16)


# ---------------------------------------------------------------- OGM-GE


class TinyConv(nn.Module):
    """(B, 1, 4, 4) -> conv 3x3 (with bias) -> spatial mean -> Linear: one conv weight."""

    def __init__(self, dim: int, channels: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.proj = nn.Linear(channels, dim)

    def forward(self, x):
        return self.proj(self.conv(x).mean(dim=(2, 3)))


def _ogm(seed=3, **params):
    torch.manual_seed(seed)
    ctx = MethodContext(MODS, 3, 5, lambda m: TinyConv(5))
    method = OGMGE(ctx, OGMGEParams(**params))
    g = torch.Generator().manual_seed(seed)
    n = 12
    y = torch.arange(n) % 3
    # audio carries the label (a class-dependent offset), visual is noise
    audio = torch.randn(n, 1, 4, 4, generator=g) + 2.0 * y.view(-1, 1, 1, 1)
    visual = torch.randn(n, 1, 4, 4, generator=g)
    return method, make_batch({"audio": audio, "visual": visual}, y)


def _ogm_reference_coefficients(method, batch, alpha):
    """main.py lines 88-124, in numpy: (coeff_a, coeff_v, ratio_v) and the fused CE."""
    with torch.no_grad():
        a = np_(method.encoders["audio"](batch.inputs["audio"]))
        v = np_(method.encoders["visual"](batch.inputs["visual"]))
    w, b = np_(method.fusion.classifier.weight), np_(method.fusion.classifier.bias)
    half = w.shape[1] // 2
    y = batch.y.numpy()
    out = np.concatenate([a, v], 1) @ w.T + b
    out_a = a @ w[:, :half].T + b / 2
    out_v = v @ w[:, half:].T + b / 2
    score_a = softmax(out_a)[np.arange(len(y)), y].sum()
    score_v = softmax(out_v)[np.arange(len(y)), y].sum()
    ratio_v = score_v / score_a
    ratio_a = 1 / ratio_v
    if ratio_v > 1:
        coeff_v, coeff_a = 1 - math.tanh(alpha * max(ratio_v, 0.0)), 1.0
    else:
        coeff_a, coeff_v = 1 - math.tanh(alpha * max(ratio_a, 0.0)), 1.0
    return coeff_a, coeff_v, ratio_v, cross_entropy(out, y).mean()


def _grads(method, batch):
    method.zero_grad(set_to_none=True)
    out = method.training_loss(batch)
    out["loss"].backward()
    grads = {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}
    return out, grads


def test_ogm_defaults_follow_the_reference():
    p = OGMGEParams()
    assert (p.alpha, p.modulation_starts, p.modulation_ends) == (0.8, 0, 50)
    assert (p.coefficient, p.modulate, p.generalization_enhancement) == ("reference", "conv",
                                                                         True)
    # the switches are plain Literal fields: --set ogm_ge.coefficient=shifted
    q = apply_overrides(OGMGEParams, "ogm_ge", {"coefficient": "shifted", "modulate": "all"})
    assert (q.coefficient, q.modulate) == ("shifted", "all")
    with pytest.raises(UsageError):
        apply_overrides(OGMGEParams, "ogm_ge", {"coefficient": "relu"})


def test_ogm_coefficient_loss_and_conv_only_modulation_match_main_py():
    alpha = 0.8
    plain, batch = _ogm(alpha=0.0, generalization_enhancement=False)
    method, _ = _ogm(alpha=alpha, generalization_enhancement=False)
    coeff_a, coeff_v, _, ce = _ogm_reference_coefficients(method, batch, alpha)
    assert min(coeff_a, coeff_v) < 0.5  # one modality is modulated, strongly
    _, g0 = _grads(plain, batch)
    out, g1 = _grads(method, batch)
    assert out["k_audio"].item() == pytest.approx(coeff_a, rel=1e-5)
    assert out["k_visual"].item() == pytest.approx(coeff_v, rel=1e-5)
    assert out["loss"].item() == pytest.approx(ce, rel=1e-5)
    k = {"audio": coeff_a, "visual": coeff_v}
    for name, g in g0.items():
        parts = name.split(".")
        if parts[0] == "encoders" and parts[2] == "conv" and parts[3] == "weight":
            # main.py: only the 4-D (conv weight) gradients are multiplied by the coefficient
            assert torch.allclose(g1[name], k[parts[1]] * g, atol=1e-7), name
        else:  # conv bias, the projection and the fusion classifier keep their gradient
            assert torch.allclose(g1[name], g, atol=1e-7), name


def test_ogm_ge_noise_on_conv_weights_only_with_the_gradient_std():
    alpha = 0.8
    plain, batch = _ogm(alpha=0.0, generalization_enhancement=False)
    method, _ = _ogm(alpha=alpha)
    coeff_a, coeff_v, _, _ = _ogm_reference_coefficients(method, batch, alpha)
    _, g0 = _grads(plain, batch)
    torch.manual_seed(0)
    stds = {m: [] for m in MODS}
    for _ in range(20):  # 16 x 9 = 144 noise values a draw: pool 20 draws
        _, g1 = _grads(method, batch)
        for m, k in (("audio", coeff_a), ("visual", coeff_v)):
            name = f"encoders.{m}.conv.weight"
            stds[m].append((g1[name] - k * g0[name]).std().item())
        for name, g in g0.items():
            if not name.endswith("conv.weight"):
                assert torch.allclose(g1[name], g, atol=1e-7), name
    for m in MODS:  # main.py: N(0, std(g) + 1e-8) added also where the coefficient is 1
        target = g0[f"encoders.{m}.conv.weight"].std().item() + 1e-8
        assert np.mean(stds[m]) == pytest.approx(target, rel=0.15), m


def test_ogm_switches_restore_the_shifted_coefficient_and_all_parameters():
    alpha = 0.8
    plain, batch = _ogm(alpha=0.0, generalization_enhancement=False)
    method, _ = _ogm(alpha=alpha, generalization_enhancement=False, coefficient="shifted",
                     modulate="all")
    _, _, ratio_v, _ = _ogm_reference_coefficients(method, batch, alpha)
    rho = {"audio": 1 / ratio_v, "visual": ratio_v}
    # the old form: k = 1 - tanh(alpha relu(rho - 1))
    k = {m: 1 - math.tanh(alpha * max(rho[m] - 1, 0.0)) for m in MODS}
    assert min(k.values()) < 1.0 and max(k.values()) == 1.0
    _, g0 = _grads(plain, batch)
    out, g1 = _grads(method, batch)
    for m in MODS:
        assert out[f"k_{m}"].item() == pytest.approx(k[m], rel=1e-5)
    for name, g in g0.items():
        scale = k[name.split(".")[1]] if name.startswith("encoders.") else 1.0
        assert torch.allclose(g1[name], scale * g, atol=1e-7), name  # every encoder tensor


# ---------------------------------------------------------------- QMF


def _qmf(**params):
    torch.manual_seed(5)
    return QMF(identity_context(dim=4, num_classes=3), QMFParams(**params))


def _qmf_reference(qmf, batch, history):
    """QMF.py forward + train_QMF_nyud2.py model_forward_train + crl_utils, in numpy.

    history: {modality: the whole cumulative-loss buffer}. Returns (loss, ranking, ce, conf,
    per-sample unimodal losses)."""
    y = batch.y.numpy()
    idx = batch.index.numpy()
    logits = {m: np_(batch.inputs[m]) @ np_(qmf.heads[m].weight).T + np_(qmf.heads[m].bias)
              for m in MODS}
    conf = {m: -0.1 * -logsumexp(logits[m]) for m in MODS}  # -0.1 * energy
    fused = sum(logits[m] * conf[m][:, None] for m in MODS)
    clf = cross_entropy(fused, y).mean() + sum(cross_entropy(logits[m], y).mean() for m in MODS)
    rank = 0.0
    for m in MODS:
        buf = history[m]
        lo, hi = buf.min(), buf.max()
        idx2 = np.roll(idx, -1)
        t1, t2 = (buf[idx] - lo) / (hi - lo), (buf[idx2] - lo) / (hi - lo)
        target = (t1 > t2).astype(float) - (t1 < t2).astype(float)
        margin = np.abs(t1 - t2)
        nonzero = np.where(target == 0, 1.0, target)
        x1, x2 = conf[m], np.roll(conf[m], -1) + margin / nonzero
        # nn.MarginRankingLoss(margin=0)(x1, x2, -target) = mean max(0, target (x1 - x2))
        y_rank = -target
        rank += np.maximum(0.0, -y_rank * (x1 - x2)).mean()
    losses = {m: cross_entropy(logits[m], y) for m in MODS}
    return clf + 0.1 * rank, rank, cross_entropy(fused, y).mean(), conf, losses


def test_qmf_loss_weights_and_history_match_the_reference():
    qmf = _qmf()
    batch = feature_batch(n=6)
    batch.inputs = {m: 3 * x for m, x in batch.inputs.items()}
    batch.index = torch.tensor([4, 0, 7, 2, 5, 1])
    qmf._grow(9)
    # index 8 (not in the batch) has a large history: the batch's normalised gaps are small
    hist = torch.tensor([[0.9, 2.5, 1.0, 0.3, 1.7, 0.6, 0.0, 1.2, 30.0],
                         [2.0, 0.4, 0.8, 1.1, 0.2, 1.9, 0.7, 0.0, 25.0]])
    qmf.loss_sum.copy_(hist)
    history = {m: hist[i].double().numpy() for i, m in enumerate(MODS)}
    loss, rank, ce, conf, losses = _qmf_reference(qmf, batch, history)
    assert rank > 0.01  # the ranking term is active on this batch
    out = qmf.training_loss(batch)
    assert out["ranking"].item() == pytest.approx(rank, rel=1e-5)
    assert out["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert out["loss"].item() == pytest.approx(loss, rel=1e-5)
    # the fusion weights are the -0.1 * energy confidences
    logits, confidences = qmf.unimodal(batch)
    for m in MODS:
        assert np.allclose(np_(confidences[m]), conf[m], rtol=1e-5)
    # History.correctness_update after the step: the cumulative sum grows by the losses
    for i, m in enumerate(MODS):
        expected = history[m].copy()
        expected[batch.index.numpy()] += losses[m]
        assert np.allclose(qmf.loss_sum[i].double().numpy(), expected, rtol=1e-5)


def test_qmf_fused_loss_trains_through_the_weights_unless_detached():
    batch = feature_batch(n=6)
    for detach in (False, True):
        qmf = _qmf(detach_weights=detach)
        w = {m: qmf.heads[m].weight.detach().clone().requires_grad_(True) for m in MODS}
        b = {m: qmf.heads[m].bias.detach().clone() for m in MODS}
        logits = {m: batch.inputs[m] @ w[m].T + b[m] for m in MODS}
        conf = {m: 0.1 * torch.logsumexp(logits[m], 1) for m in MODS}
        if detach:
            conf = {m: c.detach() for m, c in conf.items()}
        fused = sum(logits[m] * conf[m][:, None] for m in MODS)
        torch.nn.functional.cross_entropy(fused, batch.y).backward()
        qmf.training_loss(batch)["ce"].backward()
        for m in MODS:
            assert torch.allclose(qmf.heads[m].weight.grad, w[m].grad, atol=1e-6), (detach, m)
    # and the two gradients differ: the confidence path carries gradient
    a, d = _qmf(), _qmf(detach_weights=True)
    a.training_loss(batch)["ce"].backward()
    d.training_loss(batch)["ce"].backward()
    assert not torch.allclose(a.heads["audio"].weight.grad, d.heads["audio"].weight.grad)


def test_qmf_constant_history_gives_zero_ranking_not_nan():
    qmf = _qmf()
    out = qmf.training_loss(feature_batch(n=6))  # first step: every history entry is 0
    assert out["ranking"].item() == 0.0 and torch.isfinite(out["loss"])


def test_qmf_mean_gap_switch_restores_the_old_ranking():
    qmf = _qmf(ranking="mean_gap")
    batch = feature_batch(n=4)
    qmf._grow(4)
    qmf.loss_sum.copy_(torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 1.0, 4.0]]))
    qmf.loss_count.copy_(torch.tensor([[2.0, 2.0, 1.0, 0.0], [1.0, 2.0, 1.0, 2.0]]))
    _, confidences = qmf.unimodal(batch)
    expected = 0.0
    for i, m in enumerate(MODS):
        c = confidences[m].detach().double().numpy()
        cnt = qmf.loss_count[i].numpy()
        h = qmf.loss_sum[i].numpy() / np.maximum(cnt, 1)
        terms = []
        for a in range(4):
            j = (a + 1) % 4
            if cnt[a] == 0 or cnt[j] == 0 or h[a] == h[j]:
                continue  # no history or a tie: skipped
            s = np.sign(h[j] - h[a])  # +1: sample a has the lower mean loss
            terms.append(max(0.0, -s * (c[a] - c[j]) + abs(h[a] - h[j])))
        expected += np.mean(terms)
    assert expected > 0
    assert qmf.training_loss(batch)["ranking"].item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------- PDF


def _pdf(**params):
    torch.manual_seed(7)
    return PDF(identity_context(dim=4, num_classes=3), PDFParams(**params))


def _pdf_reference(pdf, batch, test: bool):
    """latefusion_pdf.py ('pdf_train' / 'pdf_test') and train_pdf.py's loss, in numpy."""
    y = batch.y.numpy()
    z = {m: np_(batch.inputs[m]) for m in MODS}
    logits = {m: z[m] @ np_(pdf.heads[m].weight).T + np_(pdf.heads[m].bias) for m in MODS}
    tcp_pred = {}
    for m in MODS:  # ConfidNet: Linear, Linear, Linear, Sigmoid (no activation in between)
        h = z[m]
        for layer in list(pdf.tcp[m])[:3]:
            h = h @ np_(layer.weight).T + np_(layer.bias)
        tcp_pred[m] = 1 / (1 + np.exp(-h[:, 0]))
    ta, tv = tcp_pred["audio"], tcp_pred["visual"]
    holo_a = np.log(tv) / (np.log(ta * tv) + 1e-8)
    holo_v = np.log(ta) / (np.log(ta * tv) + 1e-8)
    cb = {"audio": ta + holo_a, "visual": tv + holo_v}
    if test:
        p = {m: softmax(logits[m]) for m in MODS}
        du = {m: np.abs(p[m] - 1 / p[m].shape[1]).mean(axis=1) for m in MODS}
        cond = du["audio"] > du["visual"]
        rc_a = np.where(cond, 1.0, du["audio"] / du["visual"])
        rc_v = np.where(cond, du["visual"] / du["audio"], 1.0)
        cb = {"audio": cb["audio"] * rc_a, "visual": cb["visual"] * rc_v}
    w = softmax(np.stack([cb["audio"], cb["visual"]], 1))
    fused = w[:, :1] * logits["audio"] + w[:, 1:] * logits["visual"]
    tcp = {m: softmax(logits[m])[np.arange(len(y)), y] for m in MODS}
    l1 = sum(np.abs(tcp_pred[m] - tcp[m]).mean() for m in MODS)
    mse = sum(((tcp_pred[m] - tcp[m]) ** 2).mean() for m in MODS)
    clf = cross_entropy(fused, y).mean() + sum(cross_entropy(logits[m], y).mean() for m in MODS)
    return {"fused": fused, "weights": w, "l1": l1, "mse": mse, "clf": clf}


def test_pdf_training_loss_and_weights_match_the_reference():
    pdf = _pdf().train()
    batch = feature_batch(n=6)
    ref = _pdf_reference(pdf, batch, test=False)
    out = pdf.training_loss(batch)
    assert out["tcp"].item() == pytest.approx(ref["l1"], rel=1e-5)
    assert out["loss"].item() == pytest.approx(ref["clf"] + ref["l1"], rel=1e-5)
    assert np.allclose(np_(pdf(batch)), ref["fused"], rtol=1e-5, atol=1e-6)
    logits, tcp = pdf.unimodal(batch)
    w = pdf.weights(logits, tcp, batch.present, calibrate=False)
    assert np.allclose(np_(w), ref["weights"], rtol=1e-5)
    assert ref["l1"] != pytest.approx(ref["mse"], rel=1e-3)  # the two losses do differ here


def test_pdf_test_time_calibration_matches_the_reference():
    pdf = _pdf().eval()
    batch = feature_batch(seed=2, n=6)
    ref = _pdf_reference(pdf, batch, test=True)
    untouched = _pdf_reference(pdf, batch, test=False)
    assert not np.allclose(ref["fused"], untouched["fused"])  # calibration is active
    with torch.no_grad():
        assert np.allclose(np_(pdf(batch)), ref["fused"], rtol=1e-5, atol=1e-6)


def test_pdf_switches_restore_mse_and_the_mlp_predictor():
    pdf = _pdf(tcp_loss="mse").train()
    batch = feature_batch(n=6)
    ref = _pdf_reference(pdf, batch, test=False)
    assert pdf.training_loss(batch)["tcp"].item() == pytest.approx(ref["mse"], rel=1e-5)
    old = _pdf(tcp_predictor="mlp", tcp_hidden=7)
    layers = list(old.tcp["audio"])
    assert [type(x) for x in layers] == [nn.Linear, nn.ReLU, nn.Linear, nn.Sigmoid]
    assert layers[0].weight.shape == (7, 4)
    z = torch.randn(5, 4)
    expected = torch.sigmoid(F.relu(z @ layers[0].weight.T + layers[0].bias) @ layers[2].weight.T
                             + layers[2].bias)
    assert torch.allclose(old.tcp["audio"](z), expected)
    ref_layers = list(_pdf().tcp["audio"])
    assert [tuple(x.weight.shape) for x in ref_layers[:3]] == [(8, 4), (4, 8), (1, 4)]


# ---------------------------------------------------------------- TMC


def test_tmc_loss_and_combination_match_the_reference():
    torch.manual_seed(11)
    tmc = TMC(identity_context(dim=4, num_classes=3), TMCParams(annealing_epochs=10))
    tmc.start_epoch(3, 30)  # annealing_coef = min(1, 3 / 10)
    batch = feature_batch(seed=4, n=5)
    y = batch.y.numpy()
    k = 3
    alpha = {}
    for m in MODS:
        h = np_(batch.inputs[m]) @ np_(tmc.heads[m].weight).T + np_(tmc.heads[m].bias)
        alpha[m] = np.log1p(np.exp(h)) + 1  # softplus evidence + 1

    def ds_combin_two(a1, a2):  # TMC.py DS_Combin_two
        s1, s2 = a1.sum(1, keepdims=True), a2.sum(1, keepdims=True)
        b1, b2, u1, u2 = (a1 - 1) / s1, (a2 - 1) / s2, k / s1, k / s2
        bb = b1[:, :, None] * b2[:, None, :]
        conflict = bb.sum((1, 2)) - np.trace(bb, axis1=1, axis2=2)
        b_a = (b1 * b2 + b1 * u2 + b2 * u1) / (1 - conflict)[:, None]
        u_a = u1 * u2 / (1 - conflict)[:, None]
        return b_a * (k / u_a) + 1

    def ce_loss(a, coef):  # TMC.py ce_loss + KL
        s = a.sum(1, keepdims=True)
        label = np.eye(k)[y]
        first = (label * (digamma(s) - digamma(a))).sum(1)
        alp = (a - 1) * (1 - label) + 1
        sa = alp.sum(1)
        kl = ((alp - 1) * (digamma(alp) - digamma(sa)[:, None])).sum(1) + gammaln(sa) \
            - gammaln(alp).sum(1) - gammaln(k)
        return (first + coef * kl).mean()

    fused = ds_combin_two(alpha["audio"], alpha["visual"])
    expected = sum(ce_loss(a, 0.3) for a in (alpha["audio"], alpha["visual"], fused))
    out = tmc.training_loss(batch)
    assert out["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert out["combined"].item() == pytest.approx(ce_loss(fused, 0.3), rel=1e-5)
    assert np.allclose(np_(tmc(batch)), np.log(fused), rtol=1e-5)
    # epoch 0: annealing_coef 0 (train_TMC_nyud2.py passes the 0-based i_epoch)
    tmc.start_epoch(0, 30)
    expected0 = sum(ce_loss(a, 0.0) for a in (alpha["audio"], alpha["visual"], fused))
    assert tmc.training_loss(batch)["loss"].item() == pytest.approx(expected0, rel=1e-5)
    assert expected0 != pytest.approx(expected, rel=1e-3)
