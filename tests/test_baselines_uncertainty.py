"""TMC, QMF, PDF and OGM-GE: core arithmetic by hand, presence masks, a training smoke."""

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.special import digamma, gammaln

from baselines.etmc import ETMC
from baselines.ogm_ge import OGMGE, OGMGEParams, ogm_coefficients
from baselines.pdf import (
    PDF,
    PDFParams,
    co_belief,
    distribution_uniformity,
    fusion_weights,
    relative_calibration,
)
from baselines.qmf import QMF, QMFParams, energy_confidence, fuse, ranking_loss
from baselines.tmc import TMC, TMCParams, combine, combine_evidence, evidential_loss, opinion
from tests.helpers import (
    accuracy_on,
    blobs,
    identity_context,
    linear_context,
    make_batch,
    train_epochs,
)

METHODS = {"tmc": TMC, "qmf": QMF, "pdf": PDF, "ogm_ge": OGMGE, "etmc": ETMC}


# ---------------------------------------------------------------- TMC


def test_dempster_shafer_combination_two_classes_by_hand():
    # K = 2. Opinion 1: b1 = (0.6, 0.2), u1 = 0.2;  opinion 2: b2 = (0.3, 0.5), u2 = 0.2.
    # conflict C = b1_0 b2_1 + b1_1 b2_0 = 0.6*0.5 + 0.2*0.3 = 0.36, 1 - C = 0.64
    # b_0 = (0.6*0.3 + 0.6*0.2 + 0.3*0.2) / 0.64 = 0.36 / 0.64 = 0.5625
    # b_1 = (0.2*0.5 + 0.2*0.2 + 0.5*0.2) / 0.64 = 0.24 / 0.64 = 0.375
    # u   = 0.2*0.2 / 0.64 = 0.0625            (0.5625 + 0.375 + 0.0625 = 1)
    b, u = combine(torch.tensor([[0.6, 0.2]]), torch.tensor([[0.2]]),
                   torch.tensor([[0.3, 0.5]]), torch.tensor([[0.2]]))
    assert torch.allclose(b, torch.tensor([[0.5625, 0.375]]))
    assert torch.allclose(u, torch.tensor([[0.0625]]))
    # The same opinions from evidence: u = K / S = 0.2 -> S = 10, e1 = b1 S = (6, 2), e2 = (3, 5).
    b1, u1 = opinion(torch.tensor([[6.0, 2.0]]))
    assert torch.allclose(b1, torch.tensor([[0.6, 0.2]])) and torch.allclose(u1, torch.tensor(0.2))
    # fused S = K / u = 32, alpha = b S + 1 = (19, 13)
    alpha = combine_evidence([torch.tensor([[6.0, 2.0]]), torch.tensor([[3.0, 5.0]])])
    assert torch.allclose(alpha, torch.tensor([[19.0, 13.0]]))


def test_vacuous_opinion_is_the_identity_and_combination_is_order_free():
    torch.manual_seed(0)
    e = [F.softplus(torch.randn(4, 5)) * 3 for _ in range(3)]
    assert torch.allclose(combine_evidence([e[0], torch.zeros(4, 5)]), e[0] + 1)
    assert torch.allclose(combine_evidence([torch.zeros(4, 5), e[0]]), e[0] + 1)
    assert torch.allclose(combine_evidence(e), combine_evidence(e[::-1]), rtol=1e-5)


def test_evidential_loss_matches_scipy():
    alpha = torch.tensor([[19.0, 13.0], [2.0, 7.0]], dtype=torch.float64)
    y = torch.tensor([0, 0])
    expected = []
    for a, label in zip(alpha.tolist(), y.tolist(), strict=True):
        s = sum(a)
        ace = digamma(s) - digamma(a[label])
        at = [1.0 if k == label else a[k] for k in range(2)]  # alpha~ = y + (1 - y) alpha
        st = sum(at)
        kl = (gammaln(st) - gammaln(2) - sum(gammaln(v) for v in at)
              + sum((v - 1) * (digamma(v) - digamma(st)) for v in at))
        expected.append((ace, kl))
    got0 = evidential_loss(alpha, y, 0.0)
    got = evidential_loss(alpha, y, 0.3)
    for i, (ace, kl) in enumerate(expected):
        assert got0[i].item() == pytest.approx(ace, rel=1e-10)
        assert got[i].item() == pytest.approx(ace + 0.3 * kl, rel=1e-10)


