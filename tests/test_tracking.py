"""Experiment trackers, read back through their own libraries (no network)."""

import json
import os

import pytest

from tests.helpers import assert_usage_error, invoke_cli


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tracked")
    env_before = dict(os.environ)
    invoke_cli("run", "--method", "late_fusion", "--grid", "smoke", "--limit", "64",
               "--epochs", "3", "--study", "t", "--track", "tensorboard", "--track", "mlflow",
               "--track", "wandb", cwd=folder)
    assert dict(os.environ) == env_before
    return folder / "results" / "t" / "tracking"


def test_tensorboard_has_the_training_curves_and_every_cell(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = list((tracked / "tensorboard").iterdir())
    assert [r.name for r in runs] == ["late_fusion-seed0"]
    events = EventAccumulator(str(runs[0])).Reload()
    tags = events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert [e.step for e in events.Scalars("val/val_accuracy")] == [1, 2, 3]
    cells = [t for t in tags if t.startswith("test/accuracy/")]
    assert len(cells) == 13 and "test/accuracy/clean" in cells
    assert 0 <= events.Scalars("test/accuracy/clean")[0].value <= 1


def test_mlflow_has_params_curves_and_cell_metrics(tracked):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tracked / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("t")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "late_fusion-seed0" and run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "3" and run.data.params["seed"] == "0"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3]
    assert sum(k.startswith("test/accuracy/") for k in run.data.metrics) == 13


def read_wandb_log(path):
    """The records of an offline run's .wandb file: a 7-byte header, then LevelDB-style log
    blocks of 32 KiB whose chunks (full, first, middle, last) carry protobuf Records."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, chunks, records = path.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        chunks = chunk if kind in (1, 2) else chunks + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunks)
            records.append(record)
    return records


def test_wandb_writes_an_offline_run_with_curves_and_cells(tracked):
    runs = list((tracked / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = read_wandb_log(next(runs[0].glob("run-*.wandb")))
    def key(item):
        return item.key or "/".join(item.nested_key)

    history = [{key(i): json.loads(i.value_json) for i in r.history.item} for r in records
               if r.WhichOneof("record_type") == "history"]
    assert [h["_step"] for h in history] == [1, 2, 3]
    assert all({"train/loss", "val/val_accuracy", "train/lr"} <= set(h) for h in history)
    summary = {key(i) for r in records if r.WhichOneof("record_type") == "summary"
               for i in r.summary.update}
    assert "best_val_accuracy" in summary
    assert sum(k.startswith("test/accuracy/") for k in summary) == 13
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.display_name == "late_fusion-seed0" and run.project == "t"


def test_an_unknown_tracker_is_a_usage_error(cli):
    result = cli("run", "--track", "tensorbord", "--dry-run", check=False)
    assert_usage_error(result, "--track", "tensorboard")
