"""Feature reuse in evaluation: a clean modality's encoder outputs are computed once per model
and reused by every cell that feeds them, with outputs bit for bit those computed without."""


import numpy as np
import pytest
import torch
from torch import nn

from rambench import execute
from rambench.datasets import Split
from rambench.evaluate import predict
from rambench.feature_cache import FeatureCache
from rambench.memory import MemoryBudget
from rambench.methods import Method, MethodContext
from tests.helpers import export_rows, invoke_cli, share_checkpoints

MODS = ("audio", "visual")
KINDS = {m: "audio" for m in MODS}
CPU = torch.device("cpu")


class Calls(nn.Module):
    """A linear encoder with a `tokens` view that counts what it computes."""

    def __init__(self):
        super().__init__()
        self.linear, self.rows = nn.Linear(5, 4), 0

    def forward(self, x):
        self.rows += len(x)
        return self.linear(x)

    def tokens(self, x):
        self.rows += len(x)
        return self.linear(x).unsqueeze(1)


class Fusion(Method):
    """Sums its encoders' features (after scaling them in place) and their tokens."""

    def forward(self, batch):
        z = self.encode(batch)
        for f in z.values():
            f.mul_(2.0)  # in place: must not reach a stored feature
        z = self.mask_absent(z, batch)
        tokens = sum(self.encoders[m].tokens(batch.inputs[m]).squeeze(1) for m in MODS)
        return self.head(sum(z.values()) + tokens)

    def __init__(self, ctx, params=None):
        super().__init__(ctx, params)
        self.head = nn.Linear(4, 3)


class Stochastic(Fusion):
    reuse_features = False


def model(cls=Fusion):
    torch.manual_seed(0)
    return cls(MethodContext(MODS, 3, 4, lambda m: Calls()))


def split_of(n=10):
    rng = np.random.default_rng(0)
    return Split({m: rng.normal(size=(n, 5)).astype(np.float32) for m in MODS}, np.arange(n) % 3)


def corrupted(split):
    return {**split.inputs, "audio": split.inputs["audio"] + 1.0}


def test_a_clean_modality_is_encoded_once_and_reused_bit_for_bit():
    split, method, cache = split_of(10), model(), FeatureCache()
    cells = (None, corrupted(split), corrupted(split))
    expected = [predict(method, split, KINDS, CPU, 4, inputs=inputs) for inputs in cells]
    rows = {m: method.encoders[m].rows for m in MODS}
    got = [predict(method, split, KINDS, CPU, 4, inputs=inputs, features=cache)
           for inputs in cells]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    # forward and tokens of 3 clean batches per modality stored by the first cell, the
    # clean images' reused by the other two; the corrupted audio computed
    assert cache.misses == 2 * 2 * 3 and cache.hits == 2 * 2 * 3
    assert method.encoders["visual"].rows == 2 * rows["visual"] - 2 * 2 * 10
    assert method.encoders["audio"].rows == 2 * rows["audio"]
    assert "forward" not in vars(method.encoders["audio"])  # the encoders are restored


def test_a_masked_modality_is_assembled_from_its_clean_and_zero_filled_outputs():
    """Rows of a masked batch come from the clean batch's output or from the output of the
    batch with every row zero-filled: both computed once, then every mask is reused."""
    split, cache, method = split_of(10), FeatureCache(), model()
    masks = [np.arange(10) % 2 == 0, np.arange(10) < 3, np.ones(10, dtype=bool)]
    expected = [predict(method, split, KINDS, CPU, 4, missing={"visual": mask})
                for mask in masks]
    predict(method, split, KINDS, CPU, 4, features=cache)  # the clean cell: 12 stored
    rows = method.encoders["visual"].rows
    got = predict(method, split, KINDS, CPU, 4, missing={"visual": masks[0]}, features=cache)
    assert np.array_equal(got, expected[0])
    # audio and clean images reused (6 + 6), zero-filled images computed once (6)
    assert (cache.hits, cache.misses) == (12, 12 + 6)
    assert method.encoders["visual"].rows == rows + 2 * 10
    for mask, want in zip(masks[1:], expected[1:], strict=True):
        assert np.array_equal(predict(method, split, KINDS, CPU, 4, missing={"visual": mask},
                                      features=cache), want)
    assert method.encoders["visual"].rows == rows + 2 * 10  # nothing more computed
    assert cache.misses == 18 and cache.hits == 12 + 2 * 18


def test_a_method_can_decline_reuse():
    split, cache = split_of(10), FeatureCache()
    stochastic = model(Stochastic)
    for _ in range(2):
        predict(stochastic, split, KINDS, CPU, 4, features=cache)
    assert cache.hits == cache.misses == 0


def test_past_its_budget_the_cache_computes_without_storing():
    split, method, cache = split_of(10), model(), FeatureCache(MemoryBudget(0))
    for _ in range(2):
        predict(method, split, KINDS, CPU, 4, features=cache)
    assert cache.hits == 0 and cache.bytes == 0 and cache.misses == 2 * 2 * 2 * 3
    missing = {"visual": np.arange(10) % 2 == 0}
    rows = method.encoders["visual"].rows
    assert np.array_equal(
        predict(method, split, KINDS, CPU, 4, missing=missing, features=cache),
        predict(method, split, KINDS, CPU, 4, missing=missing))
    # a masked batch is computed as it is, once: not as a clean and a zero-filled batch
    assert method.encoders["visual"].rows == rows + 2 * (2 * 10)


RUN = ["run", "--method", "late_fusion", "--method", "raml", "--grid", "grid.yaml", "--limit",
       "64", "--epochs", "1", "--threads", "1"]
GRID = """\
conditions:
  clean: true
  corruptions: {visual: [gaussian_noise], audio: [gaussian_noise]}
  severities: [1, 5]
  missing_modalities: all
  missing_rates: [0.5]
"""


def test_a_study_exports_the_same_values_with_and_without_reuse(tmp_path, monkeypatch):
    caches = []

    class Counted(FeatureCache):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            caches.append(self)

    monkeypatch.setattr(execute, "FeatureCache", Counted)
    (tmp_path / "grid.yaml").write_text(GRID)
    invoke_cli(*RUN, "--study", "reused", cwd=tmp_path)
    assert sum(c.hits for c in caches) > 0
    share_checkpoints(tmp_path, "reused", "computed")
    monkeypatch.setenv("RAMBENCH_FEATURE_REUSE", "0")
    caches.clear()
    invoke_cli(*RUN, "--study", "computed", cwd=tmp_path)
    assert caches == []
    reused, computed = export_rows(tmp_path, "reused"), export_rows(tmp_path, "computed")
    assert len(reused) > 50 and reused == computed


@pytest.mark.parametrize("value, enabled", [("0", False), ("off", False), ("1", True)])
def test_the_switch(monkeypatch, value, enabled):
    from rambench.feature_cache import reuse_enabled

    monkeypatch.setenv("RAMBENCH_FEATURE_REUSE", value)
    assert reuse_enabled() is enabled
