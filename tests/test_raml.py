import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.late_fusion import LateFusion
from rambench.datasets.base import ModalitySpec
from rambench.methods import MethodContext
from rambench.methods.raml import FILLS, RAML, RAMLParams
from rambench.models import encoders
from tests.helpers import identity_context, linear_context, make_batch

OFF = dict(unimodal_heads=False, norm="none", fusion="concat", token_corruption=0.0,
           gate=False)

SPECS = {
    "image_cnn": ModalitySpec("visual", "image", (32, 32, 1), "image_cnn"),
    "audio_cnn": ModalitySpec("audio", "audio", (16000,), "audio_cnn", 16000),
    "resnet18_frames": ModalitySpec("visual", "image", (3, 32, 32, 3), "resnet18_frames"),
    "resnet18_audio": ModalitySpec("audio", "audio", (8000,), "resnet18_audio", 16000,
                                   (("hop", 160), ("n_fft", 512), ("n_mels", 128))),
}


def encoder_context(dim=32, num_classes=10) -> MethodContext:
    """avdigits' encoders: a 32x32 grey image (image_cnn) and 1 s of 16 kHz audio."""
    specs = {"visual": SPECS["image_cnn"], "audio": SPECS["audio_cnn"]}
    return MethodContext(("visual", "audio"), num_classes, dim,
                         lambda m: encoders.get(specs[m].encoder)(specs[m], dim))


def encoder_batch(n=4, seed=1, present=None):
    g = torch.Generator().manual_seed(seed)
    inputs = {"visual": torch.rand(n, 1, 32, 32, generator=g),
              "audio": torch.rand(n, 16000, generator=g) - 0.5}
    return make_batch(inputs, [i % 10 for i in range(n)], present)


class MeanTokens(nn.Module):
    """A test encoder: inputs are already tokens (B, N, d); forward pools them."""

    def forward(self, x):
        return x.mean(dim=1)

    def tokens(self, x):
        return x


def token_context(dim=4, num_classes=3):
    return MethodContext(("audio", "visual"), num_classes, dim, lambda m: MeanTokens())


# ----------------------------------------------------------------- encoders' token maps

# forward(x)[0, :4] of each encoder, torch.manual_seed(0) init, eval mode, dim 16, on
# torch.rand(shape, generator=manual_seed(1)): computed BEFORE `tokens` was added to the
# encoders, so a change of forward or of parameter creation order shows here.
FORWARD_BEFORE = {
    "image_cnn": ((2, 1, 32, 32), [0.05041, -0.19134, -0.01569, 0.16959]),
    "audio_cnn": ((2, 4000), [0.00969, 0.15917, -0.06691, -0.05653]),
    "resnet18_frames": ((2, 3, 3, 32, 32), [-0.04713, 0.24448, 1.07054, 0.1024]),
    "resnet18_audio": ((2, 8000), [-0.26111, 0.07649, -0.71266, -1.87823]),
}
AUDIO_CNN_8K = ModalitySpec("audio", "audio", (4000,), "audio_cnn", 8000)
# (input shape, tokens N): 32x32 image -> 8x8 cells; 1 s at 16 kHz, 40 mels, hop 160 ->
# 101 frames -> 5 x 12 cells; a 3-frame clip -> 3 frames; 0.5 s, 128 mels -> 4 x 2 cells
TOKEN_COUNTS = {
    "image_cnn": ((2, 1, 32, 32), 64),
    "audio_cnn": ((2, 16000), 60),
    "resnet18_frames": ((2, 3, 3, 32, 32), 3),
    "resnet18_audio": ((2, 8000), 8),
}


@pytest.mark.parametrize("name", list(FORWARD_BEFORE))
def test_encoder_forward_is_unchanged_by_the_token_method(name):
    shape, before = FORWARD_BEFORE[name]
    spec = AUDIO_CNN_8K if name == "audio_cnn" else SPECS[name]
    torch.manual_seed(0)
    enc = encoders.get(name)(spec, 16).eval()
    with torch.no_grad():
        out = enc(torch.rand(shape, generator=torch.Generator().manual_seed(1)))
    assert out[0, :4].tolist() == pytest.approx(before, abs=2e-4)


