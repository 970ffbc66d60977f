"""Augmentation and consistency baselines: moddrop, corrupt_aug, augmix, consistency,
reconstruct (and their shared image operations, on still images and on clips)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from baselines import _image_ops as ops
from baselines.augmix import (
    AugMix,
    AugMixParams,
    augmix_view,
    js_divergence,
    mix,
    mixing_weights,
)
from baselines.consistency import (
    Consistency,
    ConsistencyParams,
    perturbation_masks,
    symmetric_kl,
)
from baselines.corrupt_aug import (
    CorruptAug,
    CorruptAugParams,
    circular_shift,
    corrupt,
    corrupt_inputs,
    gain,
    spectral_tilt,
    tilt_gains_db,
)
from baselines.moddrop import ModDrop, drop_mask
from baselines.reconstruct import Reconstruct, ReconstructParams
from corruptions.missing import expected_missing_fraction
from rambench.datasets import Dataset, ModalitySpec, Split
from rambench.methods import InputSpec, MethodContext
from rambench.train import TrainConfig, build_method, train
from tests.helpers import identity_context, linear_context, make_batch

METHODS = (ModDrop, CorruptAug, AugMix, Consistency, Reconstruct)


def bools(*values):
    return torch.tensor(values, dtype=torch.bool)


# --- shared image operations ------------------------------------------------------------

def test_image_ops_on_hand_computed_values():
    x = torch.tensor([10.0, 10.0, 20.0, 30.0]).view(1, 1, 2, 2) / 255
    # histogram 10:2, 20:1, 30:1 -> cdf 2, 3, 4; (cdf - 2) / (4 - 2) = 0, 0.5, 1
    assert torch.allclose(ops.equalize(x).flatten(), torch.tensor([0.0, 0.0, 0.5, 1.0]))
    assert torch.equal(ops.equalize(torch.full((1, 1, 2, 2), 0.3)), torch.full((1, 1, 2, 2), 0.3))
    y = torch.tensor([0.2, 0.4, 0.6, 0.6]).view(1, 1, 2, 2)
    assert torch.allclose(ops.autocontrast(y).flatten(), torch.tensor([0.0, 0.5, 1.0, 1.0]))
    v = torch.tensor([153.0, 100.0, 255.0, 0.0]).view(1, 1, 2, 2) / 255
    assert torch.allclose(ops.posterize(v, torch.tensor([1])).flatten() * 255,
                          torch.tensor([128.0, 0.0, 128.0, 0.0]))
    assert torch.allclose(ops.solarize(v, torch.tensor([0.5])).flatten() * 255,
                          torch.tensor([102.0, 100.0, 0.0, 0.0]))


def test_apply_ops_identity_range_and_every_op_changes_an_image():
    torch.manual_seed(0)
    x = torch.rand(len(ops.OPS), 1, 16, 16)
    assert torch.equal(ops.apply_ops(x, torch.full((len(x),), ops.IDENTITY)), x)
    out = ops.apply_ops(x, torch.arange(len(ops.OPS)), severity=10.0)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert ((out - x).abs().flatten(1).amax(1) > 1e-3).all()
    chained = ops.random_chain(x, 3, 3.0)
    assert chained.shape == x.shape and chained.min() >= 0 and chained.max() <= 1


# --- moddrop ------------------------------------------------------------------------------

@pytest.mark.parametrize("num_modalities", [2, 3])
def test_drop_mask_never_drops_all_and_has_the_conditional_rate(num_modalities):
    torch.manual_seed(0)
    n, p = 40_000, 0.3
    present = {f"m{i}": torch.ones(n, dtype=torch.bool) for i in range(num_modalities)}
    drop = torch.stack(list(drop_mask(present, p).values()), 1)
    assert not drop.all(dim=1).any()
    expected = expected_missing_fraction(num_modalities, p)  # p (1 - p^(M-1)) / (1 - p^M)
    assert drop.float().mean(0) == pytest.approx(torch.full((num_modalities,), expected),
                                                 abs=0.01)


def test_drop_mask_respects_already_absent_modalities():
    torch.manual_seed(0)
    n = 1000
    present = {"a": torch.arange(n) % 2 == 0, "b": torch.ones(n, dtype=torch.bool)}
    drop = drop_mask(present, 0.9)
    assert not (drop["a"] & ~present["a"]).any()  # absent ones are never "dropped"
    assert not drop["b"][~present["a"]].any()  # the only present modality is always kept
    assert drop["b"][present["a"]].any()
    assert ((present["a"] & ~drop["a"]) | ~drop["b"]).all()


def test_moddrop_zero_fills_and_clears_presence_during_training():
    torch.manual_seed(0)
    method = ModDrop(identity_context(dim=4))
    seen = {}

    def spy(b):
        seen["b"] = b
        return method.fusion(method.encode(b), b.present)

    method.forward = spy
    batch = make_batch({"audio": torch.rand(256, 4) + 1, "visual": torch.rand(256, 4) + 1},
                       [0] * 256)
    method.training_loss(batch)
    b = seen["b"]
    for m in ("audio", "visual"):
        assert torch.equal(b.inputs[m].abs().sum(1) == 0, ~b.present[m])
    assert 0.15 < (~b.present["audio"]).float().mean() < 0.32


# --- corrupt_aug --------------------------------------------------------------------------

def test_audio_ops_on_hand_computed_values():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    assert torch.equal(circular_shift(x, torch.tensor([1, -1])),
                       torch.tensor([[4.0, 1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 1.0]]))
    assert torch.allclose(gain(x, torch.tensor([20.0, -6.0])),
                          torch.stack([10 * x[0], x[1] * 10 ** (-6 / 20)]))
    g = tilt_gains_db(81, torch.tensor([3.0, -2.0]))  # k0 = 10
    assert g[:, 10].abs().max() < 1e-6
    assert torch.allclose(g[:, 20], torch.tensor([3.0, -2.0]))  # one octave up
    assert torch.allclose(g[:, 40], torch.tensor([6.0, -4.0]))
    assert torch.allclose(g[:, 0], torch.tensor([-12.0, 8.6438562]))  # 50x below k0, limited
    wave = torch.randn(3, 160)
    assert torch.allclose(spectral_tilt(wave, torch.zeros(3)), wave, atol=1e-5)


@pytest.mark.parametrize("seen", [False, True])
def test_corruption_touches_only_chosen_present_rows(seen):
    torch.manual_seed(0)
    x = {"visual": torch.rand(6, 1, 16, 16), "audio": torch.randn(6, 400)}
    present = {"visual": bools(1, 1, 1, 0, 0, 1), "audio": bools(1, 0, 1, 1, 1, 1)}
    batch = make_batch(x, [0] * 6, present)
    where = {"visual": bools(1, 1, 0, 1, 0, 1), "audio": bools(1, 1, 0, 1, 1, 0)}
    out = corrupt_inputs(batch, where, seen=seen, severity=10.0)
    for m in x:
        changed = (out.inputs[m] != x[m]).flatten(1).any(1)
        assert torch.equal(changed & ~(where[m] & present[m]), torch.zeros(6, dtype=torch.bool))
        assert changed[where[m] & present[m]].float().mean() >= 0.5
        assert torch.equal(out.present[m], present[m])
    if seen:
        assert out.inputs["visual"].min() >= 0 and out.inputs["visual"].max() <= 1


# --- augmix -------------------------------------------------------------------------------

def test_js_divergence_matches_hand_computation():
    p = [torch.tensor([[0.5, 0.5]]), torch.tensor([[0.9, 0.1]]), torch.tensor([[0.1, 0.9]])]
    # M = (0.5, 0.5); KL(p1||M) = 0; KL(p2||M) = KL(p3||M) = 0.9 ln 1.8 + 0.1 ln 0.2
    kl = 0.9 * math.log(1.8) + 0.1 * math.log(0.2)
    assert js_divergence([q.log() for q in p]).item() == pytest.approx(2 * kl / 3, rel=1e-5)
    same = torch.randn(4, 3)
    assert js_divergence([same, same, same]).item() == pytest.approx(0.0, abs=1e-6)


def test_mixing_weights_sum_to_one_and_mixing_identical_views_is_the_image():
    torch.manual_seed(0)
    w, b = mixing_weights(500, 3, 1.0, "cpu")
    assert torch.allclose(w.sum(1), torch.ones(500)) and (w >= 0).all()
    assert (b >= 0).all() and (b <= 1).all() and 0.4 < b.mean() < 0.6  # Beta(1, 1) = U(0, 1)
    x = torch.rand(500, 1, 4, 4)
    assert torch.allclose(mix(x, [x, x, x], w, b), x, atol=1e-6)
    # by hand: (1 - b) x + b (w1 c1 + w2 c2)
    x1, c1, c2 = torch.full((1, 1, 1, 1), 0.2), torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
    out = mix(x1, [c1, c2], torch.tensor([[0.25, 0.75]]), torch.tensor([0.5]))
    assert out.item() == pytest.approx(0.5 * 0.2 + 0.5 * 0.25)


def image_context(num_classes=3, dim=8):
    """visual: (B, 1, 8, 8) images through flatten + linear; audio: (B, 5) through linear."""
    def make(m):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, dim)) if m == "visual" else \
            nn.Linear(5, dim)
    return MethodContext(("audio", "visual"), num_classes, dim, make)


def test_augmix_loss_is_ce_plus_lambda_js():
    torch.manual_seed(0)
    method = AugMix(image_context(), AugMixParams(lam=12.0))
    batch = make_batch({"audio": torch.randn(8, 5), "visual": torch.rand(8, 1, 8, 8)},
                       [0, 1, 2, 0, 1, 2, 0, 1])
    out = method.training_loss(batch)
    assert torch.allclose(out["loss"], out["ce"] + 12.0 * out["js"])
    assert out["js"] > 0
    assert torch.allclose(out["ce"], nn.functional.cross_entropy(method(batch), batch.y))


# --- consistency --------------------------------------------------------------------------

def test_symmetric_kl_matches_hand_computation():
    p, q = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.9, 0.1]])
    kl_pq = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    kl_qp = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert symmetric_kl(p.log(), q.log()).item() == pytest.approx(0.5 * (kl_pq + kl_qp),
                                                                  rel=1e-5)
    assert symmetric_kl(q.log(), p.log()).item() == pytest.approx(0.5 * (kl_pq + kl_qp),
                                                                  rel=1e-5)


def test_perturbation_hits_one_present_modality_and_never_removes_the_last():
    torch.manual_seed(0)
    n = 20_000
    present = {"a": torch.arange(n) % 4 != 0, "b": torch.ones(n, dtype=torch.bool)}
    drop, corrupt = perturbation_masks(present, 0.5)
    hit = torch.stack([drop["a"] | corrupt["a"], drop["b"] | corrupt["b"]], 1)
    assert torch.equal(hit.sum(1), torch.ones(n, dtype=torch.long))
    assert not (drop["a"] & corrupt["a"]).any()
    assert not (hit[:, 0] & ~present["a"]).any()
    single = ~present["a"]
    assert not drop["b"][single].any() and corrupt["b"][single].all()
    both = present["a"]
    assert (drop["a"] | drop["b"])[both].float().mean() == pytest.approx(0.5, abs=0.02)
    assert hit[both, 0].float().mean() == pytest.approx(0.5, abs=0.02)


def test_consistency_loss_is_both_ces_plus_lambda_kl():
    torch.manual_seed(0)
    method = Consistency(image_context())
    method.params.lam = 2.0
    batch = make_batch({"audio": torch.randn(8, 5), "visual": torch.rand(8, 1, 8, 8)},
                       [0, 1, 2, 0, 1, 2, 0, 1])
    out = method.training_loss(batch)
    assert torch.allclose(out["loss"], out["ce"] + out["ce_perturbed"] + 2.0 * out["kl"])
    assert out["kl"] > 0


# --- reconstruct --------------------------------------------------------------------------

def test_reconstruct_fills_exactly_the_absent_features():
    torch.manual_seed(0)
    method = Reconstruct(identity_context(dim=4), ReconstructParams(hidden=8)).eval()
    z = {"audio": torch.randn(4, 4), "visual": torch.randn(4, 4)}
    present = {"audio": bools(1, 0, 1, 1), "visual": bools(1, 1, 0, 1)}
    rec = method.reconstruct(z, present)
    filled = method.fill(z, rec, present)
    for m in z:
        assert torch.equal(filled[m][present[m]], z[m][present[m]])
        assert torch.equal(filled[m][~present[m]], rec[m][~present[m]])
    # the reconstruction of audio in sample 1 is g_audio([z_visual; 1])
    expected = method.imagine["audio"](torch.cat([z["visual"][1], torch.ones(1)]))
    assert torch.allclose(rec["audio"][1], expected)
    # and the logits are the classifier on the filled features
    batch = make_batch(z, [0, 1, 2, 0], present)
    logits = method.fusion.classifier(torch.cat([filled["audio"], filled["visual"]], 1))
    assert torch.allclose(method(batch), logits)


@pytest.mark.parametrize("stopgrad", [True, False])
def test_reconstruct_stopgrad_keeps_the_mse_out_of_the_target_encoder(stopgrad):
    torch.manual_seed(0)
    params = ReconstructParams(hidden=8, p=0.0, stopgrad=stopgrad)
    method = Reconstruct(linear_context(dim=4), params)
    with torch.no_grad():  # cut audio -> visual, so audio reaches the MSE only as a target
        method.imagine["visual"][0].weight.zero_()
    batch = make_batch({"audio": torch.randn(6, 5), "visual": torch.randn(6, 5)},
                       [0, 1, 2, 0, 1, 2])
    method.training_loss(batch)["mse"].backward()
    audio_grad = method.encoders["audio"].weight.grad.abs().sum()
    assert (audio_grad == 0) == stopgrad
    assert method.imagine["audio"][0].weight.grad.abs().sum() > 0
    assert method.encoders["visual"].weight.grad.abs().sum() > 0  # the source encoder


# --- all methods: presence mask, smoke training -------------------------------------------

@pytest.mark.parametrize("cls", METHODS)
def test_forward_ignores_absent_inputs(cls):
    torch.manual_seed(0)
    method = cls(linear_context()).eval()
    visual = torch.randn(4, 5)
    present = {"audio": bools(1, 0, 1, 0), "visual": bools(1, 1, 1, 1)}
    a = method(make_batch({"audio": torch.randn(4, 5), "visual": visual}, [0] * 4, present))
    b = method(make_batch({"audio": torch.randn(4, 5), "visual": visual}, [0] * 4, present))
    assert torch.allclose(a[~present["audio"]], b[~present["audio"]])
    assert not torch.allclose(a[present["audio"]], b[present["audio"]])


class TinyAV(Dataset):
    """4 classes: a bright square in one image quadrant, a tone at one of four pitches."""

    name, version, description = "tinyav", "1", "synthetic test data"
    class_names = ("a", "b", "c", "d")
    modalities = {
        "visual": ModalitySpec("visual", "image", (16, 16, 1), "image_cnn"),
        "audio": ModalitySpec("audio", "audio", (1600,), "audio_cnn", sample_rate=16_000),
    }

    def __init__(self):
        rng = np.random.default_rng(0)
        self.splits = {s: self.make(n, rng) for s, n in (("train", 128), ("val", 64),
                                                         ("test", 64))}

    @staticmethod
    def make(n, rng):
        y = rng.integers(0, 4, n)
        img = rng.normal(40, 25, (n, 16, 16, 1))
        for i, c in enumerate(y):
            r, s = 2 + 7 * (c // 2), 2 + 7 * (c % 2)
            img[i, r:r + 5, s:s + 5] += 150
        t = np.arange(1600) / 16_000
        freq = np.array([300.0, 600.0, 1200.0, 2400.0])[y]
        wave = 0.3 * np.sin(2 * np.pi * freq[:, None] * t + rng.uniform(0, 6.3, (n, 1)))
        wave += rng.normal(0, 0.1, wave.shape)
        return Split({"visual": np.clip(img, 0, 255).astype(np.uint8),
                      "audio": wave.astype(np.float32)}, y.astype(np.int64))

    def split(self, name):
        return self.splits[name]


@pytest.mark.parametrize("cls, params", [
    (ModDrop, None), (CorruptAug, None), (CorruptAug, CorruptAugParams(seen=True)),
    (AugMix, None), (Consistency, None), (Reconstruct, None)])
def test_training_smoke(cls, params):
    data = TinyAV()
    cfg = TrainConfig(epochs=4, batch_size=32, lr=5e-3, feature_dim=32, patience=10)
    method = build_method(cls, data, params, cfg, seed=0)
    result = train(method, data, cfg, seed=0, device=torch.device("cpu"), progress=False)
    losses = [h["loss"] for h in result.summary.history]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    assert result.summary.best_val_accuracy > 0.5  # chance is 0.25


# --- image modalities by kind; clips (B, T, C, H, W) augmented frame by frame ----------

class Recorder(nn.Module):
    """Flatten + linear that keeps every input it is given (what reaches the encoder)."""

    def __init__(self, in_dim, dim):
        super().__init__()
        self.seen = []
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, dim))

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.net(x)


def recording_context(frames, dim=8, num_classes=3, specs=True):
    """visual: still images (B, 3, 8, 8) (frames=1) or clips (B, T, 3, 8, 8); audio (B, 64).
    specs=False: the legacy four-argument context (kinds guessed from the rank)."""
    visual = (3, 8, 8) if frames == 1 else (frames, 3, 8, 8)
    shapes = {"visual": visual, "audio": (64,)}

    def make(m):
        return Recorder(int(np.prod(shapes[m])), dim)

    if not specs:
        return MethodContext(("audio", "visual"), num_classes, dim, make)
    return MethodContext(("audio", "visual"), num_classes, dim, make, {
        "audio": InputSpec("audio", "audio", (64,), sample_rate=16_000),
        "visual": InputSpec("visual", "image", visual, frames)})


def av_batch(frames, n=16):
    torch.manual_seed(1)
    visual = torch.rand(n, 3, 8, 8) if frames == 1 else torch.rand(n, frames, 3, 8, 8)
    return make_batch({"audio": 0.3 * torch.randn(n, 64), "visual": visual},
                      [i % 3 for i in range(n)])


AUG_METHODS = {
    "augmix": lambda ctx: AugMix(ctx),
    "corrupt_aug": lambda ctx: CorruptAug(ctx, CorruptAugParams(p=1.0)),
    "consistency": lambda ctx: Consistency(ctx, ConsistencyParams(drop_prob=0.0)),
}


def visual_views(name, ctx, batch, seed=0):
    """The visual tensors reaching the encoder in one training step, as (clean?, views):
    augmix and consistency encode [clean; view(s)] in one batch, corrupt_aug only a view."""
    torch.manual_seed(0)
    method = AUG_METHODS[name](ctx).train()
    torch.manual_seed(seed)
    method.training_loss(batch)
    seen = method.encoders["visual"].seen
    assert len(seen) == 1
    x = seen[0]
    views = x.chunk(len(x) // len(batch))
    assert len(views) == {"augmix": 3, "corrupt_aug": 1, "consistency": 2}[name]
    if name != "corrupt_aug":
        assert torch.equal(views[0], batch.inputs["visual"])  # the clean view is clean
        views = views[1:]
    return views, method.encoders["audio"].seen[0]


@pytest.mark.parametrize("frames", [1, 4])
@pytest.mark.parametrize("name", list(AUG_METHODS))
def test_image_augmentation_changes_still_images_and_clips(name, frames):
    batch = av_batch(frames)
    clean = batch.inputs["visual"]
    views, audio = visual_views(name, recording_context(frames), batch)
    for view in views:
        assert view.shape == clean.shape
        changed = (view - clean).abs().flatten(1).amax(1) > 1e-4
        if name == "consistency":  # one modality per sample: the visual one on some rows
            audio_changed = (audio.chunk(2)[1] != batch.inputs["audio"]).any(1)
            assert not (changed & audio_changed).any()
            assert changed.float().mean() >= 0.25
        else:
            assert changed.float().mean() >= 0.75
        assert view.min() >= 0 and view.max() <= 1


@pytest.mark.parametrize("name", list(AUG_METHODS))
def test_still_images_are_augmented_as_before(name):
    """On 4-D still images the kind-based selection draws exactly what the old rank rule
    (a legacy context without specs) draws, with the same random numbers."""
    batch = av_batch(1)
    new, _ = visual_views(name, recording_context(1), batch)
    old, _ = visual_views(name, recording_context(1, specs=False), batch)
    assert all(torch.equal(a, b) for a, b in zip(new, old, strict=True))


def test_audio_is_not_taken_for_an_image_whatever_its_rank():
    """Kinds come from the specs: a 4-D audio input (e.g. precomputed spectrogram frames)
    is not given image operations, a clip is."""
    ctx = MethodContext(("audio", "visual"), 3, 8, lambda m: nn.Identity(), {
        "audio": InputSpec("audio", "audio", (1, 8, 8)),
        "visual": InputSpec("visual", "image", (2, 1, 8, 8), frames=2)})
    batch = make_batch({"audio": torch.rand(2, 1, 8, 8), "visual": torch.rand(2, 2, 1, 8, 8)},
                       [0, 1])
    assert ops.image_modalities(ctx, batch) == ("visual",)
    assert ops.modality_kinds(ctx, batch) == {"audio": "audio", "visual": "image"}
    legacy = MethodContext(("audio", "visual"), 3, 8, lambda m: nn.Identity())
    assert ops.image_modalities(legacy, batch) == ("audio", "visual")  # the rank guess


@pytest.mark.parametrize("fn, args", [(ops.random_chain, (3, 10.0)),
                                      (augmix_view, (3, 3, 10.0, 1.0))])
def test_a_clip_gets_one_draw_applied_to_every_frame(fn, args):
    """per_clip == the same draw on each frame: with the same seed, frame t of the
    augmented clip is what fn makes of frame t alone (fn draws per batch row)."""
    clips = torch.rand(5, 3, 2, 8, 8)
    torch.manual_seed(0)
    out = ops.per_clip(fn, clips, *args)
    assert out.shape == clips.shape
    for t in range(clips.shape[1]):
        torch.manual_seed(0)
        assert torch.allclose(out[:, t], fn(clips[:, t], *args), atol=1e-6)
    torch.manual_seed(0)
    assert torch.equal(ops.per_clip(fn, clips[:, 0], *args), out[:, 0])  # 4-D: fn itself
    with pytest.raises(ValueError, match="clips"):
        ops.per_clip(fn, torch.rand(2, 8, 8), *args)


def test_seen_corruptions_keep_a_clip_coherent_and_in_range():
    torch.manual_seed(0)
    clip = torch.rand(1, 1, 3, 8, 8).expand(6, 3, 3, 8, 8).contiguous()  # 3 equal frames
    out = corrupt(clip, torch.ones(6, dtype=torch.bool), seen=False, severity=10.0,
                  kind="image")
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 0], out[:, 2])
    assert not torch.allclose(out, clip)
    seen = corrupt(clip, torch.ones(6, dtype=torch.bool), seen=True, kind="image")
    assert seen.min() >= 0 and seen.max() <= 1 and not torch.allclose(seen, clip)


@pytest.mark.parametrize("size, lo, hi", [(32, 0.04, 0.10), (224, 0.08, 0.38)])
def test_seen_image_noise_follows_the_grid_range_of_the_image_size(size, lo, hi):
    """corrupt_aug[seen=true] trains on the grid's gaussian_noise range at the severity
    scale of the image size (cifar for 32 px, imagenet for 224 px)."""
    from baselines.corrupt_aug import seen_image

    torch.manual_seed(0)
    x = torch.full((48, 3, size, size), 0.5)
    out = seen_image(x)
    stds = (out - x).flatten(1).std(dim=1)
    noisy = stds[stds > 1e-6]  # the blur branch leaves a constant image unchanged
    assert len(noisy) > 10
    # the sample std of >= 3,072 values is within 5 % of sigma (5 standard errors); at
    # sigma 0.38 clipping to [0, 1] lowers it by at most a quarter
    assert noisy.min() >= lo * 0.95
    assert noisy.max() <= hi * 1.05
    assert noisy.max() >= lo + 0.5 * (hi - lo)  # the draws span the range