def test_tmc_annealing_and_prediction_is_log_alpha():
    tmc = TMC(identity_context(dim=4, num_classes=3), TMCParams(annealing_epochs=10))
    assert tmc.kl_weight == 0.0
    tmc.start_epoch(4, 30)
    assert tmc.kl_weight == pytest.approx(0.4)
    tmc.start_epoch(25, 30)
    assert tmc.kl_weight == 1.0
    torch.manual_seed(0)
    batch = make_batch({"audio": torch.randn(6, 4), "visual": torch.randn(6, 4)}, [0, 1, 2] * 2)
    evidence = tmc.evidence(batch)
    alpha = combine_evidence([evidence["audio"], evidence["visual"]])
    out = tmc(batch)
    assert torch.allclose(out, alpha.log())
    assert torch.allclose(out.softmax(1), alpha / alpha.sum(1, keepdim=True))  # expected probs
    b, u = combine(*opinion(evidence["audio"]), *opinion(evidence["visual"]))
    assert torch.equal(out.argmax(1), b.argmax(1))
    losses = tmc.training_loss(batch)
    assert torch.allclose(losses["loss"], losses["views"] + losses["combined"])


# ---------------------------------------------------------------- QMF


def test_qmf_weights_from_logits():
    logits = {"audio": torch.tensor([[0.0, math.log(3.0)]]), "visual": torch.tensor([[1.0, 1.0]])}
    # negative energy, T = 1: audio log(1 + 3) = log 4, visual log(2 e) = 1 + log 2
    conf = {m: energy_confidence(v) for m, v in logits.items()}
    assert conf["audio"].item() == pytest.approx(math.log(4))
    assert conf["visual"].item() == pytest.approx(1 + math.log(2))
    # T = 2: 2 log(exp(0) + exp(log(3) / 2)) = 2 log(1 + sqrt 3); scale 0.1 multiplies
    assert energy_confidence(logits["audio"], 2.0, 0.1).item() == pytest.approx(
        0.2 * math.log(1 + math.sqrt(3)))
    present = {"audio": torch.tensor([True]), "visual": torch.tensor([True])}
    fused, w = fuse(logits, conf, present)
    expected = math.log(4) * logits["audio"] + (1 + math.log(2)) * logits["visual"]
    assert torch.allclose(fused, expected)
    _, w_absent = fuse(logits, conf, {"audio": torch.tensor([False]), "visual": present["visual"]})
    assert w_absent["audio"].item() == 0.0