@pytest.mark.parametrize("name", list(TOKEN_COUNTS))
def test_encoder_tokens_are_the_pre_pool_map_and_average_to_forward(name):
    shape, count = TOKEN_COUNTS[name]
    torch.manual_seed(0)
    enc = encoders.get(name)(SPECS[name], 16).eval()
    n_params = sum(p.numel() for p in enc.parameters())
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        tokens, pooled = enc.tokens(x), enc(x)
    assert tokens.shape == (2, count, 16)
    assert torch.allclose(tokens.mean(dim=1), pooled, atol=1e-5)
    assert not torch.allclose(tokens[:, 0], tokens[:, -1])  # distinct cells / frames
    assert sum(p.numel() for p in enc.parameters()) == n_params


def test_clip_tokens_are_frames_and_still_frames_give_cells():
    torch.manual_seed(0)
    enc = encoders.get("resnet18_frames")(SPECS["resnet18_frames"], 16).eval()
    clip = torch.rand(2, 5, 3, 64, 64)
    with torch.no_grad():
        assert enc.tokens(clip).shape == (2, 5, 16)  # T = 5 frames
        # frame t's token is that frame alone, pooled
        assert torch.allclose(enc.tokens(clip)[:, 3], enc(clip[:, 3]), atol=1e-5)
        assert enc.tokens(clip[:, 0]).shape == (2, 4, 16)  # 64x64 still: 2x2 cells


def test_raml_reads_map_tokens_pools_long_maps_and_keeps_slices_as_an_option():
    torch.manual_seed(0)
    raml = RAML(encoder_context(), RAMLParams(max_tokens=64)).eval()
    batch = encoder_batch()
    with torch.no_grad():
        tokens = raml.encode_tokens(batch)
        assert tokens["visual"].shape == (4, 64, 32) and tokens["audio"].shape == (4, 60, 32)
        torch.manual_seed(0)
        short = RAML(encoder_context(), RAMLParams(max_tokens=16)).eval()
        pooled = short.encode_tokens(batch)
        assert {t.shape for t in pooled.values()} == {(4, 16, 32)}
        # 1-D average pooling: the map's mean, and so z_m, is kept
        assert torch.allclose(pooled["visual"].mean(1), tokens["visual"].mean(1), atol=1e-5)
        sliced = RAML(encoder_context(), RAMLParams(tokens="slices", num_tokens=8)).eval()
        pieces = sliced.encode_tokens(batch)
        assert pieces["visual"].shape == (4, 8, 4)
        assert torch.equal(pieces["visual"].flatten(1), sliced.encode(batch)["visual"])
    # an encoder without `tokens` contributes one token, its pooled feature
    plain = RAML(identity_context(dim=8), RAMLParams())
    z = torch.randn(3, 8)
    assert torch.equal(plain.encode_tokens(make_batch({"audio": z, "visual": z}, [0, 1, 2]))[
        "audio"], z.unsqueeze(1))


# ----------------------------------------------------------------- norm constraint


def test_norm_penalty_matches_hand_computation():
    ctx = identity_context(dim=2)
    raml = RAML(ctx, RAMLParams(radius=2.0, token_corruption=0.0, num_tokens=2))
    z = {"audio": torch.tensor([[3.0, 4.0], [0.0, 1.0]]),  # norms 5 and 1
         "visual": torch.tensor([[0.0, 2.0], [6.0, 8.0]])}  # norms 2 and 10
    present = {"audio": torch.tensor([True, True]), "visual": torch.tensor([True, False])}
    # audio: ((5/2-1)^2 + (1/2-1)^2) / 2 = (2.25 + 0.25) / 2 = 1.25
    # visual, only the present sample: (2/2-1)^2 = 0;  mean over modalities: 0.625
    assert raml.norm_penalty(z, present).item() == pytest.approx(0.625)


def test_default_radius_is_sqrt_dim():
    assert RAML(identity_context(dim=16), RAMLParams(num_tokens=4)).radius == math.sqrt(16)


def test_hard_norm_projects_features_to_radius():
    raml = RAML(identity_context(dim=8), RAMLParams(norm="hard", radius=3.0, num_tokens=2))
    batch = make_batch({"audio": torch.randn(4, 8) * 10, "visual": torch.randn(4, 8)}, [0, 1, 2, 0])
    for f in raml.features(batch).values():
        assert torch.allclose(f.norm(dim=1), torch.full((4,), 3.0))


