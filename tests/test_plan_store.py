import dataclasses
import json

import numpy as np
import pytest

from corruptions.missing import expected_missing_fraction, random_missing_mask
from rambench.config import MethodSpec
from rambench.identity import MethodId
from rambench.methods.raml import RAML, RAMLParams
from rambench.metrics.frame import tidy_frame, tidy_rows
from rambench.plan import Cell, Job
from rambench.schema import (
    Clean,
    Corrupt,
    Drop,
    Mixed,
    Predictions,
    RandomMissing,
    Record,
    condition_from_json,
    make_record,
    pack_bits,
    unpack_bits,
)
from rambench.store import Store, record_checksum


def job(name="raml", code="c0", params=None, **changes):
    params = params or RAMLParams()
    method = MethodSpec(MethodId(name, (), code), RAML, params)
    base = dict(dataset="avdigits", dataset_version="1", method=method,
                train_config={"epochs": 3}, seed=0, harness="h0")
    base.update(changes)
    return Job(**base)


def test_keys_are_stable_and_change_with_every_determining_input():
    cell = Cell(job(), Corrupt("visual", "fog", 3), {"fog": "ic==1.1.2"})
    same = Cell(job(params=RAMLParams()), Corrupt("visual", "fog", 3), {"fog": "ic==1.1.2"})
    assert cell.key == same.key and len(cell.key) == 20
    variants = [
        Cell(job(dataset_version="2"), cell.condition, cell.backends),
        Cell(job(name="late_fusion"), cell.condition, cell.backends),
        Cell(job(code="c1"), cell.condition, cell.backends),  # the method's code changed
        Cell(job(harness="h1"), cell.condition, cell.backends),  # the harness changed
        Cell(job(params=RAMLParams(alpha=0.5)), cell.condition, cell.backends),
        Cell(job(train_config={"epochs": 4}), cell.condition, cell.backends),
        Cell(job(seed=1), cell.condition, cell.backends),
        Cell(job(), Corrupt("visual", "fog", 4), cell.backends),
        Cell(job(), Corrupt("audio", "fog", 3), cell.backends),
        Cell(job(), cell.condition, {"fog": "torch-1"}),
    ]
    keys = {v.key for v in variants}
    assert len(keys) == len(variants) and cell.key not in keys


def test_data_key_is_shared_by_methods_but_not_by_seeds():
    a = Cell(job(name="raml"), Clean())
    b = Cell(job(name="late_fusion"), Clean())
    assert a.data_key == b.data_key and a.key != b.key
    assert Cell(job(seed=1), Clean()).data_key != a.data_key


CONDITIONS = [Clean(), Corrupt("visual", "fog", 2), Corrupt("visual", "fog", 2, "cifar"),
              Drop("audio"), RandomMissing(0.3),
              Mixed((("visual", "gaussian_noise"), ("audio", "gaussian_noise")), 2, 0.5)]


@pytest.mark.parametrize("cond", CONDITIONS, ids=lambda c: c.label)
def test_condition_round_trips_through_json(cond):
    assert condition_from_json(json.loads(json.dumps(cond.to_json()))) == cond


def test_condition_axes_are_none_where_a_condition_has_no_such_axis():
    assert Clean().axes() == dict.fromkeys(
        ["test_modality", "corruption", "severity", "severity_scale", "missing_pattern",
         "missing_rate"])
    assert Drop("audio").axes()["missing_pattern"] == "drop"
    assert RandomMissing(0.3).axes()["missing_pattern"] == "random"
    mixed = CONDITIONS[-1]
    assert (mixed.test_modality, mixed.corruption) == ("visual+audio",
                                                      "gaussian_noise+gaussian_noise")
    # the severity scale is a setting of a cell, not another cell: the label leaves it out
    assert len({c.label for c in CONDITIONS}) == len(CONDITIONS) - 1


def test_pack_bits_round_trip():
    correct = np.random.default_rng(0).random(37) < 0.5
    assert np.array_equal(unpack_bits(pack_bits(correct), 37), correct)


