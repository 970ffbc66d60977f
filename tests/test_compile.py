"""`train.compile` / `rambench run --compile`: torch.compile of a method's modules."""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
from click.testing import CliRunner

from rambench.cli import cli
from rambench.datasets import datasets, to_batch
from rambench.methods import methods
from rambench.train import TrainConfig, build_method, compile_method, modality_kinds


def test_a_compiled_method_keeps_its_weights_names_and_outputs():
    dataset = datasets.get("avdigits")()
    cfg = TrainConfig(feature_dim=16)
    cls = methods.get("late_fusion")
    method = build_method(cls, dataset, cls.Params(), cfg, seed=0)
    eager = copy.deepcopy(method)
    compile_method(method)
    assert method._compiled_call_impl is not None  # forward
    assert method.training_loss._torchdynamo_orig_callable.__self__ is method  # compiled
    assert list(method.state_dict()) == list(eager.state_dict())  # checkpoints unchanged
    batch = to_batch(dataset.split("val"), modality_kinds(dataset), np.arange(8))
    loss, expected = method.training_loss(batch), eager.training_loss(batch)
    assert set(loss) == set(expected)
    for name in loss:
        torch.testing.assert_close(loss[name], expected[name], rtol=1e-4, atol=1e-5)
    loss["loss"].backward()
    expected["loss"].backward()
    for (name, p), q in zip(method.named_parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-5, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(method.eval()(batch), eager.eval()(batch), rtol=1e-4,
                                   atol=1e-5)


def test_the_compile_flag_is_a_setting_of_its_own_in_the_plan(tmp_path):
    def todo(*flags: str) -> set[str]:
        result = CliRunner().invoke(cli, ["run", "--method", "late_fusion", "--grid", "smoke",
                                          "--out", str(tmp_path), "--dry-run", "--json",
                                          *flags])
        assert result.exit_code == 0, result.output
        return {cell["key"] for cell in json.loads(result.stdout)["todo"]}

    eager, compiled = todo(), todo("--compile")
    assert len(compiled) == len(eager) == 13
    assert compiled.isdisjoint(eager)  # never mixed with results trained without it
    assert todo("--set", "train.compile=true") == compiled
