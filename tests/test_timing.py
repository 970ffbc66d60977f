"""The first estimate of a study on a new machine: a short timing run, scaled to the splits."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rambench import timing
from rambench.api import plan_study
from tests.helpers import invoke_cli

EPOCH, VALIDATION, BUILD = 3.0, 0.5, 0.2  # seconds a fake clock lets pass


@pytest.fixture
def clocked(monkeypatch):
    """rambench.timing with a fake clock: a two-epoch training's last epoch takes EPOCH s,
    a validation pass VALIDATION s and building a condition's inputs BUILD s."""
    now = [0.0]
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: now[0]))

    def advance(seconds):
        now[0] += seconds

    monkeypatch.setattr(timing, "train", lambda *a, **k: SimpleNamespace(
        summary=SimpleNamespace(history=[{"seconds": 99.0}, {"seconds": EPOCH}])))
    monkeypatch.setattr(timing, "accuracy", lambda *a, **k: advance(VALIDATION))
    built = []  # how many samples each build had: a warm-up's clock does not count

    def build(dataset, split, *args, **kwargs):
        built.append(len(split))
        advance(BUILD if len(split) == timing.INPUT_SAMPLES else 100.0)

    monkeypatch.setattr(timing, "build_test_inputs", build)
    return built


def test_the_timing_run_scales_its_samples_to_the_splits(clocked, tmp_path):
    plan = plan_study(["late_fusion", "raml"], grid="smoke", seeds=[0, 1], out=tmp_path,
                      study="timed")
    sizes = {s: len(plan.spec.dataset.split(s)) for s in ("train", "val", "test")}
    train_n, val_n = (min(timing.TRAIN_SAMPLES, sizes[s]) for s in ("train", "val"))
    per_epoch, cells = timing.timing_run(plan)
    # the epoch timed is training on train_n samples plus validating val_n of them
    validating = VALIDATION / val_n
    epoch = (EPOCH - VALIDATION) / train_n * sizes["train"] + validating * sizes["val"]
    assert per_epoch == {"late_fusion": {"timed": pytest.approx(epoch, rel=1e-12)},
                         "raml": {"timed": pytest.approx(epoch, rel=1e-12)}}
    # a cell: its model predicts the test split; each condition (and seed) is built once
    conditions = len({(c.data_key, c.job.seed) for c in plan.todo})
    building = BUILD / timing.INPUT_SAMPLES * sizes["test"] * conditions / len(plan.todo)
    assert len(cells) == len(plan.todo) == 2 * conditions
    timed = len(range(0, conditions, -(-conditions // timing.CONDITIONS)))  # evenly spread
    assert timed <= timing.CONDITIONS
    assert clocked == [timing.WARM_UP_SAMPLES, timing.INPUT_SAMPLES] * timed
    assert cells == pytest.approx([validating * sizes["test"] + building] * len(cells),
                                  rel=1e-12)


def test_a_new_study_on_a_new_machine_gets_an_estimate_from_a_timing_run(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("RAMBENCH_TIMING_RUN", "1")
    dry = invoke_cli("run", "--method", "late_fusion", "--grid", "smoke", "--dry-run",
                     "--out", str(tmp_path), cwd=tmp_path)
    line = next(x for x in dry.stdout.splitlines() if x.startswith("estimated time: "))
    assert "timing run on this machine (no stored timings)" in line
    assert "no stored timings on avdigits: timing 1 method(s) for a few steps" in dry.stderr
    assert not (tmp_path / "default" / "records").exists()  # nothing stored by a dry run
    monkeypatch.setenv("RAMBENCH_TIMING_RUN", "0")
    quiet = invoke_cli("run", "--method", "late_fusion", "--grid", "smoke", "--dry-run",
                       "--out", str(tmp_path), cwd=tmp_path)
    assert "estimated time" not in quiet.stdout