@pytest.mark.parametrize("tokens", ["map", "slices"])
@pytest.mark.parametrize("norm", ["hard", "clamp", "soft"])
def test_norm_constraint_acts_at_test_time_on_inputs_scaled_by_100(norm, tokens):
    torch.manual_seed(0)
    raml = RAML(encoder_context(), RAMLParams(norm=norm, tokens=tokens, radius=0.5)).eval()
    batch = encoder_batch(n=6)
    batch.inputs["visual"] = batch.inputs["visual"] * 100
    batch.inputs["audio"] = batch.inputs["audio"] * 100
    seen = {}
    fuse = raml.fusion.fuse

    def spy(tokens, missing, gate=None):  # what the fusion gets in forward
        seen.update({m: raml.pooled(t).norm(dim=1) for m, t in tokens.items()})
        return fuse(tokens, missing, gate)

    raml.fusion.fuse = spy
    with torch.no_grad():
        raml(batch)
        features = raml.features(batch)
        raw = {m: raml.pooled(t).norm(dim=1) for m, t in raml.encode_tokens(batch).items()}
    for m in ("visual", "audio"):
        assert raw[m].min() > 1.0  # the scaled input inflates the unconstrained feature
        norms = {"forward": seen[m], "features": features[m].norm(dim=1)}
        for where, n in norms.items():
            if norm == "hard":
                assert torch.allclose(n, torch.full_like(n, 0.5), atol=1e-5), where
            elif norm == "clamp":
                assert n.max() <= 0.5 + 1e-5, where
            else:  # the soft penalty does nothing at test time
                assert torch.allclose(n, raw[m], rtol=1e-5), where


def test_clamp_leaves_features_inside_the_ball_unchanged():
    raml = RAML(identity_context(dim=4), RAMLParams(norm="clamp", radius=2.0)).eval()
    z = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 3.0, 4.0, 0.0]])  # norms 1 and 5
    f = raml.features(make_batch({"audio": z, "visual": z}, [0, 1]))["audio"]
    assert torch.equal(f[0], z[0])
    assert torch.allclose(f[1], z[1] * 2.0 / 5.0)


def test_clamp_trains_with_the_soft_penalty_unless_beta_is_0():
    batch = make_batch({"audio": torch.randn(4, 8), "visual": torch.randn(4, 8)}, [0, 1, 2, 0])
    # the default (chosen by the validation ablation): the clamp plus the penalty, beta = 0.1
    assert RAMLParams().beta == 0.1
    assert "norm" in RAML(identity_context(), RAMLParams(norm="clamp")).training_loss(batch)
    for params in (RAMLParams(norm="clamp", beta=0), RAMLParams(norm="hard")):
        assert "norm" not in RAML(identity_context(), params).training_loss(batch)


# ----------------------------------------------------------------- corrupted view


def view_inputs(b=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = {"audio": torch.randn(b, 5, 3, generator=g), "visual": torch.randn(b, 7, 3,
                                                                              generator=g)}
    missing = {m: torch.zeros(b, t.shape[1], dtype=torch.bool) for m, t in tokens.items()}
    return tokens, missing


def changed_tokens(tokens, missing, out, out_missing):
    return {m: (out[m] != tokens[m]).any(dim=-1) | (out_missing[m] != missing[m])
            for m in tokens}


def test_token_scope_corrupts_a_fraction_of_one_modality_per_sample():
    torch.manual_seed(0)
    raml = RAML(identity_context(dim=16), RAMLParams(token_corruption=1.0, rho_min=0.25,
                                                     view_scope="tokens", token_fill="noise"))
    tokens, missing = view_inputs()
    out, out_missing = raml.corrupt_tokens(tokens, missing)
    changed = changed_tokens(tokens, missing, out, out_missing)
    per_modality = torch.stack([changed[m].any(dim=1) for m in tokens], 1)  # (B, M)
    assert torch.equal(per_modality.sum(dim=1), torch.ones(64, dtype=torch.long))
    fraction = torch.stack([changed[m].float().mean(dim=1) for m in tokens], 1).amax(dim=1)
    assert fraction.min() >= 0.25 and fraction.max() <= 1.0
    assert (fraction < 1).any()  # some samples only partly
    assert not any(m.any() for m in out_missing.values())
    assert per_modality[:, 0].any() and per_modality[:, 1].any()  # both get picked sometimes


@pytest.mark.parametrize("fill", [*FILLS, "mix"])
def test_modality_scope_corrupts_all_tokens_of_one_modality_and_none_of_the_other(fill):
    torch.manual_seed(0)
    raml = RAML(identity_context(dim=16), RAMLParams(token_corruption=1.0, token_fill=fill,
                                                     view_scope="modality"))
    tokens, missing = view_inputs()
    out, out_missing = raml.corrupt_tokens(tokens, missing)
    changed = changed_tokens(tokens, missing, out, out_missing)
    whole = torch.stack([changed[m].all(dim=1) for m in tokens], 1)  # (B, M)
    untouched = torch.stack([~changed[m].any(dim=1) for m in tokens], 1)
    assert torch.equal(whole.sum(dim=1), torch.ones(64, dtype=torch.long))
    assert torch.equal(untouched, ~whole)  # the other modality keeps every token
    assert whole[:, 0].any() and whole[:, 1].any()
    for m in tokens:
        hit = whole[:, list(tokens).index(m)]
        if fill == "missing":
            assert torch.equal(out[m], tokens[m]) and out_missing[m][hit].all()
        elif fill == "swap":  # the previous sample's tokens
            assert torch.equal(out[m][hit], tokens[m].roll(1, dims=0)[hit])
        elif fill == "zeros":
            assert not out[m][hit].any()
        elif fill == "inflate":
            ratio = out[m][hit].norm(dim=-1) / tokens[m][hit].norm(dim=-1)
            assert ratio.min() >= 2.0 - 1e-5 and ratio.max() <= 10.0 + 1e-5
            assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio))  # one factor


