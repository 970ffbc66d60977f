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
from rambench.train import TrainConfig, build_method, compile_modules, modality_kinds


def test_compiled_modules_keep_their_weights_names_and_outputs():
    dataset = datasets.get("avdigits")()
    cfg = TrainConfig(feature_dim=16)
    cls = methods.get("late_fusion")
    method = build_method(cls, dataset, cls.Params(), cfg, seed=0).eval()
    eager = copy.deepcopy(method)
    compiled = compile_modules(method)
    assert compiled == [f"encoders.{m}" for m in method.encoders] + [
        name for name, _ in method.named_children() if name != "encoders"]
    assert all(getattr(module, "_compiled_call_impl", None) is not None
               for module in method.encoders.values())
    assert list(method.state_dict()) == list(eager.state_dict())  # checkpoints unchanged
    split = dataset.split("val")
    batch = to_batch(split, modality_kinds(dataset), np.arange(8))
    with torch.no_grad():
        torch.testing.assert_close(method(batch), eager(batch), rtol=1e-4, atol=1e-5)


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
