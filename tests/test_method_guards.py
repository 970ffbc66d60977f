"""Guards on what the methods' own tests leave open: the direction and the attention bias of
RAML's reliability gate, every stop-gradient of RAML, PDF and QMF (checked on the loss term
itself with `torch.autograd.grad`), the missing modality in RAML's corrupted-view gate, and
the baselines' defaults against their pinned reference code (every registered method and
adaptation must have its defaults pinned here).

`python benchmarks/mutations.py` applies one-line mutations of the methods and checks that
these tests catch each of them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.augmix import AugMixParams
from baselines.consistency import ConsistencyParams
from baselines.corrupt_aug import CorruptAugParams
from baselines.etmc import ETMCParams
from baselines.md import MDParams
from baselines.moddrop import ModDropParams
from baselines.ogm_ge import OGMGEParams
from baselines.pdf import PDF, PDFParams, co_belief, fusion_weights
from baselines.qmf import QMF, QMFParams
from baselines.read import READParams
from baselines.reconstruct import ReconstructParams
from baselines.shaspec import ShaSpecParams
from baselines.tent import TentParams
from baselines.tmc import TMCParams
from rambench.methods import MethodContext, methods
from rambench.methods.adaptation import adaptations
from rambench.methods.base import NoParams
from rambench.methods.raml import RAML, RAMLParams
from tests.helpers import identity_context, linear_context, make_batch

# float32 softmax / log / division of logits up to ~10 giving values up to 2: the logits'
# own rounding (10 x 2^-24 = 6e-7 absolute) moves a probability or a weight by < 1e-6
F32_TOL = 1e-6
# float64: roundings of 2^-53 = 1.1e-16, a few hundred operations per value through a
# one-layer transformer and a softmax: < 1e-13
F64_TOL = 1e-12


def gradients(loss: Tensor, inputs: Iterable[Tensor]) -> list[Tensor | None]:
    """d loss / d input for each input; None where the loss does not depend on it."""
    inputs = list(inputs)
    if not loss.requires_grad:  # a loss that depends on nothing trainable
        return [None] * len(inputs)
    return list(torch.autograd.grad(loss, inputs, allow_unused=True, retain_graph=True))


def no_gradient(loss: Tensor, inputs: Iterable[Tensor]) -> bool:
    """True if no input gets any gradient from `loss` (None or exactly 0 everywhere)."""
    return all(g is None or not g.any() for g in gradients(loss, inputs))


def some_gradient(loss: Tensor, inputs: Iterable[Tensor]) -> bool:
    """True if some input gets a nonzero gradient from `loss`."""
    return any(g is not None and bool(g.any()) for g in gradients(loss, inputs))


def spy_on_fuse(raml: RAML) -> list[dict]:
    """Record every call of raml.fusion.fuse: its tokens, missing masks, gate and (logits, h)."""
    calls: list[dict] = []
    fuse = raml.fusion.fuse

    def spy(tokens, missing, gate=None):
        out = fuse(tokens, missing, gate)
        calls.append({"tokens": tokens, "missing": missing, "gate": gate, "out": out})
        return out

    raml.fusion.fuse = spy
    return calls


# ---------------------------------------------------------------------- RAML test models


class MeanTokens(nn.Module):
    """Inputs are already tokens (B, N, d); forward pools them (no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=1)

    def tokens(self, x: Tensor) -> Tensor:
        return x


