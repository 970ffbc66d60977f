"""The QMF/PDF noisy-modality protocol (`corruptions.protocols`, `mixed: {protocol: qmf}`)."""

import numpy as np
import pytest

from corruptions import registry
from corruptions.backends import corrupt
from corruptions.protocols import qmf_epsilon, qmf_gaussian_noise
from rambench.datasets import datasets
from rambench.errors import UsageError
from rambench.schema import Mixed
from rambench.study import parse
from rambench.test_inputs import build_test_inputs

KINDS = {"visual": "image", "audio": "audio"}


def test_severity_to_epsilon_hits_the_reference_levels():
    # QMF evaluates at noise levels 5 and 10: severities 2 and 4
    assert [qmf_epsilon(s) for s in (1, 2, 3, 4, 5)] == [2.5, 5, 7.5, 10, 12.5]


def test_reference_values_by_hand():
    # MT19937 seeded with 0 draws the standard normals 1.7640523, 0.4001572, 0.9787380, ...
    # severity 2: std 10 * 5 = 50 grey levels: 100 + 88.20 -> 188, 100 + 20.01 -> 120,
    # 100 + 48.94 -> 148; the same value on every channel; clipped at 255 and at 0
    image = np.full((32, 32, 3), 100, np.uint8)
    out = qmf_gaussian_noise(image, 2, seed=0)
    assert out[0, 0].tolist() == [188, 188, 188]
    assert out[0, 1].tolist() == [120, 120, 120]
    assert out[0, 2].tolist() == [148, 148, 148]
    bright = qmf_gaussian_noise(np.full((32, 32, 1), 250, np.uint8), 4, seed=0)
    assert bright[0, 0, 0] == 255  # 250 + 176.4 clipped
    dark = qmf_gaussian_noise(np.full((32, 32, 1), 5, np.uint8), 4, seed=1)
    # seed 1 draws 1.6243454, -0.6117564: 5 - 61.2 is clipped to 0, not wrapped to 199
    assert dark[0, 1, 0] == 0


@pytest.mark.parametrize("backend", ["reference", "torch"])
def test_noise_has_the_protocol_std_and_is_the_same_on_every_channel(backend):
    images = np.full((16, 48, 48, 3), 128, np.uint8)
    out, _ = corrupt(images, "qmf_gaussian_noise", 2, list(range(16)), backend, kind="image")
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    delta = out[..., 0].astype(float) - 128
    assert abs(delta.std() - 50) < 2.5  # std 10 eps = 50 grey levels (few values clipped)
    assert abs(delta.mean() + 0.5) < 1.5  # truncation to uint8 lowers the mean by ~0.5
    again, _ = corrupt(images, "qmf_gaussian_noise", 2, list(range(16)), backend, kind="image")
    assert np.array_equal(out, again)


def test_protocol_corruptions_are_not_in_all_but_can_be_named():
    assert "qmf_gaussian_noise" not in registry.names("image")
    assert "qmf_gaussian_noise" in registry.names("image", protocols=True)
    grid = parse({"conditions": {"corruptions": {"visual": "all"}}}, "g", "g")
    assert all(c.axes()["corruption"] != "qmf_gaussian_noise" for c in grid.grid.conditions(KINDS))
    named = parse({"conditions": {"clean": False, "severities": [2],
                                       "corruptions": {"visual": ["qmf_gaussian_noise"]}}},
                       "g", "g")
    assert [c.label for c in named.grid.conditions(KINDS)] == ["visual:qmf_gaussian_noise@2"]


def test_mixed_protocol_qmf_expands_and_refuses_what_it_sets():
    grid = parse({"conditions": {"clean": False,
                                      "mixed": {"protocol": "qmf", "severities": [2, 4]}}},
                      "g", "g")
    assert grid.grid.conditions(KINDS) == [
        Mixed((("visual", "qmf_gaussian_noise"), ("audio", "gaussian_noise")), s, 0.5)
        for s in (2, 4)]
    for extra, message in [({"probability": 0.3}, "set by protocol 'qmf'"),
                           ({"protocol": "pdf"}, "unknown protocol 'pdf'")]:
        bad = parse({"conditions": {"mixed": {"protocol": "qmf", **extra}}}, "g", "g")
        with pytest.raises(UsageError, match=message):
            bad.grid.conditions(KINDS)


def test_mixed_qmf_corrupts_about_half_of_each_modality():
    dataset = datasets.get("avdigits")()
    split = dataset.split("test")
    cond = Mixed((("visual", "qmf_gaussian_noise"), ("audio", "gaussian_noise")), 4, 0.5)
    out = build_test_inputs(dataset, split, cond, 0, "ab" * 10)
    for m in ("visual", "audio"):
        changed = np.array([not np.array_equal(out.inputs[m][i], split.inputs[m][i])
                            for i in range(len(split))])
        assert 0.4 < changed.mean() < 0.6