def test_qmf_ranking_loss_by_hand():
    conf = torch.tensor([0.2, 0.5, 0.9])
    hist = torch.tensor([0.1, 0.4, 0.4])
    # pairs (0,1), (1,2), (2,0):
    # (0,1): target sign(0.4 - 0.1) = +1, margin 0.3: relu(-(0.2 - 0.5) + 0.3) = 0.6
    # (1,2): equal history, skipped
    # (2,0): target sign(0.1 - 0.4) = -1, margin 0.3: relu((0.9 - 0.2) + 0.3) = 1.0
    assert ranking_loss(conf, hist, torch.ones(3, dtype=torch.bool)).item() == pytest.approx(0.8)
    # an invalid sample removes both pairs it belongs to
    valid = torch.tensor([True, True, False])
    assert ranking_loss(conf, hist, valid).item() == pytest.approx(0.6)
    assert ranking_loss(conf, hist, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_qmf_history_is_indexed_by_sample_id_and_skips_absent():
    torch.manual_seed(0)
    qmf = QMF(identity_context(dim=4, num_classes=3), QMFParams())
    present = {"audio": torch.tensor([True, False]), "visual": torch.tensor([True, True])}
    batch = make_batch({"audio": torch.randn(2, 4), "visual": torch.randn(2, 4)}, [0, 2], present)
    batch.index = torch.tensor([3, 5])
    out = qmf.training_loss(batch)
    assert out["ranking"].item() == 0.0  # no history yet
    assert qmf.loss_count.shape == (2, 6)
    assert qmf.loss_count[0].tolist() == [0, 0, 0, 1, 0, 0]  # audio: only sample 3
    assert qmf.loss_count[1].tolist() == [0, 0, 0, 1, 0, 1]
    ce = F.cross_entropy(qmf.heads["visual"](batch.inputs["visual"]), batch.y, reduction="none")
    assert torch.allclose(qmf.loss_sum[1, [3, 5]], ce.detach())
    qmf.training_loss(batch)
    hist, seen = qmf.history(1, torch.tensor([3, 5]))
    assert seen.all() and torch.allclose(hist, ce.detach(), atol=1e-6)  # mean of two equal losses


# ---------------------------------------------------------------- PDF


def test_pdf_co_belief_and_relative_calibration_by_hand():
    tcp = torch.tensor([[0.8, 0.5]])
    present = torch.ones(1, 2, dtype=torch.bool)
    # l = -log p^: l1 = 0.22314, l2 = 0.69315; holo_1 = l2 / (l1 + l2), holo_2 = l1 / (l1 + l2)
    l1, l2 = -math.log(0.8), -math.log(0.5)
    expected = [0.8 + l2 / (l1 + l2), 0.5 + l1 / (l1 + l2)]  # = [1.55647, 0.74353]
    belief = co_belief(tcp, present)
    assert belief[0].tolist() == pytest.approx(expected, rel=1e-5)
    # softmax weights over the two Co-Beliefs
    w = fusion_weights(belief, present)
    w1 = 1 / (1 + math.exp(expected[1] - expected[0]))
    assert w[0].tolist() == pytest.approx([w1, 1 - w1], rel=1e-5)
    # DU = mean_k |p_k - 1/3|: (0.7, 0.2, 0.1) -> 0.73333 / 3, (0.4, 0.3, 0.3) -> 0.13333 / 3
    du = distribution_uniformity(torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.3, 0.3]]))
    assert du.tolist() == pytest.approx([0.7333333 / 3, 0.1333333 / 3], rel=1e-5)
    # RC_1 = 0.7333 / 0.1333 = 5.5 -> min(1, .) = 1;  RC_2 = 0.1333 / 0.7333 = 0.181818
    rc = relative_calibration(du.view(1, 2), present)
    assert rc[0].tolist() == pytest.approx([1.0, 0.1333333 / 0.7333333], rel=1e-5)


def test_pdf_absent_modality_gets_zero_weight():
    tcp = torch.tensor([[0.8, 0.5], [0.3, 0.9], [0.5, 0.5]])
    present = torch.tensor([[True, False], [True, True], [False, False]])
    belief = co_belief(tcp, present)
    assert belief[0].tolist() == pytest.approx([0.8, 0.0])  # alone: holo = 0
    w = fusion_weights(belief, present)
    assert w[0].tolist() == [1.0, 0.0] and w[2].tolist() == [0.0, 0.0]
    rc = relative_calibration(torch.tensor([[0.1, 0.9], [0.1, 0.9], [0.1, 0.9]]), present)
    assert rc[0].tolist() == [1.0, 1.0] and rc[1, 0].item() == pytest.approx(1 / 9)


def test_pdf_calibration_only_at_test_time_and_tcp_regression_is_detached():
    torch.manual_seed(0)
    pdf = PDF(linear_context(num_classes=3))
    batch = make_batch({"audio": torch.randn(8, 5), "visual": torch.randn(8, 5)}, [0, 1, 2, 0] * 2)
    logits, tcp = pdf.unimodal(batch)
    w_train = pdf.weights(logits, tcp, batch.present, calibrate=False)
    w_test = pdf.weights(logits, tcp, batch.present, calibrate=True)
    assert torch.allclose(pdf.train()(batch), pdf.fuse(logits, w_train))
    assert torch.allclose(pdf.eval()(batch), pdf.fuse(logits, w_test))
    pdf.train()
    out = pdf.training_loss(batch)
    out["tcp"].backward()
    assert all(p.grad is None for p in pdf.encoders.parameters())  # regression stops at z
    assert all(p.grad is not None for p in pdf.tcp.parameters())


