import json

import numpy as np
import pytest

from corruptions.missing import expected_missing_fraction, random_missing_mask
from rambench.plan import CLEAN, Cell, Condition, Job
from rambench.store import Store, pack_bits, unpack_bits


def job(**changes):
    base = dict(dataset="avdigits", dataset_version="1", method="raml", family="reference",
                params={"alpha": 1.0}, train_config={"epochs": 3}, seed=0)
    base.update(changes)
    return Job(**base)


def test_keys_are_stable_and_change_with_every_determining_input():
    cell = Cell(job(), Condition("corruption", "visual", "fog", 3), {"fog": "ic==1.1.2"})
    same = Cell(job(params={"alpha": 1.0}), Condition("corruption", "visual", "fog", 3),
                {"fog": "ic==1.1.2"})
    assert cell.key == same.key and len(cell.key) == 20
    variants = [
        Cell(job(dataset_version="2"), cell.condition, cell.backends),
        Cell(job(method="late_fusion"), cell.condition, cell.backends),
        Cell(job(params={"alpha": 0.5}), cell.condition, cell.backends),
        Cell(job(train_config={"epochs": 4}), cell.condition, cell.backends),
        Cell(job(seed=1), cell.condition, cell.backends),
        Cell(job(train_condition="moddrop"), cell.condition, cell.backends),
        Cell(job(), Condition("corruption", "visual", "fog", 4), cell.backends),
        Cell(job(), Condition("corruption", "audio", "fog", 3), cell.backends),
        Cell(job(), cell.condition, {"fog": "torch-1"}),
    ]
    keys = {v.key for v in variants}
    assert len(keys) == len(variants) and cell.key not in keys


def test_data_key_is_shared_by_methods_but_not_by_seeds():
    a = Cell(job(method="raml"), CLEAN)
    b = Cell(job(method="late_fusion", params={}), CLEAN)
    assert a.data_key == b.data_key and a.key != b.key
    assert Cell(job(seed=1), CLEAN).data_key != a.data_key


def test_condition_round_trips_through_dict():
    mixed = Condition("mixed", "all", "gaussian_noise+gaussian_noise", 2,
                      mixed=(("visual", "gaussian_noise"), ("audio", "gaussian_noise")),
                      mixed_probability=0.5)
    for cond in (CLEAN, mixed, Condition("missing", missing_pattern="random", missing_rate=0.3)):
        assert Condition.from_dict(json.loads(json.dumps(cond.as_dict()))) == cond


def test_pack_bits_round_trip():
    correct = np.random.default_rng(0).random(37) < 0.5
    assert np.array_equal(unpack_bits(pack_bits(correct), 37), correct)


def record(key="k1"):
    return {"key": key, "dataset": "d", "method": "m", "family": "f", "seed": 0,
            "train_condition": "clean", "test_modality": "none", "corruption": "none",
            "severity": 0, "missing_pattern": "none", "missing_rate": 0.0,
            "metrics": {"accuracy": 0.5}, "n": 2, "provenance": {"code_version": "x"}}


def test_store_detects_half_written_and_edited_records(tmp_path):
    store = Store(tmp_path, "s")
    path = store.write(record("good"))
    assert store.has("good") and not list(store.records_dir.glob("*.tmp"))
    text = path.read_text()
    (store.records_dir / "half.json").write_text(text[: len(text) // 2])
    edited = json.loads(text)
    edited["key"] = "edited"
    edited["metrics"]["accuracy"] = 0.9
    (store.records_dir / "edited.json").write_text(json.dumps(edited))
    assert [r["key"] for r in store.records()] == ["good"]
    assert {p.stem for p, _ in store.invalid} == {"half", "edited"}
    assert not store.has("half")
    tidy = store.tidy()
    assert list(tidy["value"]) == [0.5] and tidy["higher_is_better"].all()


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_random_missing_respects_rate_and_never_drops_everything(rate):
    masks = np.stack([random_missing_mask(2, rate, seed) for seed in range(4000)])
    assert not masks.all(axis=1).any()
    expected = expected_missing_fraction(2, rate)
    assert abs(masks.mean() - expected) < 0.03
    # hand-computed for two modalities: r (1 - r) / (1 - r^2) = r / (1 + r)
    assert expected == pytest.approx(rate / (1 + rate))