def test_both_scope_mixes_whole_and_partial_corruption_and_p_zero_changes_nothing():
    torch.manual_seed(0)
    raml = RAML(identity_context(dim=16), RAMLParams(token_corruption=1.0, rho_min=0.0,
                                                     view_scope="both", token_fill="zeros"))
    tokens, missing = view_inputs(b=256)
    out, out_missing = raml.corrupt_tokens(tokens, missing)
    fraction = torch.stack([(out[m] != tokens[m]).any(-1).float().mean(1) for m in tokens],
                           1).amax(dim=1)
    assert (fraction == 1).float().mean() > 0.5  # half whole, plus partial draws of rho ~ 1
    assert (fraction < 1).any()
    raml.params.token_corruption = 0.0
    same, same_missing = raml.corrupt_tokens(tokens, missing)
    assert all(torch.equal(same[m], tokens[m]) for m in tokens)
    assert not any(m.any() for m in same_missing.values())


def test_swap_never_brings_in_an_absent_samples_input():
    torch.manual_seed(0)
    raml = RAML(identity_context(dim=16), RAMLParams(token_corruption=1.0, token_fill="swap",
                                                     view_scope="modality"))
    tokens, missing = view_inputs(b=32)
    missing["audio"][::2] = True  # every other sample has no audio
    out, out_missing = raml.corrupt_tokens(tokens, missing)
    took = (out["audio"] != tokens["audio"]).any(-1).all(1)
    assert took[1::2].any()  # present samples that took an absent sample's audio ...
    assert out_missing["audio"][1::2][took[1::2]].all()  # ... see it as missing


# ----------------------------------------------------------------- reliability gate


def gate_model(num_classes=3):
    raml = RAML(identity_context(dim=4, num_classes=num_classes),
                RAMLParams(gate=True, fusion="concat", token_corruption=0.0, norm="none"))
    with torch.no_grad():
        for head in raml.heads.values():
            head.weight.copy_(torch.eye(num_classes, 4) * 5.0)
            head.bias.zero_()
    return raml


def test_gate_weights_follow_the_unimodal_confidence():
    raml = gate_model()
    sure = torch.tensor([[2.0, 0.0, 0.0, 0.0]])  # head logits (10, 0, 0): confident
    unsure = torch.tensor([[0.1, 0.0, 0.1, 0.0]])  # (0.5, 0, 0.5): close to uniform
    present = {"audio": torch.tensor([True]), "visual": torch.tensor([True])}
    w = raml.gate_weights({"audio": sure, "visual": unsure}, present)
    # confidences ~1 and e^0.5 / (2 e^0.5 + 1) = 0.384: w = 2 c / (c_a + c_v) = 1.445, 0.555
    assert w[0].tolist() == pytest.approx([1.445, 0.555], abs=1e-3)
    flipped = raml.gate_weights({"audio": unsure, "visual": sure}, present)
    assert torch.allclose(flipped, w.flip(1))
    # an absent modality counts as chance (1/3), whatever its features say
    absent = {"audio": torch.tensor([True]), "visual": torch.tensor([False])}
    w_absent = raml.gate_weights({"audio": unsure, "visual": sure}, absent)
    conf_unsure = F.softmax(raml.heads["audio"](unsure), 1).max().item()
    assert w_absent[0, 1].item() == pytest.approx(2 * (1 / 3) / (conf_unsure + 1 / 3))
    raml.params.gate = False
    assert raml.gate_weights({"audio": sure, "visual": unsure}, present) is None


