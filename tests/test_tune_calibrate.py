"""rambench tune (the same learning-rate budget for every method, chosen on validation) and
rambench calibrate (are the severity ladders graded?)."""

from __future__ import annotations

import json
import math

from corruptions import registry
from rambench.calibrate import (
    MISSING_RATES,
    Ladder,
    ladder_grid,
    multimodal_grid,
    reference_method,
    render,
)
from rambench.datasets import datasets
from rambench.schema import AVEvent, Clean, Corrupt, RandomMissing, SegmentLoss
from rambench.store import Store


def ladder(clean, accuracy, chance=0.1, n=400):
    return Ladder("visual", "fog", "visual_only", clean, accuracy, chance, n).check()


def test_a_graded_ladder_is_not_flagged():
    assert ladder(0.9, [0.85, 0.75, 0.6, 0.45, 0.3]).flags == []


def test_collapse_flat_and_non_monotone_ladders_are_flagged():
    # severity 1 loses 0.5 of the 0.8 gap (more than half): collapse
    assert ladder(0.9, [0.49, 0.3, 0.2, 0.15, 0.1]).flags == ["collapses at s1"]
    assert ladder(0.9, [0.51, 0.3, 0.2, 0.15, 0.1]).flags == []
    # severity 5 loses less than a tenth of the gap: flat
    assert ladder(0.9, [0.9, 0.89, 0.89, 0.88, 0.83]).flags == ["flat"]
    # a rise beyond two binomial standard errors (n=400, p=0.5: 5 points) is not monotone
    flags = ladder(0.9, [0.8, 0.5, 0.56, 0.4, 0.3]).flags
    assert flags == ["not monotone (s2 50.0% < s3 56.0%)"]
    assert ladder(0.9, [0.8, 0.5, 0.54, 0.4, 0.3]).flags == []  # within seed noise


def test_a_published_non_monotone_ladder_is_reported_not_failed():
    rise = [0.8, 0.5, 0.56, 0.4, 0.3]
    spatter = Ladder("visual", "spatter", "visual_only", 0.9, rise, 0.1, 400).check()
    assert spatter.flags == ["published, non-monotone (s2 50.0% < s3 56.0%)"]
    assert not spatter.failed
    assert ladder(0.9, rise).failed  # fog is not published so
    flat = Ladder("visual", "spatter", "visual_only", 0.9, [0.9, 0.89, 0.89, 0.88, 0.83],
                  0.1, 400).check()
    assert flat.failed  # only non-monotonicity is excused


def test_the_ladders_cover_events_missing_rates_and_lost_segments():
    kinds = {"visual": "image", "audio": "audio"}
    audio = ladder_grid("audio", "audio").grid.conditions(kinds)
    assert [c.severity for c in audio if isinstance(c, SegmentLoss)] == [1, 2, 3, 4, 5]
    assert not any(isinstance(c, SegmentLoss)
                   for c in ladder_grid("visual", "image").grid.conditions(kinds))
    study = multimodal_grid()
    conditions = study.grid.conditions(kinds)
    assert study.split == "val"
    assert {(c.event, c.severity) for c in conditions if isinstance(c, AVEvent)} == {
        (e, s) for e in registry.names("av") for s in range(1, 6)}
    assert [c.missing_rate for c in conditions if isinstance(c, RandomMissing)] == \
        list(MISSING_RATES)


def test_the_ladders_cover_every_corruption_held_out_ones_included():
    conditions = ladder_grid("visual", "image").grid.conditions(
        {"visual": "image", "audio": "audio"})
    corrupted = {(c.corruption, c.severity) for c in conditions if isinstance(c, Corrupt)}
    assert corrupted == {(n, s) for n in registry.names("image") for s in range(1, 6)}
    assert set(registry.HELD_OUT["image"]) <= {n for n, _ in corrupted}
    assert sum(isinstance(c, Clean) for c in conditions) == 1


def test_the_ladders_are_measured_on_the_validation_split_unless_asked():
    assert ladder_grid("visual", "image").split == "val"  # the test split tunes nothing
    assert ladder_grid("visual", "image", "test").split == "test"


def test_render_gives_percentages_and_flags():
    text = render([ladder(0.9, [0.49, 0.3, 0.2, 0.15, 0.1])])
    assert "| visual | fog | 90.0 | 49.0 | 30.0 | 20.0 | 15.0 | 10.0 | collapses at s1 |" in text


def test_reference_methods_are_the_unimodal_ones():
    dataset = datasets.get("avdigits")()
    assert reference_method(dataset, "visual") == "visual_only"
    assert reference_method(dataset, "audio") == "audio_only"


def test_tune_picks_the_best_validation_lr_and_the_study_reuses_its_checkpoint(cli, tmp_path):
    out = cli("tune", "--method", "visual_only", "--epochs", "1", "--lr", "1e-4,4e-3", "--out",
              "r", "--json").stdout
    (row,) = json.loads(out)
    accuracy = {float(k): v for k, v in row["val_accuracy"].items()}
    assert set(accuracy) == {1e-4, 4e-3}
    # the best validation accuracy; a tie goes to the candidate nearest the default (2e-3)
    assert row["chosen_lr"] == max(accuracy, key=lambda lr: (accuracy[lr],
                                                             -abs(math.log(lr / 2e-3))))
    from rambench.study import stored

    assert stored(tmp_path / "r", "default").tuned == {"visual_only": {
        "lr": row["chosen_lr"], "seed": 0,
        "val_accuracy": {k: round(v, 6) for k, v in row["val_accuracy"].items()}}}
    store = Store(tmp_path / "r", "default")
    checkpoints = sorted(store.checkpoints_dir.glob("*.pt"))
    assert len(checkpoints) == 2
    (tmp_path / "grid.yaml").write_text(
        "tune: {lr: [0.0001, 0.004]}\nconditions: {clean: true}\n")
    cli("run", "--method", "visual_only", "--grid", "grid.yaml", "--epochs", "1", "--out", "r")
    (record,) = store.records()
    assert record.train_config["lr"] == row["chosen_lr"]
    assert sorted(store.checkpoints_dir.glob("*.pt")) == checkpoints  # nothing retrained