def test_store_detects_half_written_and_edited_records(tmp_path):
    store = Store(tmp_path, "s")
    path = store.write(make_record(key="good", accuracy=0.5))
    assert store.has("good") and not list(store.records_dir.glob("*.tmp"))
    text = path.read_text()
    (store.records_dir / "half.json").write_text(text[: len(text) // 2])
    edited = json.loads(text)
    edited["key"] = "edited"
    edited["metrics"]["accuracy"] = 0.9
    (store.records_dir / "edited.json").write_text(json.dumps(edited))
    assert [r.key for r in store.records()] == ["good"]
    assert {p.stem for p, _ in store.invalid} == {"half", "edited"}
    assert not store.has("half")
    tidy = tidy_frame(store.records())
    assert list(tidy["value"]) == [0.5] and tidy["higher_is_better"].all()


def test_record_round_trips_through_the_store(tmp_path):
    probs = np.random.default_rng(1).dirichlet(np.ones(10), size=7).astype(np.float32)
    labels = np.arange(7) % 10
    predictions = Predictions.from_probabilities(probs, labels)
    record = make_record(key="k", condition=Corrupt("visual", "fog", 3, "cifar"),
                         modality_kind="image",
                         corruption_family="weather", correct=predictions.correct,
                         predictions=predictions, method="raml[norm=hard]")
    store = Store(tmp_path, "s")
    store.write(record)
    back = store.records()[0]
    assert back.condition == record.condition and back.method == record.method
    assert np.array_equal(back.correct, record.correct)
    assert np.array_equal(back.predictions.classes, predictions.classes)
    assert np.allclose(back.predictions.probabilities, probs[np.arange(7)[:, None],
                                                             predictions.classes], atol=1e-3)
    assert np.allclose(back.predictions.label_probability, probs[np.arange(7), labels])
    row = tidy_rows(back)[0]
    assert (row["method"], row["condition_kind"], row["modality_kind"],
            row["corruption_family"], row["severity"]) == ("raml[norm=hard]", "corruption",
                                                           "image", "weather", 3)


def test_many_classes_keep_top_k_and_exact_label_probability():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(300), size=50).astype(np.float32)
    labels = rng.integers(0, 300, 50)
    p = Predictions.from_probabilities(probs, labels)
    assert p.classes.shape == (50, 5) and p.classes.dtype == np.uint16
    assert np.array_equal(p.predicted, probs.argmax(1))
    assert np.allclose(p.label_probability, probs[np.arange(50), labels])
    assert np.allclose(p.squared_sum, (probs ** 2).sum(1), rtol=1e-5)


def schema1_record(key, method="late_fusion", condition=None, created=None):
    condition = condition or {"kind": "corruption", "modality": "visual",
                              "corruption": "fog", "severity": 3, "missing_pattern": "none",
                              "missing_rate": 0.0}
    data = {"key": key, "study": "old", "dataset": "avdigits", "dataset_version": "1",
            "method": method, "family": "vanilla", "seed": 0, "train_condition": "clean",
            "test_condition": condition, "test_modality": condition["modality"],
            "corruption": condition["corruption"], "severity": condition["severity"],
            "missing_pattern": condition["missing_pattern"],
            "missing_rate": condition["missing_rate"], "metrics": {"accuracy": 0.75}, "n": 4,
            "correct": pack_bits(np.array([1, 1, 1, 0], bool)), "details": {},
            "method_params": {}, "train_config": {}, "schema": 1,
            "provenance": {"code_version": "0.1.0+old"}}
    data["checksum"] = record_checksum(data)
    return data


def test_schema_1_records_are_migrated_when_read(tmp_path):
    store = Store(tmp_path, "old")
    store.records_dir.mkdir(parents=True)
    drop = {"kind": "missing", "modality": "audio", "corruption": "none", "severity": 0,
            "missing_pattern": "drop", "missing_rate": 0.0}
    for data in (schema1_record("a"), schema1_record("b", condition=drop)):
        (store.records_dir / f"{data['key']}.json").write_text(json.dumps(data))
    fog, dropped = sorted(store.records(), key=lambda r: r.key)
    assert fog.schema == 1 and fog.condition == Corrupt("visual", "fog", 3, "imagenet")
    assert (fog.modality_kind, fog.corruption_family) == ("image", "weather")
    assert fog.method.family == "vanilla" and fog.method.code is None
    assert fog.corruption_backend == "reference" and fog.predictions is None
    assert dropped.condition == Drop("audio") and dropped.corruption_family is None
    tidy = tidy_frame(store.records())
    assert set(tidy["condition_kind"]) == {"corruption", "drop"}
    assert tidy["method_family"].tolist() == ["vanilla", "vanilla"]


def test_newest_record_of_a_cell_is_current_and_older_ones_are_stale(tmp_path):
    store = Store(tmp_path, "s")
    old = make_record(key="old", accuracy=0.25,
                      provenance={"created": "2026-01-01T00:00:00", "code_version": "a"})
    new = dataclasses.replace(old, key="new", metrics={"accuracy": 0.75},
                              provenance={"created": "2026-02-01T00:00:00",
                                          "code_version": "b"})
    other = make_record(key="other", method="raml[norm=hard]")
    for r in (new, old, other):
        store.write(r)
    index = store.index()
    assert [r.key for r in index.stale] == ["old"]
    assert sorted(r.key for r in store.records()) == ["new", "other"]
    assert sorted(tidy_frame(store.records())["value"]) == [0.5, 0.75]
    assert set(index.by_key) == {"old", "new", "other"}


def test_record_from_a_newer_schema_is_refused_with_a_clear_reason(tmp_path):
    data = make_record(key="x").to_json()
    data["schema"] = 99
    with pytest.raises(ValueError, match="newer than this rambench reads"):
        Record.from_json(data)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_random_missing_respects_rate_and_never_drops_everything(rate):
    masks = np.stack([random_missing_mask(2, rate, seed) for seed in range(4000)])
    assert not masks.all(axis=1).any()
    expected = expected_missing_fraction(2, rate)
    assert abs(masks.mean() - expected) < 0.03
    # hand-computed for two modalities: r (1 - r) / (1 - r^2) = r / (1 + r)
    assert expected == pytest.approx(rate / (1 + rate))


def test_records_from_before_severity_scales_read_as_imagenet():
    """Image corruptions with scales used ImageNet-C's constants before scales existed;
    audio corruptions and protocol corruptions have no scale."""
    def stored(condition, modality_kind):
        data = make_record(condition=condition, modality_kind=modality_kind).to_json()
        data["condition"].pop("severity_scale", None)
        return Record.from_json(data).condition.severity_scale

    assert stored(Corrupt("visual", "fog", 2), "image") == "imagenet"
    assert stored(Corrupt("audio", "gaussian_noise", 2), "audio") is None
    assert stored(Corrupt("visual", "qmf_gaussian_noise", 2), "image") is None
    mixed = Mixed((("visual", "gaussian_noise"), ("audio", "gaussian_noise")), 2, 0.5)
    assert stored(mixed, "image+audio") == "imagenet"
    # a record that has a scale keeps it
    assert Record.from_json(make_record(condition=Corrupt("visual", "fog", 2, "cifar"),
                                        modality_kind="image").to_json()
                            ).condition.severity_scale == "cifar"
