import math

import pytest
import torch
import torch.nn.functional as F

from baselines.late_fusion import LateFusion
from rambench.methods.raml import RAML, RAMLParams
from tests.helpers import identity_context, linear_context, make_batch

OFF = dict(unimodal_heads=False, norm="none", fusion="concat", token_corruption=0.0)


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


def test_token_corruption_touches_only_one_modality_per_sample():
    torch.manual_seed(0)
    raml = RAML(identity_context(dim=16), RAMLParams(num_tokens=8, token_corruption=1.0,
                                                     rho_min=0.25))
    tokens = torch.randn(64, 2, 8, 2)
    missing = torch.zeros(64, 2, 8, dtype=torch.bool)
    corrupted, missing_out = raml.corrupt_tokens(tokens, missing)
    changed = (corrupted != tokens).any(dim=-1)  # (B, M, K)
    per_modality = changed.any(dim=2)  # (B, M)
    assert torch.equal(per_modality.sum(dim=1), torch.ones(64, dtype=torch.long))
    fraction = changed.sum(dim=(1, 2)).float() / 8
    assert fraction.min() >= 0.25 and fraction.max() <= 1.0
    assert not missing_out.any()
    assert per_modality[:, 0].any() and per_modality[:, 1].any()  # both get picked sometimes


def test_token_corruption_probability_zero_changes_nothing_and_missing_fill_sets_mask():
    raml = RAML(identity_context(dim=16), RAMLParams(num_tokens=8, token_corruption=1.0,
                                                     token_fill="missing"))
    tokens = torch.randn(32, 2, 8, 2)
    missing = torch.zeros(32, 2, 8, dtype=torch.bool)
    same, mask = raml.corrupt_tokens(tokens, missing)
    assert torch.equal(same, tokens)
    assert torch.equal(mask.any(dim=2).sum(dim=1), torch.ones(32, dtype=torch.long))


def test_absent_modality_uses_missing_tokens_not_its_input():
    torch.manual_seed(0)
    raml = RAML(identity_context(dim=16), RAMLParams(num_tokens=4)).eval()
    visual = torch.randn(3, 16)
    present = {"audio": torch.tensor([True, False, True]), "visual": torch.ones(3, dtype=bool)}
    a = raml(make_batch({"audio": torch.randn(3, 16), "visual": visual}, [0, 1, 2], present))
    b = raml(make_batch({"audio": torch.randn(3, 16), "visual": visual}, [0, 1, 2], present))
    assert torch.allclose(a[1], b[1])  # the absent audio input is ignored ...
    assert not torch.allclose(a[0], b[0])  # ... and only where it is absent
    # and equals fusing with the learned missing tokens in place of the audio tokens
    tokens = raml.fusion.split({"audio": torch.zeros(3, 16), "visual": visual})
    expected, _ = raml.fusion.fuse(tokens, raml.fusion.absent_mask(present))
    assert torch.allclose(a[1], expected[1], atol=1e-6)


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


def test_invalid_switch_values_are_rejected():
    from rambench.errors import UsageError
    from rambench.params import apply_overrides

    for values, message in [({"norm": "l2"}, "raml.norm must be one of soft, hard, none"),
                            ({"num_tokens": "0"}, "raml.num_tokens must be >= 1; got 0"),
                            ({"token_corruption": "2"}, "raml.token_corruption must be >= 0 "
                                                        "and <= 1; got 2"),
                            ({"alpha": "nan"}, "raml.alpha must be a finite number")]:
        with pytest.raises(UsageError) as err:
            apply_overrides(RAMLParams, "raml", values)
        assert message in str(err.value)
    with pytest.raises(ValueError, match="needs raml.fusion=tokens"):
        RAMLParams(fusion="concat", token_corruption=0.5)