def test_pdf_selects_its_best_epoch_by_the_training_fusion_unless_told_otherwise():
    """train_pdf.py lines 120-124 and 255-266: validation runs 'pdf_train' (no relative
    calibration); select_by="calibrated" selects by the test-time fusion instead."""
    torch.manual_seed(0)
    batch = make_batch({"audio": torch.randn(8, 5), "visual": torch.randn(8, 5)}, [0, 1, 2, 0] * 2)
    for select_by, calibrate in (("training_fusion", False), ("calibrated", True)):
        torch.manual_seed(0)
        pdf = PDF(linear_context(num_classes=3), PDFParams(select_by=select_by)).eval()
        logits, tcp = pdf.unimodal(batch)
        w_train = pdf.weights(logits, tcp, batch.present, calibrate=False)
        w_test = pdf.weights(logits, tcp, batch.present, calibrate=True)
        assert not torch.allclose(w_train, w_test)  # the calibration matters on this batch
        expected = pdf.fuse(logits, w_test if calibrate else w_train)
        assert torch.allclose(pdf.validation_logits(batch), expected)
        assert torch.allclose(pdf(batch), pdf.fuse(logits, w_test))  # tested as calibrated


# ---------------------------------------------------------------- OGM-GE


def test_ogm_coefficients_by_hand():
    # s = (6, 3), alpha = 0.5: rho = (2, 0.5)
    # reference: k = (1 - tanh(0.5 * 2), 1) = (0.238406, 1);  shifted: (1 - tanh(0.5 * 1), 1)
    k = ogm_coefficients(torch.tensor([6.0, 3.0]), 0.5)
    assert k.tolist() == pytest.approx([1 - math.tanh(1.0), 1.0])
    k = ogm_coefficients(torch.tensor([6.0, 3.0]), 0.5, form="shifted")
    assert k.tolist() == pytest.approx([1 - math.tanh(0.5), 1.0])
    # three modalities, against the mean of the others: s = (4, 2, 2): rho = (2, 2/3, 2/3)
    k = ogm_coefficients(torch.tensor([4.0, 2.0, 2.0]), 0.5, form="shifted")
    assert k.tolist() == pytest.approx([1 - math.tanh(0.5), 1.0, 1.0])
    k = ogm_coefficients(torch.tensor([4.0, 2.0, 2.0]), 0.5)
    assert k.tolist() == pytest.approx([1 - math.tanh(1.0), 1.0, 1.0])
    # an invalid (absent) modality is unmodulated and not a reference
    k = ogm_coefficients(torch.tensor([4.0, 2.0, 9.0]), 0.5, torch.tensor([True, True, False]))
    assert k.tolist() == pytest.approx([1 - math.tanh(1.0), 1.0, 1.0])
    assert ogm_coefficients(torch.tensor([4.0]), 0.5).tolist() == [1.0]
    with pytest.raises(ValueError):
        ogm_coefficients(torch.tensor([4.0, 2.0]), 0.5, form="other")


def _ogm_pair(dim=8, in_dim=5, **params):
    torch.manual_seed(1)
    ctx = linear_context(dim=dim, in_dim=in_dim, num_classes=3)
    plain = OGMGE(ctx, OGMGEParams(alpha=0.0, generalization_enhancement=False))
    modulated = OGMGE(ctx, OGMGEParams(**params))
    modulated.load_state_dict(plain.state_dict())
    n = 32
    y = torch.arange(n) % 3
    # audio carries the label strongly, visual weakly: audio dominates
    audio = torch.randn(n, in_dim) + 3 * F.one_hot(y, in_dim)
    visual = torch.randn(n, in_dim) + 0.3 * F.one_hot(y, in_dim)
    return plain, modulated, make_batch({"audio": audio, "visual": visual}, y)