class LinearTokens(nn.Module):
    """Inputs (B, N, in_dim) -> tokens (B, N, dim) by one linear map: an encoder with
    parameters, so that a test can ask which losses reach it."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).mean(dim=1)

    def tokens(self, x: Tensor) -> Tensor:
        return self.proj(x)


MODS = ("audio", "visual")


def token_raml(num_classes: int = 3, dim: int = 4, encoder: str = "mean", **params) -> RAML:
    make = (lambda m: MeanTokens()) if encoder == "mean" else (lambda m: LinearTokens(3, dim))
    ctx = MethodContext(MODS, num_classes, dim, make)
    return RAML(ctx, RAMLParams(**{"layers": 1, **params}))


def constant_heads(raml: RAML, top_logit: dict[str, float]) -> None:
    """Each unimodal head ignores its input: logits (L_m, 0, ..., 0), so its confidence is
    c_m = e^L_m / (e^L_m + K - 1) for every sample."""
    with torch.no_grad():
        for m, head in raml.heads.items():
            head.weight.zero_()
            head.bias.zero_()
            head.bias[0] = top_logit[m]


def token_batch(b: int = 8, n: dict[str, int] | None = None, dim: int = 4, seed: int = 0,
                dtype: torch.dtype = torch.float32):
    n = n or {"audio": 3, "visual": 5}
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn(b, n[m], dim, generator=g, dtype=torch.float64).to(dtype)
              for m in MODS}
    return make_batch(inputs, [i % 3 for i in range(b)])


# ---------------------------------------------------------------------- RAML: the gate


def test_gate_of_confident_audio_brings_h_toward_the_audio_only_representation():
    """Heads that make the gate exactly [1.98, 0.02] (audio, visual) bring the fused h closer
    to the audio-only h (the same transformer on the audio tokens alone) than the heads
    that make it [0.02, 1.98]; and symmetrically for visual."""
    k = 100  # c >= 1/K, and w_a / w_v = c_a / c_v = 99 needs K >= 99
    raml = token_raml(num_classes=k, norm="none", token_corruption=0.0).eval()
    batch = token_batch()
    # logit L = ln(99^2): c = 99^2 / (99^2 + 99) = 0.99; zero logits: c = 1/K = 0.01;
    # w = 2 c / (c_a + c_v) = 2 (0.99, 0.01) / 1.0 = (1.98, 0.02)
    sure, unsure = math.log(99.0 ** 2), 0.0
    with torch.no_grad():
        raw = raml.encode_tokens(batch)
        missing = raml.fusion.absent_mask(raw, batch.present)
        parts = raml.fusion.embed(raw, missing)
        alone = {m: raml.fusion.norm(raml.fusion.encoder(x).mean(dim=1))
                 for m, x in zip(MODS, parts, strict=True)}
        h, gates = {}, {}
        for favoured, logits in (("audio", (sure, unsure)), ("visual", (unsure, sure))):
            constant_heads(raml, dict(zip(MODS, logits, strict=True)))
            gates[favoured] = raml.gate_weights(raml.features(batch), batch.present)
            h[favoured] = raml._fuse_tokens(raw, missing, batch.present)[1]
    expected = {"audio": [1.98, 0.02], "visual": [0.02, 1.98]}
    for favoured, w in gates.items():
        assert torch.allclose(w, torch.tensor([expected[favoured]]).expand(8, 2),
                              atol=F32_TOL), favoured
    for m, other in (("audio", "visual"), ("visual", "audio")):
        toward = (h[m] - alone[m]).norm(dim=1)
        away = (h[other] - alone[m]).norm(dim=1)
        assert (toward < away).all(), (m, toward, away)


def attention_probabilities(raml: RAML, tokens: dict, missing: dict,
                            gate: Tensor | None) -> Tensor:
    """The attention probabilities (B, heads, N, N) of the (one-layer) fusion transformer
    in a call of fusion.fuse, read from its self-attention."""
    attn = raml.fusion.encoder.layers[0].self_attn
    forward, seen = attn.forward, []

    def spy(*args, **kwargs):
        kwargs.update(need_weights=True, average_attn_weights=False)
        out, weights = forward(*args, **kwargs)
        seen.append(weights)
        return out, weights

    attn.forward = spy
    try:
        raml.fusion.fuse(tokens, missing, gate)
    finally:
        del attn.forward
    assert len(seen) == 1
    return seen[0]


def test_gate_bias_multiplies_attention_to_each_modality_by_its_weight():
    """log w_m added to the logits of modality m's keys: every query's attention to a key
    of m is the ungated attention times w_m, renormalised, so a confident modality draws
    more attention than without the gate (computed by hand from the ungated attention)."""
    torch.manual_seed(0)
    raml = token_raml(norm="none", token_corruption=0.0, heads=2).double().eval()
    n = {"audio": 3, "visual": 5}
    batch = token_batch(b=4, n=n, dtype=torch.float64)
    tokens = {m: batch.inputs[m] for m in MODS}
    missing = raml.fusion.absent_mask(tokens, batch.present)
    keys = torch.tensor([True] * n["audio"] + [False] * n["visual"])  # audio's keys
    with torch.no_grad():
        plain = attention_probabilities(raml, tokens, missing, None)
        for w in ([1.98, 0.02], [0.02, 1.98], [1.3, 0.7]):
            gate = torch.tensor([w], dtype=torch.float64).expand(4, 2)
            got = attention_probabilities(raml, tokens, missing, gate)
            per_key = torch.where(keys, gate[0, 0], gate[0, 1])  # float64, like the gate
            expected = plain * per_key
            expected = expected / expected.sum(dim=-1, keepdim=True)
            assert torch.allclose(got, expected, rtol=0, atol=F64_TOL), w
            # the favoured modality's keys get more of every query's attention
            to_audio, plain_audio = got[..., keys].sum(-1), plain[..., keys].sum(-1)
            assert ((to_audio > plain_audio) == (w[0] > w[1])).all(), w


def test_gate_reads_the_constrained_features():
    """The confidence c_m = max softmax of g_m(z_m) reads the norm-constrained z_m, the
    feature the heads are trained on, not the raw (inflated) one."""
    raml = token_raml(norm="clamp", radius=1.0, token_corruption=0.0).eval()
    with torch.no_grad():
        for head in raml.heads.values():
            head.weight.copy_(torch.eye(3, 4) * 2.0)
            head.bias.zero_()
    d = torch.tensor([0.5, -0.5, 1.0, 0.0])
    audio = torch.stack([torch.tensor([3.0, 4.0, 0.0, 0.0]) + d,  # mean (3, 4, 0, 0): norm 5
                         torch.tensor([3.0, 4.0, 0.0, 0.0]) - d]).unsqueeze(0)
    visual = torch.tensor([[[0.0, 0.0, 0.5, 0.0]] * 2])  # norm 0.5 < r: unchanged
    batch = make_batch({"audio": audio, "visual": visual}, [0])
    calls = spy_on_fuse(raml)
    with torch.no_grad():
        raml(batch)
    # clamped audio (0.6, 0.8, 0, 0): logits (1.2, 1.6, 0); visual logits (0, 0, 1)
    c_a = math.exp(1.6) / (math.exp(1.2) + math.exp(1.6) + 1)
    c_v = math.e / (math.e + 2)
    expected = [2 * c_a / (c_a + c_v), 2 * c_v / (c_a + c_v)]  # (0.962, 1.038)
    assert calls[0]["gate"][0].tolist() == pytest.approx(expected, abs=F32_TOL)
    # the raw feature's logits (6, 8, 0) would give c_a = 0.881 and (1.209, 0.791)
    raw_c = math.exp(8) / (math.exp(6) + math.exp(8) + 1)
    assert 2 * raw_c / (raw_c + c_v) - expected[0] > 0.2


def test_corrupted_view_gate_counts_a_wholly_missing_modality_as_absent():
    """In the corrupted view a modality all of whose tokens were made missing gets the
    chance confidence 1/K, whatever its (untouched) features say."""
    torch.manual_seed(0)
    raml = token_raml(token_corruption=1.0, view_scope="modality", token_fill="missing",
                      norm="none")
    # c_a = 8 / (8 + 2) = 0.8, c_v = 2 / (2 + 2) = 0.5, chance 1/3
    constant_heads(raml, {"audio": math.log(8.0), "visual": math.log(2.0)})
    calls = spy_on_fuse(raml)
    raml.training_loss(token_batch(b=16))
    assert len(calls) == 2  # the clean view, then the corrupted one
    clean, corrupted = calls[0]["gate"], calls[1]["gate"]
    # clean: 2 (0.8, 0.5) / 1.3 = (16/13, 10/13)
    assert torch.allclose(clean, torch.tensor([[16 / 13, 10 / 13]]).expand(16, 2),
                          atol=F32_TOL)
    hit = {m: calls[1]["missing"][m].all(dim=1) for m in MODS}
    assert torch.equal(hit["audio"], ~hit["visual"])  # one whole modality per sample
    assert hit["audio"].any() and hit["visual"].any()
    # audio missing: 2 (1/3, 0.5) / (5/6) = (0.8, 1.2);
    # visual missing: 2 (0.8, 1/3) / (17/15) = (24/17, 10/17)
    expected = torch.where(hit["audio"].unsqueeze(1), torch.tensor([[0.8, 1.2]]),
                           torch.tensor([[24 / 17, 10 / 17]]))
    assert torch.allclose(corrupted, expected, atol=F32_TOL)


# ---------------------------------------------------------------------- RAML: stop-gradients


def test_consistency_term_does_not_train_the_clean_view():
    """L_cons = |h(corrupted) - stopgrad(h(clean))|^2 / width: with the audio tokens all
    missing in the corrupted view, the audio encoder is reached only through h(clean), so
    it gets no gradient from L_cons, while it would without the stop-gradient."""
    torch.manual_seed(0)
    raml = token_raml(encoder="linear", token_corruption=1.0, norm="clamp")

    def audio_missing(tokens, missing):
        return tokens, {**missing, "audio": torch.ones_like(missing["audio"])}

    raml.corrupt_tokens = audio_missing
    calls = spy_on_fuse(raml)
    batch = token_batch(dim=3)
    out = raml.training_loss(batch)
    audio_encoder = list(raml.encoders["audio"].parameters())
    assert no_gradient(out["consistency"], audio_encoder)
    # the corrupted view is trained by it ...
    assert some_gradient(out["consistency"], raml.encoders["visual"].parameters())
    # ... and without the stop-gradient the clean view (the audio encoder) would be too
    h, h_c = calls[0]["out"][1], calls[1]["out"][1]
    assert torch.allclose(out["consistency"], F.mse_loss(h_c, h), atol=0, rtol=F32_TOL)
    assert some_gradient(F.mse_loss(h_c, h), audio_encoder)


@pytest.mark.parametrize("fusion", ["tokens", "concat"])
def test_fusion_loss_does_not_train_the_unimodal_heads_through_the_gate(fusion):
    """The gate's confidences are detached: the fused cross-entropy reaches the unimodal
    heads only through the gate, so it gives them no gradient, while an undetached gate
    would."""
    torch.manual_seed(0)
    raml = token_raml(encoder="linear", fusion=fusion, token_corruption=0.0, norm="clamp")
    batch = token_batch(dim=3)
    out = raml.training_loss(batch)
    heads = list(raml.heads.parameters())
    assert no_gradient(out["ce"], heads)
    assert some_gradient(out["unimodal"], heads)  # the heads do train, on their own task
    # the same fused loss with the confidences not detached
    z = raml.features(batch)
    conf = torch.stack([F.softmax(raml.heads[m](z[m]), 1).amax(1) for m in MODS], 1)
    gate = 2 * conf / conf.sum(dim=1, keepdim=True)
    if fusion == "tokens":
        raw = raml.encode_tokens(batch)
        _, scaled, _ = raml.constrain_tokens(raw)
        logits = raml.fusion.fuse(scaled, raml.fusion.absent_mask(raw, batch.present), gate)[0]
    else:
        logits = raml.fusion({m: z[m] * gate[:, i:i + 1] for i, m in enumerate(MODS)},
                             batch.present)
    undetached = F.cross_entropy(logits, batch.y)
    assert torch.allclose(undetached, out["ce"], atol=0, rtol=F32_TOL)  # the same value
    assert some_gradient(undetached, heads)


# ---------------------------------------------------------------------- PDF: stop-gradients


def pdf_setup(params: PDFParams | None = None):
    torch.manual_seed(0)
    pdf = PDF(linear_context(num_classes=3), params)
    g = torch.Generator().manual_seed(1)
    batch = make_batch({m: torch.randn(8, 5, generator=g) for m in MODS}, [0, 1, 2, 0] * 2)
    return pdf, batch


def test_pdf_fusion_weights_are_detached_in_training_and_at_test_time():
    """latefusion_pdf.py lines 49-56 and 80: the Co-Beliefs and the fusion weights are
    detached, so the fused cross-entropy never trains the confidence predictors."""
    pdf, batch = pdf_setup()
    predictors = list(pdf.tcp.parameters())
    out = pdf.training_loss(batch)
    assert no_gradient(out["ce"], predictors)
    assert some_gradient(out["tcp"], predictors)  # they are trained by their regression
    logits = pdf.eval()(batch)  # relative calibration on
    assert no_gradient(F.cross_entropy(logits, batch.y), predictors)
    # the same fused loss with undetached weights would train them
    pdf.train()
    unimodal, tcp = pdf.unimodal(batch)
    mask = torch.stack([batch.present[m] for m in MODS], 1)
    weights = fusion_weights(co_belief(torch.stack([tcp[m] for m in MODS], 1), mask), mask)
    undetached = F.cross_entropy(pdf.fuse(unimodal, weights), batch.y)
    assert torch.allclose(undetached, out["ce"], atol=0, rtol=F32_TOL)
    assert some_gradient(undetached, predictors)


@pytest.mark.parametrize("tcp_loss", ["l1", "mse"])
def test_pdf_tcp_regression_trains_only_the_predictors(tcp_loss):
    """train_pdf.py line 190: the target p_m[y] is detached, and the predictors read the
    detached features (latefusion_pdf.py lines 43-46): the regression reaches neither the
    unimodal classifiers nor the encoders."""
    pdf, batch = pdf_setup(PDFParams(tcp_loss=tcp_loss))
    out = pdf.training_loss(batch)
    assert no_gradient(out["tcp"], pdf.heads.parameters())
    assert no_gradient(out["tcp"], pdf.encoders.parameters())
    # with an undetached target the classifiers would get a gradient
    _, tcp = pdf.unimodal(batch)
    z = pdf.encode(batch)
    regress = F.l1_loss if tcp_loss == "l1" else F.mse_loss
    undetached = sum(
        regress(tcp[m], pdf.heads[m](z[m]).softmax(1).gather(1, batch.y[:, None]).squeeze(1))
        for m in MODS)
    assert torch.allclose(undetached, out["tcp"], atol=0, rtol=F32_TOL)
    assert some_gradient(undetached, pdf.heads.parameters())


# ---------------------------------------------------------------------- QMF: gradient paths


def qmf_setup(params: QMFParams):
    torch.manual_seed(0)
    qmf = QMF(identity_context(dim=4, num_classes=3), params)
    seen: dict = {}
    unimodal = qmf.unimodal

    def spy(batch):
        logits, conf = unimodal(batch)
        seen.update(logits=logits, conf=conf)
        return logits, conf

    qmf.unimodal = spy
    g = torch.Generator().manual_seed(2)
    batch = make_batch({m: torch.randn(6, 4, generator=g) for m in MODS}, [0, 1, 2] * 2)
    return qmf, batch, seen


@pytest.mark.parametrize("detach", [False, True])
def test_qmf_fused_loss_trains_the_confidences_unless_detach_weights(detach):
    """QMF.py line 74 weights each modality's logits by its confidence, not detached: the
    fused cross-entropy's gradient at w_m is sum_k dCE/df_k f_m,k (by hand). The old form
    (detach_weights=True) gives the confidences none."""
    qmf, batch, seen = qmf_setup(QMFParams(detach_weights=detach))
    out = qmf.training_loss(batch)
    conf, logits = seen["conf"], seen["logits"]
    got = gradients(out["ce"], [conf[m] for m in MODS])
    if detach:
        assert got == [None, None]
        return
    assert all(g is not None for g in got)
    with torch.no_grad():
        fused = sum(conf[m].unsqueeze(1) * logits[m] for m in MODS)
        d_fused = (fused.softmax(1) - F.one_hot(batch.y, 3)) / len(batch.y)  # dCE/dfused
        for g, m in zip(got, MODS, strict=True):
            expected = (d_fused * logits[m]).sum(dim=1)
            assert expected.abs().max() > 1e-3  # a gradient the assertion below can see
            # float32 sums of 3 products of O(1) values and a softmax: relative error < 1e-6
            assert torch.allclose(g, expected, rtol=1e-5, atol=F32_TOL), m


def test_qmf_ranking_trains_the_confidences_and_the_history_carries_no_gradient():
    """train_QMF_nyud2.py lines 97-101: the ranking is on the undetached confidences; the
    per-sample losses kept in the history are detached. By hand: an active pair (i, j)
    contributes t_ij / P to dR/dw_i and -t_ij / P to dR/dw_j (P pairs)."""
    qmf, batch, seen = qmf_setup(QMFParams())
    qmf._grow(8)
    with torch.no_grad():
        # batch samples 0-5 have nearly equal histories (gaps of 1e-4 after the min-max
        # normalisation by 1000), samples 6 and 7 stretch the buffer to [0, 1000]
        qmf.loss_sum[:, :6] = 500.0 + 0.1 * torch.tensor([0.0, 3.0, 1.0, 4.0, 1.5, 5.0])
        qmf.loss_sum[:, 6], qmf.loss_sum[:, 7] = 0.0, 1000.0
        history = qmf.loss_sum[:, :6].clone()
    out = qmf.training_loss(batch)
    conf = seen["conf"]
    got = gradients(out["ranking"], [conf[m] for m in MODS])
    assert all(g is not None for g in got)
    j = torch.roll(torch.arange(6), -1)
    for i_m, (g, m) in enumerate(zip(got, MODS, strict=True)):
        c = conf[m].detach()
        n = history[i_m] / 1000.0
        t = torch.sign(n - n[j])
        active = (t * (c - c[j]) - (n - n[j]).abs()) > 0
        assert active.any() and not active.all()
        expected = torch.zeros(6).index_add(0, torch.arange(6), t * active / 6)
        expected = expected.index_add(0, j, -t * active / 6)
        assert torch.allclose(g, expected, atol=F32_TOL), m
    assert not qmf.loss_sum.requires_grad


# ---------------------------------------------------------------------- defaults

# Each expected default with where it comes from. For the methods with a pinned reference
# (`reference` = owner/repo@commit:path), the line of the pinned commit that sets it; where
# the reference has no such setting, "ours" and why.
REFERENCE_DEFAULTS = {
    # hanmenghan/TMC@08d0ca4c4461b6de1cf73514d8c621598bc2b504
    TMCParams: {
        # ETMC TPAMI/train_TMC_nyud2.py:37
        #   parser.add_argument("--annealing_epoch", type=int, default=10)
        "annealing_epochs": 10,
    },
    # billhhh/ShaSpec@081fe7a1e40d6bbc0736dc93e779a0a5a439d091
    ShaSpecParams: {
        "alpha": 0.1,  # train_SS.py:25, the distribution-alignment weight
        "beta": 0.02,  # train_SS.py:26, the domain-classification weight
        "warmup": 80_000 / 180_000,  # run.sh:11 and :34: full modalities, then random mode
        "fill": "mean",  # DualNet_SS.py:412-414 (the paper's mean; :411 is "first")
    },
    # hanmenghan/TMC@08d0ca4c4461b6de1cf73514d8c621598bc2b504 (as TMC)
    ETMCParams: {
        # ETMC TPAMI/train_ETMC_nyud2.py:37 (train_ETMC_sunrgbd.py:37 the same)
        #   parser.add_argument("--annealing_epoch", type=int, default=10)
        "annealing_epochs": 10,
    },
    # TencentAILabHealthcare/mmdynamics@06a2bb8a66953be77c53e6a027bc04193c5bdca4
    MDParams: {
        # train_test.py:93 (BRCA) and :99 (ROSMAP)  hidden_dim = [1000]
        "hidden": 1000,
        # train_test.py:111  model = MMDynamic(dim_list, hidden_dim, num_class, dropout=0.5)
        "dropout": 0.5,
        # ours: model.py:66  MMLoss = MMLoss+torch.mean(FeatureInfo[view])  has weight 1,
        # which closes every gate on jointly learned features (baselines/md.py, deviations)
        "sparsity_weight": 0.1,
        # model.py:69  confidence_loss = torch.mean(F.mse_loss(TCPConfidence[view].view(-1),
        #   p_target)+criterion(TCPLogit[view], label))  (both terms weight 1)
        "confidence_weight": 1.0,
        "unimodal_weight": 1.0,
        # model.py:67-68  p_target = torch.gather(input=pred, ...)  (pred not detached)
        "detach_target": False,
    },
    # QingyangZhang/QMF@fe6c4c6ef7cb23f0a89594ee413d485f1854268b, RGBD-scene-recognition/
    QMFParams: {
        # train_QMF_nyud2.py:42  parser.add_argument("--lamb", type=float, default=0.1)
        "lam": 0.1,
        # models/QMF.py:67-68  rgb_energy = -torch.logsumexp(rgb_out, dim=1)  (no temperature)
        "temperature": 1.0,
        # models/QMF.py:70-71  rgb_conf = -0.1*torch.reshape(rgb_energy, (-1,1))
        "confidence_scale": 0.1,
        # models/QMF.py:74  depth_rgb_out = (depth_out*depth_conf + rgb_out*rgb_conf)  (no detach)
        "detach_weights": False,
        # train_QMF_nyud2.py:57-76  rank_loss on history.get_target_margin (crl_utils History)
        "ranking": "reference",
    },
    # Yinan-Xia/PDF@864867426cde076fb3d0529d4df6b440d6963451
    PDFParams: {
        # src/models/latefusion_pdf.py:24-35  ConfidNet: Linear(d, 2d), Linear(2d, d),
        # Linear(d, 1), Sigmoid()
        "tcp_predictor": "reference",
        # train_pdf.py:178  maeloss = nn.L1Loss(reduction='mean')
        "tcp_loss": "l1",
        # ours: the width of the "mlp" predictor, which the reference does not have
        "tcp_hidden": 64,
        # ours: the reference takes log of the raw sigmoid (latefusion_pdf.py:47-48), no clamp
        "eps": 1e-6,
        # src/models/latefusion_pdf.py:66-74 ('pdf_test'), used by test_pdf.py:180
        "relative_calibration": True,
        # train_pdf.py:120-124, 255-266: model_eval validates with 'pdf_train' (no calibration)
        "select_by": "training_fusion",
    },
    # GeWu-Lab/OGM-GE_CVPR2022@343dc1d95c9bda88f105c0da8d24f185e0e98b54
    OGMGEParams: {
        # README.md:151  "we recommend alpha=0.1 for VGGSound and alpha=0.8 for CREMA-D"
        # (main.py:43 --alpha is required, no default)
        "alpha": 0.8,
        # main.py:41  parser.add_argument('--modulation_starts', default=0, type=int, ...)
        "modulation_starts": 0,
        # main.py:42  parser.add_argument('--modulation_ends', default=50, type=int, ...)
        "modulation_ends": 50,
        # main.py:23  parser.add_argument('--modulation', default='OGM_GE', ...)
        "generalization_enhancement": True,
        # main.py:119-124  coeff = 1 - tanh(args.alpha * relu(ratio)) if ratio > 1, else 1
        "coefficient": "reference",
        # main.py:136, 143  ... and len(parms.grad.size()) == 4  (conv weights only)
        "modulate": "conv",
    },
    # google-research/augmix@a43b785668b38f5a1fef90793d8b23f43729aeaf, cifar.py
    AugMixParams: {
        # cifar.py:234  loss += 12 * (F.kl_div(p_mixture, p_clean, ...) + ...) / 3.
        "lam": 12.0,
        # cifar.py:85-87  '--mixture-width', default=3
        "width": 3,
        # cifar.py:91-94  '--mixture-depth', default=-1: "stochastic depth in [1, 3]";
        # cifar.py:172-173  np.random.randint(1, 4)
        "depth": 3,
        # cifar.py:96-97  '--aug-severity', default=3
        "severity": 3.0,
        # cifar.py:166-167  np.random.dirichlet([1] * args.mixture_width), np.random.beta(1, 1)
        "alpha": 1.0,
    },
    # DequanWang/tent@7d236b42a3020f488a75d041f31a3f4ef4a521ea (cfgs/tent.yaml is the same
    # at fc5705f, the commit baselines/tent.py cites for it)
    TentParams: {
        # cfgs/tent.yaml:4-5  TEST: BATCH_SIZE: 200  (conf.py:97 _C.TEST.BATCH_SIZE = 128
        # is overridden by it)
        "batch_size": 200,
        # cfgs/tent.yaml:34  LR: 1e-3
        "lr": 1e-3,
        # cfgs/tent.yaml:31  METHOD: Adam
        "optimizer": "adam",
        # cfgs/tent.yaml:32  STEPS: 1
        "steps": 1,
        # conf.py:39  _C.MODEL.EPISODIC = False  (cfgs/tent.yaml does not set it)
        "episodic": False,
    },
    # XLearning-SCU/2024-ICLR-READ@2f11912fe6959535928ba5754ce4d5a2cb2661b7
    READParams: {
        # run_read.py:29  parser.add_argument('-b', '--batch-size', default=64, ...)
        "batch_size": 64,
        # run_read.py:147-149  torch.optim.Adam([{'params': params, 'lr': 1e-4}],
        #   weight_decay=0., betas=(0.9, 0.999))  (--lr, line 27, has the same 1e-4)
        "lr": 1e-4,
        # TTA/READ.py:57  gamma = math.exp(-1)
        "gamma": math.exp(-1),
        # TTA/READ.py:61  loss = loss_ra - 1 * loss_bal
        "balance": 1.0,
        # TTA/READ.py:14  def __init__(self, model, optimizer, device, args, steps=1, ...)
        # (run_read.py:151 READ.READ(va_model, optimizer, device, args): the default)
        "steps": 1,
    },
}

# Baselines without reference code (`reference = ""`): the defaults their module docstring
# states ("Hyper-parameters: ..."), which results already stored were run with.
DOCSTRING_DEFAULTS = {
    ModDropParams: {"p": 0.3},  # baselines/moddrop.py: "Hyper-parameters: p = 0.3"
    # baselines/reconstruct.py: "p = 0.3, lam = 1.0, hidden = 256, stopgrad = True"
    ReconstructParams: {"p": 0.3, "lam": 1.0, "hidden": 256, "stopgrad": True},
    # baselines/consistency.py: "lam = 1.0, drop_prob = 0.5, severity = 3"
    ConsistencyParams: {"lam": 1.0, "drop_prob": 0.5, "severity": 3.0},
    # baselines/corrupt_aug.py: "p = 0.5, seen = False, severity = 3"
    CorruptAugParams: {"p": 0.5, "seen": False, "severity": 3.0},
    # late_fusion, audio_only, visual_only: no hyper-parameters
    NoParams: {},
}

# The method under study: every default is ours (rambench/methods/raml.py, module docstring
# and the comment above RAMLParams), chosen by the validation ablation (grid raml-ablation:
# norm = clamp with beta = 0.1, the other switches kept theirs; gamma = 1 and the sizes
# untuned); results already stored were run with them.
OUR_DEFAULTS = {
    RAMLParams: {
        "unimodal_heads": True, "alpha": 1.0,
        "norm": "clamp", "beta": 0.1, "radius": 0.0,
        "fusion": "tokens", "tokens": "map", "num_tokens": 8, "max_tokens": 16,
        "width": 64, "layers": 2, "heads": 4,
        "token_corruption": 0.5, "view_scope": "both", "rho_min": 0.25, "token_fill": "mix",
        "inflate_max": 10.0, "gamma": 1.0,
        "gate": True,
    },
}
ALL_DEFAULTS = {**REFERENCE_DEFAULTS, **DOCSTRING_DEFAULTS, **OUR_DEFAULTS}


@pytest.mark.parametrize("params", list(ALL_DEFAULTS), ids=lambda cls: cls.__name__)
def test_baseline_defaults_are_the_references(params):
    expected = ALL_DEFAULTS[params]
    defaults = dataclasses.asdict(params())
    assert set(defaults) == set(expected), "a field without a pinned default"
    for name, value in expected.items():
        assert defaults[name] == value and type(defaults[name]) is type(value), name


def test_every_registered_method_and_adaptation_has_pinned_defaults():
    """A new method or adaptation (built in: its module in baselines/ or rambench/) whose
    Params has no entry in the tables above fails here: its defaults must be pinned, each
    with its reference line (or "ours" and why)."""
    registered = {f"method {name}": methods.get(name) for name in methods.names()}
    registered |= {f"adaptation {name}": adaptations.get(name)
                   for name in adaptations.names()}
    builtin = {label: cls for label, cls in registered.items()
               if cls.__module__.split(".")[0] in ("baselines", "rambench")}
    assert {"method etmc", "method md", "method raml", "adaptation tent",
            "adaptation read"} <= set(builtin)
    unpinned = sorted(f"{label} ({cls.Params.__name__})" for label, cls in builtin.items()
                      if cls.Params not in ALL_DEFAULTS)
    assert not unpinned, ("defaults not pinned in tests/test_method_guards.py: "
                          + ", ".join(unpinned))
