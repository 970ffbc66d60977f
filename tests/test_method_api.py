"""The method API: a context that carries each modality's spec (kind, shape, frames, sample
rate), `Method.mask_absent`, `Method.supports` (and how `--method` resolution uses it),
`Method.param_groups` (learning-rate multipliers in the harness's optimiser), and typed
coercion of `--set` values to tuples and optionals."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.late_fusion import LateFusion
from baselines.unimodal import AudioOnly, VisualOnly
from rambench.check import ClipFixture, probe
from rambench.config import resolve_methods
from rambench.datasets import Dataset, ModalitySpec, Split, datasets, to_batch
from rambench.errors import UsageError
from rambench.evaluate import accuracy, predict
from rambench.methods import InputSpec, Method, MethodContext, optimiser_groups
from rambench.params import apply_overrides, param
from rambench.train import TrainConfig, _optimiser, build_method, modality_kinds
from tests.helpers import identity_context, make_batch


class VisualOnlyData(Dataset):
    """A dataset with a single (still image) modality."""

    name, version, description = "visual-only", "1", "one modality"
    class_names = ("a", "b")
    modalities = {"visual": ModalitySpec("visual", "image", (8, 8, 1), "image_cnn")}

    def split(self, name):
        rng = np.random.default_rng(0)
        return Split({"visual": rng.integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)},
                     np.array([0, 1, 0, 1]))


# --- the context ------------------------------------------------------------------------

def test_the_four_argument_context_still_works_and_has_no_specs():
    ctx = MethodContext(("audio", "visual"), 3, 8, lambda m: nn.Identity())
    assert ctx.specs == {} and ctx.kind("visual") is None and ctx.of_kind("image") == ()
    with pytest.raises(KeyError, match="without specs"):
        ctx.spec("visual")
    assert LateFusion(ctx).ctx is ctx


@pytest.mark.parametrize("dataset", [datasets.get("avdigits")(), ClipFixture()],
                         ids=["still", "clips"])
def test_the_harness_context_describes_the_tensors_a_method_receives(dataset):
    method = build_method(LateFusion, dataset, None, TrainConfig(feature_dim=8), seed=0)
    ctx = method.ctx
    assert ctx.modalities == ("visual", "audio")
    assert ctx.of_kind("image") == ("visual",) and ctx.of_kind("audio") == ("audio",)
    assert ctx.kind("visual") == "image" and ctx.kind("audio") == "audio"
    batch = to_batch(dataset.split("train"), modality_kinds(dataset), np.arange(2))
    for m in ctx.modalities:
        assert tuple(batch.inputs[m].shape[1:]) == ctx.spec(m).shape  # tensor layout
    visual, audio = ctx.spec("visual"), ctx.spec("audio")
    raw = dataset.modalities["visual"].shape
    assert visual.frames == (raw[0] if len(raw) == 4 else 1)
    assert visual.is_clip == (visual.frames > 1) and not audio.is_clip
    assert audio.frames == 1 and audio.sample_rate == dataset.modalities["audio"].sample_rate
    assert visual.sample_rate is None


def test_input_spec_from_dataset_specs():
    clip = InputSpec.from_modality_spec(ModalitySpec("v", "image", (5, 32, 24, 3), "e"))
    assert (clip.shape, clip.frames, clip.is_clip) == ((5, 3, 32, 24), 5, True)
    still = InputSpec.from_modality_spec(ModalitySpec("v", "image", (32, 24, 1), "e"))
    assert (still.shape, still.frames, still.is_clip) == ((1, 32, 24), 1, False)
    wave = InputSpec.from_modality_spec(ModalitySpec("a", "audio", (800,), "e", 8000))
    assert (wave.kind, wave.shape, wave.frames, wave.sample_rate) == ("audio", (800,), 1, 8000)
    with pytest.raises(ValueError, match="raw shape"):
        InputSpec.from_modality_spec(ModalitySpec("v", "image", (32, 24), "e"))


def test_context_specs_accept_dataset_specs_and_must_cover_the_modalities():
    specs = datasets.get("avdigits").modalities
    ctx = MethodContext(("visual", "audio"), 10, 8, lambda m: nn.Identity(), specs)
    assert isinstance(ctx.spec("visual"), InputSpec) and ctx.spec("visual").shape == (3, 32, 32)
    with pytest.raises(ValueError, match="exactly the modalities"):
        MethodContext(("visual", "audio", "text"), 10, 8, lambda m: nn.Identity(), specs)
    with pytest.raises(ValueError, match="exactly the modalities"):
        MethodContext(("visual",), 10, 8, lambda m: nn.Identity(), specs)


# --- mask_absent --------------------------------------------------------------------------

def test_mask_absent_zeroes_exactly_the_absent_rows_even_non_finite_ones():
    z = {"audio": torch.randn(4, 3), "visual": torch.randn(4, 2, 5)}
    z["audio"][1] = float("nan")
    present = {"audio": torch.tensor([True, False, True, False]),
               "visual": torch.tensor([True, True, False, True])}
    batch = make_batch({"audio": torch.zeros(4, 1), "visual": torch.zeros(4, 1)}, [0] * 4,
                       present)
    for out in (Method.mask_absent(z, batch), LateFusion(identity_context()).mask_absent(
            z, present)):
        for m in z:
            assert torch.equal(out[m][present[m]], z[m][present[m]])
            assert torch.equal(out[m][~present[m]], torch.zeros_like(z[m][~present[m]]))


def test_mask_absent_passes_gradients_to_present_rows_only():
    z = torch.randn(3, 4, requires_grad=True)
    present = {"a": torch.tensor([True, False, True])}
    Method.mask_absent({"a": z}, present)["a"].sum().backward()
    assert torch.equal(z.grad[:, 0], torch.tensor([1.0, 0.0, 1.0]))


# --- supports -----------------------------------------------------------------------------

def test_unimodal_baselines_decline_a_dataset_without_their_modality():
    ctx = MethodContext.from_dataset(VisualOnlyData(), 8)
    assert AudioOnly.supports(ctx) == "needs the 'audio' modality; the dataset has visual"
    assert VisualOnly.supports(ctx) is None and LateFusion.supports(ctx) is None
    with pytest.raises(ValueError, match="audio"):
        AudioOnly(ctx)


def test_method_all_skips_an_unsupported_method_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="rambench"):
        specs = resolve_methods(["all"], {}, dataset=VisualOnlyData())
    names = {s.id.name for s in specs}
    assert "audio_only" not in names and {"visual_only", "late_fusion"} <= names
    assert [r.getMessage() for r in caplog.records if "audio_only" in r.getMessage()] == [
        "skipping audio_only: needs the 'audio' modality; the dataset has visual"]
    skips = [r for r in caplog.records if r.getMessage().startswith("skipping ")]
    assert skips and all(r.levelno == logging.WARNING for r in skips)
    # without a dataset nothing is asked: every registered method
    assert "audio_only" in {s.id.name for s in resolve_methods(["all"], {})}


def test_an_explicitly_named_unsupported_method_is_a_usage_error_with_the_reason():
    with pytest.raises(UsageError, match=r"method 'audio_only' does not support dataset "
                                         r"'visual-only': needs the 'audio' modality"):
        resolve_methods(["visual_only", "audio_only"], {}, dataset=VisualOnlyData())
    spec = resolve_methods(["audio_only"], {})[0]
    with pytest.raises(UsageError, match="does not support dataset 'visual-only'"):
        probe(spec, VisualOnlyData(), TrainConfig(feature_dim=8))


# --- param_groups -------------------------------------------------------------------------

class SlowEncoders(LateFusion):
    """Encoders at a tenth of the learning rate, without weight decay; the rest at 1x."""

    def param_groups(self):
        return [{"params": self.encoders, "lr_scale": 0.1, "weight_decay": 0.0}]


def test_without_param_groups_the_optimiser_sees_all_parameters_at_the_base_rate():
    method = build_method(LateFusion, datasets.get("avdigits")(), None,
                          TrainConfig(feature_dim=8), seed=0)
    cfg = TrainConfig(lr=0.01, schedule="step")
    optimiser, _, _ = _optimiser(method, cfg, steps_per_epoch=3)
    assert len(optimiser.param_groups) == 1
    assert optimiser.param_groups[0]["lr"] == 0.01
    assert len(optimiser.param_groups[0]["params"]) == len(list(method.parameters()))


@pytest.mark.parametrize("schedule", ["step", "onecycle"])
def test_param_groups_are_multipliers_of_train_lr_under_every_schedule(schedule):
    method = build_method(SlowEncoders, datasets.get("avdigits")(), None,
                          TrainConfig(feature_dim=8), seed=0)
    cfg = TrainConfig(lr=0.01, schedule=schedule, epochs=2)
    optimiser, step, epoch = _optimiser(method, cfg, steps_per_epoch=3)
    encoders, rest = optimiser.param_groups
    assert {id(p) for p in encoders["params"]} == {id(p) for p in method.encoders.parameters()}
    assert {id(p) for p in rest["params"]} == {id(p) for p in method.fusion.parameters()}
    assert encoders["weight_decay"] == 0.0 and rest["weight_decay"] == cfg.weight_decay
    for _ in range(3):
        assert encoders["lr"] == pytest.approx(0.1 * rest["lr"])
        optimiser.step()
        step()
    epoch()
    assert encoders["lr"] == pytest.approx(0.1 * rest["lr"])
    if schedule == "step":
        assert rest["lr"] == pytest.approx(0.01)
    else:
        assert encoders["max_lr"] == pytest.approx(0.001) and rest["max_lr"] == 0.01


@pytest.mark.parametrize("groups, message", [
    ([{"params": "x", "lr": 0.1}], "give 'lr_scale'"),
    ([{"lr_scale": 0.1}], "holding 'params'"),
    ([{"params": [], "lr_scale": -1}], "must be a number >= 0"),
])
def test_malformed_param_groups_are_refused(groups, message):
    method = LateFusion(identity_context())
    method.param_groups = lambda: groups
    with pytest.raises(ValueError, match=message):
        optimiser_groups(method, 0.01)


def test_a_parameter_in_two_groups_is_refused_and_probe_reports_it():
    class Twice(LateFusion):
        def param_groups(self):
            return [{"params": self.fusion}, {"params": self.parameters(), "lr_scale": 2}]

    with pytest.raises(ValueError, match="repeats a parameter"):
        optimiser_groups(Twice(identity_context()), 0.01)
    spec = resolve_methods([Twice], {})[0]
    with pytest.raises(UsageError, match="bad param_groups"):
        probe(spec, datasets.get("avdigits")(), TrainConfig(feature_dim=8))


def test_a_method_with_param_groups_trains():
    torch.manual_seed(0)
    method = SlowEncoders(MethodContext(("a",), 2, 4, lambda m: nn.Linear(3, 4)))
    optimiser, step, _ = _optimiser(method, TrainConfig(lr=0.05, epochs=1), 20)
    batch = make_batch({"a": torch.randn(16, 3)}, [i % 2 for i in range(16)])
    batch.inputs["a"][:, 0] += 3 * batch.y
    with torch.no_grad():
        first = float(F.cross_entropy(method(batch), batch.y))
    for _ in range(20):
        loss = method.training_loss(batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step()
    with torch.no_grad():
        assert float(F.cross_entropy(method(batch), batch.y)) < first


# --- --set coercion: tuples and optionals ------------------------------------------------

@dataclass
class TupleParams:
    kernel: tuple[int, ...] = param((3, 5), ge=1)
    window: tuple[float, float] = (0.5, 1.0)
    radius: float | None = param(None, gt=0)
    norm: Literal["soft", "hard"] | None = "soft"
    tags: tuple[str, ...] = ()


@pytest.mark.parametrize("text, expected", [
    ("(1, 2)", (1, 2)), ("1,2", (1, 2)), ("[7]", (7,)), ("4", (4,)), ("(4,)", (4,)),
    ("()", ()), (" ( 1 , 2 , 3 ) ", (1, 2, 3)),
])
def test_tuples_from_set_strings(text, expected):
    assert apply_overrides(TupleParams, "m", {"kernel": text}).kernel == expected


def test_fixed_length_tuples_optionals_and_python_values():
    p = apply_overrides(TupleParams, "m", {"window": "0.1,2", "radius": "1.5",
                                          "norm": "none", "tags": "a, b"})
    assert p.window == (0.1, 2.0) and p.radius == 1.5 and p.norm is None
    assert p.tags == ("a", "b")
    p = apply_overrides(TupleParams, "m", {"radius": "None", "norm": "hard",
                                          "kernel": [1, "2"], "window": (1, 2)})
    assert p.radius is None and p.norm == "hard" and p.kernel == (1, 2)
    assert p.window == (1.0, 2.0)
    assert apply_overrides(TupleParams, "m", {"radius": None}).radius is None
    assert apply_overrides(TupleParams, "m", {}) == TupleParams()


@pytest.mark.parametrize("key, text, message", [
    ("kernel", "1,x", r"m.kernel\[1\] expects a int; got 'x'"),
    ("kernel", "1,,2", r"m.kernel expects a tuple such as \(1, 2\) or 1,2"),
    ("kernel", "(0, 2)", r"m.kernel\[0\] must be >= 1; got 0"),
    ("window", "1,2,3", r"m.window expects 2 values \(float, float\); got 3"),
    ("radius", "abc", r"m.radius expects float or none; got 'abc'"),
    ("radius", "-1", r"m.radius must be > 0; got -1"),
    ("norm", "medium", r"m.norm expects one of soft, hard or none; got 'medium'"),
])
def test_bad_tuples_and_optionals_are_usage_errors(key, text, message):
    with pytest.raises(UsageError, match=message):
        apply_overrides(TupleParams, "m", {key: text})


class SelectedByIndex(Method):
    """Tests with class 0; is selected by a prediction that is right on every sample."""

    def forward(self, batch):
        return F.one_hot(torch.zeros_like(batch.index), 3).float()

    def validation_logits(self, batch):
        return F.one_hot(batch.index % 3, 3).float()


def test_the_best_epoch_is_chosen_by_validation_logits_and_the_test_by_forward():
    ctx = MethodContext(("audio",), 3, 4, lambda m: nn.Linear(5, 4))
    split = Split({"audio": np.zeros((7, 5), np.float32)}, np.arange(7) % 3)
    method, cpu = SelectedByIndex(ctx), torch.device("cpu")
    assert accuracy(method, split, {"audio": "audio"}, cpu) == 1.0
    assert predict(method, split, {"audio": "audio"}, cpu).argmax(1).tolist() == [0] * 7