def _grads(method, batch):
    method.zero_grad(set_to_none=True)
    out = method.training_loss(batch)
    out["loss"].backward()
    return out, {n: p.grad.clone() for n, p in method.named_parameters()}


def test_ogm_scales_only_the_dominant_encoder_gradient():
    # modulate="all": every encoder parameter (the linear test encoders have no conv layer)
    plain, modulated, batch = _ogm_pair(alpha=10.0, generalization_enhancement=False,
                                        modulate="all")
    _, g0 = _grads(plain, batch)
    out, g1 = _grads(modulated, batch)
    k = {m: out[f"k_{m}"].item() for m in ("audio", "visual")}
    assert min(k.values()) < 0.9 and max(k.values()) == 1.0  # one dominant modality
    assert torch.allclose(out["loss"], plain.training_loss(batch)["loss"])  # same loss value
    for name in g0:
        if name.startswith("encoders."):  # each encoder's gradient is scaled by its own k_m
            assert torch.allclose(g1[name], k[name.split(".")[1]] * g0[name], atol=1e-7), name
        else:  # the fusion classifier is untouched
            assert torch.allclose(g1[name], g0[name], atol=1e-7), name
    # outside the modulation window nothing is scaled
    modulated.start_epoch(60, 100)
    _, g2 = _grads(modulated, batch)
    assert all(torch.allclose(g2[n], g0[n], atol=1e-7) for n in g0)


def test_ogm_ge_noise_has_the_gradient_std_and_hooks_do_not_accumulate():
    plain, modulated, batch = _ogm_pair(dim=64, in_dim=64, alpha=1.0)
    _, g0 = _grads(plain, batch)
    modulated.zero_grad(set_to_none=True)
    for _ in range(3):  # three losses built, only the last one backpropagated
        out = modulated.training_loss(batch)
    out["loss"].backward()
    for m in ("audio", "visual"):
        name = f"encoders.{m}.weight"
        k = out[f"k_{m}"].item()
        g = modulated.get_parameter(name).grad
        noise = g - k * g0[name]
        assert noise.std().item() == pytest.approx(g0[name].std().item(), rel=0.1), m
    assert torch.allclose(modulated.fusion.classifier.weight.grad, g0["fusion.classifier.weight"])
    # a later backward outside training_loss gets neither noise nor scaling
    modulated.zero_grad(set_to_none=True)
    F.cross_entropy(modulated(batch), batch.y).backward()
    for name, p in modulated.named_parameters():
        assert torch.allclose(p.grad, g0[name], atol=1e-6), name


# ---------------------------------------------------------------- all four


@pytest.mark.parametrize("name", list(METHODS))
def test_absent_modality_does_not_influence_the_prediction(name):
    torch.manual_seed(0)
    method = METHODS[name](linear_context(num_classes=3)).eval()
    visual = torch.randn(3, 5)
    present = {"audio": torch.tensor([True, False, False]),
               "visual": torch.tensor([True, True, False])}
    outs = [method(make_batch({"audio": torch.randn(3, 5) * 3, "visual": visual}, [0, 1, 2],
                              present)) for _ in range(2)]
    assert torch.allclose(outs[0][1:], outs[1][1:])  # audio absent in rows 1 and 2
    assert not torch.allclose(outs[0][0], outs[1][0])  # ... and used where present
    assert torch.isfinite(outs[0]).all()
    loss = method.train().training_loss(
        make_batch({"audio": torch.randn(3, 5), "visual": visual}, [0, 1, 2], present))["loss"]
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", list(METHODS))
def test_training_smoke_beats_chance(name):
    train, test = blobs()
    torch.manual_seed(0)
    method = METHODS[name](linear_context(num_classes=3))
    epochs = 30
    train_epochs(method, train, epochs, lr=0.02)
    accuracy = accuracy_on(method, test)
    assert accuracy > 0.6, accuracy  # chance is 1/3
    if name == "qmf":
        assert method.loss_count.sum().item() == 2 * 150 * epochs
