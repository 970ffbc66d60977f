"""`train.compile` / `rambench run --compile`: torch.compile of a method's modules."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import torch
from torch import nn

from rambench.datasets import datasets, to_batch
from rambench.methods import methods
from rambench.train import TrainConfig, build_method, compile_method, modality_kinds

FLOAT32_EPS = torch.finfo(torch.float32).eps  # 2**-23: one rounding's relative error <= eps/2


def float32_tolerance(model: nn.Module, batch) -> float:
    """The relative error (in norm) that float32 arithmetic may leave in the outputs, loss and
    gradients of `model` on `batch`, whatever order its sums are taken in.

    A sum of n float32 terms is off by about eps * sqrt(n) times the size of its terms
    (rounding errors add up like a random walk; eps * n in the worst case, never met). The
    longest sum is at most n_max terms: the per-channel count B*H*W of the largest feature
    map (what batch norm's statistics and a convolution's weight gradient add up), or a
    convolution's C*k*k, a linear layer's features, the batch. (The spectrogram's sums, 400
    window samples and 201 frequency bins per mel band, are shorter.) A value is the result
    of a chain of such sums: each module that holds parameters or buffers adds at most three
    to it (forward; backward to its input; to its weights, or batch norm's two means), plus
    the average pooling and the loss' mean: L = 3 * modules + 2 stages, whose errors at most
    add up. So eps * L * sqrt(n_max), relative to the size of the terms. Against a float64
    run, eager float32 gradients stay ~15x under it (the cancellation in batch norm's backward
    and the log-mel's log bring them that close), loss and outputs far under; the test checks
    that eager float32 passes too."""
    n_max, modules = len(batch), 0

    def count(module, inputs, output):
        nonlocal n_max
        for x in (*inputs, output):
            if isinstance(x, torch.Tensor) and x.dim() == 4:
                n_max = max(n_max, x.numel() // x.shape[1])
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            n_max = max(n_max, module.in_channels * k, module.out_channels * k)
        if isinstance(module, nn.Linear):
            n_max = max(n_max, module.in_features, module.out_features)

    leaves = [m for m in model.modules() if not list(m.children())
              and (list(m.parameters(recurse=False)) or list(m.buffers(recurse=False)))]
    hooks = [m.register_forward_hook(count) for m in leaves]
    modules = len(leaves)
    with torch.no_grad():
        copy.deepcopy(model)(batch)  # a copy: batch norm's running statistics stay as they are
    for hook in hooks:
        hook.remove()
    return FLOAT32_EPS * (3 * modules + 2) * math.sqrt(n_max)


def assert_within(what: str, values: dict[str, torch.Tensor], exact: dict[str, torch.Tensor],
                  tolerance: float) -> None:
    """`values` (float32) equal `exact` (float64) to `tolerance` relative to the norm of all
    of them together: a gradient that cancels to ~0 (the input batch norm's weight) has the
    rounding errors of its terms, which are the size of the others'."""
    error = {k: (values[k].double() - exact[k]).norm().item() for k in exact}
    norm = torch.cat([v.flatten() for v in exact.values()]).norm().item()
    total = math.sqrt(sum(e * e for e in error.values()))
    worst = sorted(error, key=error.get, reverse=True)[:3]
    assert total <= tolerance * norm, (
        f"{what}: relative error {total / norm:.2e} > {tolerance:.2e}; largest in "
        + ", ".join(f"{k} ({error[k] / norm:.1e})" for k in worst))


def test_a_compiled_method_keeps_its_weights_names_and_outputs():
    dataset = datasets.get("avdigits")()
    cfg = TrainConfig(feature_dim=16)
    cls = methods.get("late_fusion")
    method = build_method(cls, dataset, cls.Params(), cfg, seed=0)
    eager = copy.deepcopy(method)
    exact = copy.deepcopy(method).double()  # the reference: float64 (after the float32 STFT)
    compile_method(method)
    assert method._compiled_call_impl is not None  # forward
    assert method.training_loss._torchdynamo_orig_callable.__self__ is method  # compiled
    assert list(method.state_dict()) == list(eager.state_dict())  # checkpoints unchanged
    names = [name for name, _ in eager.named_parameters()]
    assert [name for name, _ in method.named_parameters()] == names
    batch = to_batch(dataset.split("val"), modality_kinds(dataset), np.arange(8))
    batch64 = dataclasses.replace(batch, inputs={m: x.double() for m, x in batch.inputs.items()})
    tolerance = float32_tolerance(eager, batch)
    assert tolerance < 2e-3  # a real change of the outputs or gradients stands out of it

    expected = exact.training_loss(batch64)
    expected["loss"].backward()
    gradients = {name: p.grad for name, p in exact.named_parameters()}
    for model, which in ((eager, "eager"), (method, "compiled")):
        # eager float32 must pass as well: if it does not, the tolerance is wrong, not compile
        loss = model.training_loss(batch)
        assert set(loss) == set(expected)
        assert_within(f"{which} loss", {k: v.detach() for k, v in loss.items()},
                      {k: v.detach() for k, v in expected.items()}, tolerance)
        loss["loss"].backward()
        assert_within(f"{which} gradients", {n: p.grad for n, p in model.named_parameters()},
                      gradients, tolerance)
    with torch.no_grad():
        outputs = exact.eval()(batch64)
        for model, which in ((eager, "eager"), (method, "compiled")):
            assert_within(f"{which} outputs", {"logits": model.eval()(batch)},
                          {"logits": outputs}, tolerance)


def test_the_compile_flag_is_a_setting_of_its_own_in_the_plan(cli):
    def todo(*flags: str) -> set[str]:
        result = cli("run", "--method", "late_fusion", "--grid", "smoke", "--dry-run",
                     "--json", *flags)
        return {cell["key"] for cell in json.loads(result.stdout)["todo"]}

    eager, compiled = todo(), todo("--compile")
    assert len(compiled) == len(eager) == 13
    assert compiled.isdisjoint(eager)  # never mixed with results trained without it
    assert todo("--set", "train.compile=true") == compiled
