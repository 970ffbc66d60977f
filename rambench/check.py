"""Checking a method against the method contract.

* `probe(spec, dataset)`, run by every `rambench run` before any work: asks the method's
  `supports(ctx)`, builds the method (its context carries the dataset's modality specs),
  checks its `param_groups()` and runs `training_loss` and `forward` once on a few
  training samples (on the CPU, without a backward pass). A method that declines the
  dataset, that cannot be built with its settings, that raises, whose
  `training_loss` does not return a dict holding a scalar `loss`, or whose logits are not
  (batch, classes), is reported in one line naming the method.
* `conformance(spec, dataset)`, run by `rambench check` (in the spirit of `benchopt test`):
  the probe, then a finite loss, the same loss for the same seed, logits that do not depend
  on the values of inputs marked absent, a state dict that round-trips, and a few optimiser
  steps on `training_loss` that reduce the cross-entropy of `forward` on a fixed batch (the
  prediction loss rather than the training loss itself, which may legitimately rise: a
  feature-reconstruction term grows with the features' scale); on still images and on
  multi-frame clips.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from rambench.datasets import Dataset, Split, to_batch
from rambench.errors import UsageError, error_location
from rambench.methods import MethodContext, optimiser_groups
from rambench.train import TrainConfig, build_method, modality_kinds

PROBE_SAMPLES = 4


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ") + \
        error_location(err)


def probe(spec, dataset: Dataset, cfg: TrainConfig) -> None:
    """Raise UsageError if the method (`rambench.config.MethodSpec`) breaks the contract."""
    label = spec.label
    reason = spec.cls.supports(MethodContext.from_dataset(dataset, cfg.feature_dim))
    if reason is not None:
        raise UsageError(f"method {label} does not support dataset {dataset.name!r}: "
                         f"{reason}")
    try:
        method = build_method(spec.cls, dataset, spec.params, cfg, seed=0)
    except Exception as err:  # noqa: BLE001 - any construction error is the method's
        raise UsageError(f"could not build method {label}: {_one_line(err)}") from err
    try:
        optimiser_groups(method, cfg.lr)
    except Exception as err:  # noqa: BLE001
        raise UsageError(f"method {label}: bad param_groups(): {_one_line(err)}") from err
    split = dataset.split("train")
    idx = np.arange(min(PROBE_SAMPLES, len(split)))
    batch = to_batch(split, modality_kinds(dataset), idx)
    rng_state = torch.get_rng_state()
    try:
        method.train()
        try:
            losses = method.training_loss(batch)
        except Exception as err:  # noqa: BLE001
            raise UsageError(f"method {label} failed in training_loss: {_one_line(err)}") \
                from err
        if not isinstance(losses, dict) or "loss" not in losses:
            got = f"a dict with keys {sorted(losses)}" if isinstance(losses, dict) else \
                type(losses).__name__
            raise UsageError(f"method {label}: training_loss must return a dict holding "
                             f"'loss' (the value to minimise); got {got}")
        loss = losses["loss"]
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
            raise UsageError(f"method {label}: training_loss()['loss'] must be a scalar tensor "
                             "that depends on the parameters")
        method.eval()
        with torch.no_grad():
            try:
                logits = method(batch)
            except Exception as err:  # noqa: BLE001
                raise UsageError(f"method {label} failed in forward: {_one_line(err)}") \
                    from err
        expected = (len(idx), dataset.num_classes)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else \
                type(logits).__name__
            raise UsageError(f"method {label}: forward must return logits of shape "
                             f"(batch, classes) = {expected}; got {shape}")
        if spec.adaptation is not None:
            _probe_adaptation(spec, method, batch, expected)
    finally:
        torch.set_rng_state(rng_state)


def _probe_adaptation(spec, method, batch, expected: tuple[int, int]) -> None:
    """The test-time adaptation of `spec` accepts `method` and adapts on an unlabelled
    batch, returning logits of shape `expected`."""
    name = spec.id.adaptation.name
    reason = spec.adaptation.cls.supports(method)
    if reason is not None:
        raise UsageError(f"method {spec.label}: {name} cannot adapt {spec.id.label}: {reason}")
    try:
        adapter = spec.adaptation.cls(copy.deepcopy(method), spec.adaptation.params)
        logits = adapter.adapt(dataclasses.replace(batch, y=None))
    except Exception as err:  # noqa: BLE001
        raise UsageError(f"method {spec.label}: {name} failed in adapt: {_one_line(err)}") \
            from err
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else \
            type(logits).__name__
        raise UsageError(f"method {spec.label}: {name}.adapt must return logits of shape "
                         f"(batch, classes) = {expected}; got {shape}")


# ------------------------------------------------------------------- conformance suite


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


class ClipFixture(Dataset):
    """A CREMA-D-shaped fixture in memory: clips of 3 frames of 32 x 32 RGB and 0.5 s of
    16 kHz audio, the CREMA-D encoders (ResNet-18 on frames and on the log-mel), 6 classes,
    random content. Methods see multi-frame (B, T, C, H, W) visual inputs, and a context
    whose spec says so: ctx.spec("visual") has kind "image", shape (3, 3, 32, 32) and
    frames 3."""

    name = "clip-fixture"
    version = "1"
    description = "multi-frame clips, for rambench check"

    def __init__(self, n: int = 4):
        from rambench.datasets import datasets

        cremad = datasets.get("cremad")
        self.modalities = cremad.modality_specs(cremad.settings(size=32, seconds=0.5))
        self.class_names = tuple(cremad.defaults["classes"])
        rng = np.random.default_rng(0)
        visual = rng.integers(0, 256, (n, *self.modalities["visual"].shape), dtype=np.uint8)
        audio = rng.uniform(-0.5, 0.5, (n, *self.modalities["audio"].shape)).astype(np.float32)
        self._split = Split({"visual": visual, "audio": audio}, np.arange(n) % 6)

    def split(self, name: str) -> Split:
        return self._split


def fixtures() -> dict[str, Dataset]:
    """The datasets `rambench check` runs on: still images (avdigits) and clips."""
    from rambench.datasets import datasets

    return {"still images (avdigits)": datasets.get("avdigits")(), "clips": ClipFixture()}


def conformance(spec, dataset: Dataset, steps: int = 25) -> list[CheckResult]:
    """The method contract, checked on a few samples of `dataset` (see `rambench check`)."""
    cfg = TrainConfig(feature_dim=32)
    results: list[CheckResult] = []

    def record(name: str, passed: bool, detail: str = "") -> bool:
        results.append(CheckResult(name, bool(passed), detail))
        return bool(passed)

    try:
        probe(spec, dataset, cfg)
    except UsageError as err:
        record("contract: builds, training_loss holds 'loss', logits (batch, classes)", False,
               str(err))
        return results
    record("contract: builds, training_loss holds 'loss', logits (batch, classes)", True)
    kinds = modality_kinds(dataset)
    split = dataset.split("train")
    batch = to_batch(split, kinds, np.arange(min(8, len(split))))

    def build(seed: int = 0):
        return build_method(spec.cls, dataset, spec.params, cfg, seed)

    def loss_of(method) -> float:
        method.train()
        method.start_epoch(0, 1)
        torch.manual_seed(0)
        return float(method.training_loss(batch)["loss"].detach())

    method = build()
    first = loss_of(method)
    record("loss is finite", np.isfinite(first), f"loss = {first}")
    again = loss_of(build())
    record("same seed, same loss", first == again, f"{first!r} then {again!r}")

    method.eval()
    with torch.no_grad():
        for m in kinds:
            absent = batch.with_missing({m: torch.ones(len(batch), dtype=torch.bool)})
            noisy = dataclasses.replace(absent, inputs={
                **absent.inputs, m: torch.rand_like(absent.inputs[m])})
            gap = float((method(absent) - method(noisy)).abs().max())
            record(f"ignores the values of an absent {m} input", gap <= 1e-5,
                   f"logits change by {gap:.3g} when an absent input's values change")
        copy = build(seed=1)
        copy.load_state_dict(method.state_dict())
        copy.eval()
        gap = float((copy(batch) - method(batch)).abs().max())
        record("state dict round-trips", gap == 0.0, f"logits differ by {gap:.3g}")

    def prediction_loss(method) -> float:  # cross-entropy of forward() on the batch
        method.train()
        torch.manual_seed(0)
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(method(batch), batch.y))

    optimiser = torch.optim.AdamW(optimiser_groups(method, 1e-3), lr=1e-3)
    before = prediction_loss(method)
    for step in range(steps):
        method.train()
        torch.manual_seed(step)
        loss = method.training_loss(batch)["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    after = prediction_loss(method)
    record(f"{steps} steps on training_loss reduce the prediction loss on a fixed batch",
           after < before, f"cross-entropy {before:.4f} -> {after:.4f}")
    if spec.adaptation is not None:
        _adaptation_conformance(spec, method, batch, record)
    return results


def _adaptation_conformance(spec, method, batch, record) -> None:
    """A test-time adaptation: finite logits on an unlabelled stream, the same logits for
    the same stream from the same model, and a model that the stream changes."""
    name = spec.id.adaptation.name
    stream = [dataclasses.replace(batch, y=None)] * 3

    def adapted() -> tuple[list[torch.Tensor], torch.nn.Module]:
        model = copy.deepcopy(method)
        model.eval()
        adapter = spec.adaptation.cls(model, spec.adaptation.params)
        return [adapter.adapt(b).detach() for b in stream], model

    first, model = adapted()
    again, _ = adapted()
    record(f"{name}: finite logits on an unlabelled stream",
           all(torch.isfinite(x).all() for x in first))
    record(f"{name}: the same stream from the same model gives the same logits",
           all(torch.equal(a, b) for a, b in zip(first, again, strict=True)))
    before = method.state_dict()
    changed = [k for k, v in model.state_dict().items()
               if k in before and v.is_floating_point() and not torch.equal(v, before[k])]
    record(f"{name}: adapting on the stream changes the model", bool(changed),
           "no parameter or buffer changed")