def test_gate_scales_each_modality_in_concat_fusion():
    raml = gate_model().eval()
    a, v = torch.tensor([[2.0, 0.0, 0.0, 0.0]]), torch.tensor([[0.1, 0.0, 0.1, 0.0]])
    batch = make_batch({"audio": a, "visual": v}, [0])
    w = raml.gate_weights({"audio": a, "visual": v}, batch.present)
    expected = raml.fusion.classifier(torch.cat([w[0, 0] * a, w[0, 1] * v], dim=1))
    assert torch.allclose(raml(batch), expected)


def test_gate_in_token_fusion_weights_the_confident_modality():
    """Equal gate weights give exactly the ungated model, and opposite unequal weights give
    different h. (The direction, toward the confident modality, is checked in
    tests/test_method_guards.py.)"""
    torch.manual_seed(0)
    raml = RAML(token_context(), RAMLParams(gate=True, norm="none", token_corruption=0.0,
                                            layers=1)).eval()
    g = torch.Generator().manual_seed(0)
    tokens = {"audio": torch.randn(8, 3, 4, generator=g), "visual": torch.randn(8, 5, 4,
                                                                             generator=g)}
    missing = raml.fusion.absent_mask(tokens, {m: torch.ones(8, dtype=torch.bool)
                                               for m in tokens})
    with torch.no_grad():
        _, h_equal = raml.fusion.fuse(tokens, missing, torch.ones(8, 2))
        _, h_none = raml.fusion.fuse(tokens, missing, None)
        assert torch.allclose(h_equal, h_none, atol=1e-5)  # equal weights: the ungated model
        _, h_audio = raml.fusion.fuse(tokens, missing, torch.tensor([[1.98, 0.02]]).repeat(8, 1))
        _, h_visual = raml.fusion.fuse(tokens, missing, torch.tensor([[0.02, 1.98]]).repeat(8, 1))
    assert not torch.allclose(h_audio, h_visual, atol=1e-3)


def test_gate_needs_unimodal_heads():
    with pytest.raises(ValueError, match="needs raml.unimodal_heads=true"):
        RAMLParams(gate=True, unimodal_heads=False)


# ----------------------------------------------------------------- absent modalities


@pytest.mark.parametrize("params", [
    dict(),  # the defaults: map tokens, clamp, gate
    dict(tokens="slices", norm="hard"),
    dict(fusion="concat", token_corruption=0.0, norm="clamp", gate=True),
    dict(gate=False, norm="soft", view_scope="modality"),
])
def test_absent_modality_does_not_affect_the_output(params):
    torch.manual_seed(0)
    raml = RAML(encoder_context(), RAMLParams(**params)).eval()
    present = {"visual": torch.tensor([True, True, True, True]),
               "audio": torch.tensor([True, False, True, False])}
    a, b = encoder_batch(present=present), encoder_batch(present=present)
    b.inputs["audio"] = b.inputs["audio"] * 50 + torch.randn_like(b.inputs["audio"])
    with torch.no_grad():
        la, lb = raml(a), raml(b)
    assert torch.allclose(la[1::2], lb[1::2], atol=1e-5)  # absent audio is ignored ...
    assert not torch.allclose(la[0::2], lb[0::2], atol=1e-3)  # ... present audio is not


def test_absent_modality_uses_missing_tokens_not_its_input():
    torch.manual_seed(0)
    raml = RAML(identity_context(dim=16), RAMLParams(tokens="slices", num_tokens=4)).eval()
    visual = torch.randn(3, 16)
    present = {"audio": torch.tensor([True, False, True]), "visual": torch.ones(3, dtype=bool)}
    a = raml(make_batch({"audio": torch.randn(3, 16), "visual": visual}, [0, 1, 2], present))
    b = raml(make_batch({"audio": torch.randn(3, 16), "visual": visual}, [0, 1, 2], present))
    assert torch.allclose(a[1], b[1])  # the absent audio input is ignored ...
    assert not torch.allclose(a[0], b[0])  # ... and only where it is absent
    # and equals fusing with the learned missing tokens in place of the audio tokens
    tokens = raml.encode_tokens(make_batch({"audio": torch.zeros(3, 16), "visual": visual},
                                           [0, 1, 2], present))
    _, scaled, z = raml.constrain_tokens(tokens)
    expected, _ = raml.fusion.fuse(scaled, raml.fusion.absent_mask(tokens, present),
                                   raml.gate_weights(z, present))
    assert torch.allclose(a[1], expected[1], atol=1e-6)


# ----------------------------------------------------------------- all switches


def test_every_switch_off_equals_concat_late_fusion():
    ctx = linear_context()
    torch.manual_seed(3)
    late = LateFusion(ctx)
    torch.manual_seed(3)
    raml = RAML(ctx, RAMLParams(**OFF))
    batch = make_batch({"audio": torch.randn(6, 5), "visual": torch.randn(6, 5)},
                       [0, 1, 2, 0, 1, 2],
                       {"audio": torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool),
                        "visual": torch.ones(6, dtype=torch.bool)})
    assert torch.equal(raml(batch), late(batch))
    raml_losses = raml.training_loss(batch)
    assert set(raml_losses) == {"ce", "loss"}
    assert torch.equal(raml_losses["loss"], late.training_loss(batch)["loss"])


def test_total_loss_is_the_weighted_sum():
    torch.manual_seed(0)
    raml = RAML(identity_context(dim=16), RAMLParams(num_tokens=4, alpha=0.5, beta=0.2,
                                                     gamma=3.0))
    batch = make_batch({"audio": torch.randn(8, 16), "visual": torch.randn(8, 16)},
                       [0, 1, 2, 0, 1, 2, 0, 1])
    out = raml.training_loss(batch)
    expected = (out["ce"] + out["ce_corrupted"] + 0.5 * out["unimodal"] + 0.2 * out["norm"]
                + 3.0 * out["consistency"])
    assert torch.allclose(out["loss"], expected)
    # the unimodal term is the sum of the two heads' cross-entropies
    z = raml.features(batch)
    uni = sum(F.cross_entropy(raml.heads[m](z[m]), batch.y) for m in ("audio", "visual"))
    assert torch.allclose(out["unimodal"], uni)


def test_default_model_trains_on_real_encoders():
    torch.manual_seed(0)
    raml = RAML(encoder_context(dim=16), RAMLParams())
    out = raml.training_loss(encoder_batch(n=6))
    # the default clamp trains with its penalty (beta = 0.1)
    assert set(out) == {"ce", "ce_corrupted", "consistency", "norm", "unimodal", "loss"}
    out["loss"].backward()
    assert raml.fusion.position_embedding.grad is not None
    assert all(p.grad is not None for p in raml.encoders.parameters() if p.requires_grad)


def test_switches_are_set_from_strings_and_invalid_values_are_rejected():
    from rambench.errors import UsageError
    from rambench.params import apply_overrides

    p = apply_overrides(RAMLParams, "raml", {"tokens": "slices", "norm": "clamp",
                                             "view_scope": "modality", "token_fill": "inflate",
                                             "gate": "false", "inflate_max": "4"})
    assert (p.tokens, p.norm, p.view_scope, p.token_fill, p.gate, p.inflate_max) == (
        "slices", "clamp", "modality", "inflate", False, 4.0)
    for values, message in [({"norm": "l2"}, "raml.norm must be one of soft, hard, clamp, none"),
                            ({"tokens": "cells"}, "raml.tokens must be one of map, slices"),
                            ({"view_scope": "all"}, "raml.view_scope must be one of tokens, "
                                                    "modality, both"),
                            ({"num_tokens": "0"}, "raml.num_tokens must be >= 1; got 0"),
                            ({"token_corruption": "2"}, "raml.token_corruption must be >= 0 "
                                                        "and <= 1; got 2"),
                            ({"alpha": "nan"}, "raml.alpha must be a finite number"),
                            ({"gate": "maybe"}, "raml.gate expects a bool")]:
        with pytest.raises(UsageError) as err:
            apply_overrides(RAMLParams, "raml", values)
        assert message in str(err.value)
    with pytest.raises(ValueError, match="needs raml.fusion=tokens"):
        RAMLParams(fusion="concat", token_corruption=0.5)
