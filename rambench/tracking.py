"""Experiment trackers (`rambench run --track tensorboard|wandb|mlflow`, several allowed).

Each tracker gets, through its own library, one run per training job of this invocation:
the job's configuration (method, hyper-parameters, training settings, seed), its training
curves (every loss term, validation accuracy and learning rate per epoch, from the stored
history), its best validation accuracy, and the accuracy of every cell evaluated with it.
Jobs loaded from a checkpoint and cells already stored were logged when they were made and
are not logged again. Everything stays on disk under `<study>/tracking/` unless the
library's own setting says otherwise (`MLFLOW_TRACKING_URI`, `WANDB_DIR`, ...):

* tensorboard: event files `tracking/tensorboard/<method>-seed<seed>/` (SummaryWriter);
  `tensorboard --logdir results/<study>/tracking/tensorboard`;
* mlflow: MLflow's local file store `tracking/mlruns`, experiment = the study;
  `mlflow ui --backend-store-uri results/<study>/tracking/mlruns`;
* wandb: offline runs under `tracking/wandb` (no network is needed; `wandb sync` uploads
  them), project = the study.

Each library is an optional extra: `pip install "rambench[track]"`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from rambench.errors import UsageError

TRACKERS = ("tensorboard", "wandb", "mlflow")
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow-skinny"}


class Tracker(Protocol):
    def job(self, job, summary) -> None:
        """A job trained in this run: its configuration and per-epoch history."""

    def cell(self, record) -> None:
        """A cell evaluated in this run."""

    def close(self) -> None: ...


def _config(job) -> dict[str, Any]:
    return {"method": job.method.label, "seed": job.seed, "dataset": job.dataset,
            "dataset_version": job.dataset_version, "job_key": job.key,
            **{f"params.{k}": v for k, v in asdict(job.method.params).items()},
            **{f"train.{k}": v for k, v in job.train_config.items()}}


def _run_name(job) -> str:
    return f"{job.method.label}-seed{job.seed}"


def _curves(summary) -> list[tuple[int, dict[str, float]]]:
    """(epoch, values) per epoch of a TrainSummary's history."""
    return [(int(entry["epoch"]), {k: float(v) for k, v in entry.items() if k != "epoch"})
            for entry in summary.history]


class TensorBoard:
    def __init__(self, root: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.root, self.writers, self.make = root, {}, SummaryWriter

    def _writer(self, job_key: str, name: str):
        if job_key not in self.writers:
            self.writers[job_key] = self.make(log_dir=str(self.root / name))
        return self.writers[job_key]

    def job(self, job, summary) -> None:
        writer = self._writer(job.key, _run_name(job))
        writer.add_text("config", "```\n" + json.dumps(_config(job), indent=1, default=str)
                        + "\n```")
        for epoch, values in _curves(summary):
            for name, value in values.items():
                group = "val" if name.startswith("val_") else "train"
                writer.add_scalar(f"{group}/{name}", value, epoch + 1)
        writer.add_scalar("best/val_accuracy", summary.best_val_accuracy, summary.best_epoch + 1)

    def cell(self, record) -> None:
        writer = self._writer(record.provenance["job_key"],
                              f"{record.method.label}-seed{record.seed}")
        for name, value in record.metrics.items():
            writer.add_scalar(f"test/{name}/{record.condition.label}", value, 0)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


class MLflow:
    def __init__(self, root: Path, study: str):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the local file store
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI") or root.resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(study)
        self.experiment = found.experiment_id if found else self.client.create_experiment(study)
        self.runs: dict[str, str] = {}

    def _run(self, job_key: str, name: str) -> str:
        if job_key not in self.runs:
            run = self.client.create_run(self.experiment, run_name=name,
                                         tags={"rambench.job_key": job_key})
            self.runs[job_key] = run.info.run_id
        return self.runs[job_key]

    @staticmethod
    def _name(text: str) -> str:  # MLflow keys: alphanumerics, _ - . space : /
        return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", text)

    def job(self, job, summary) -> None:
        from mlflow.entities import Metric, Param

        run = self._run(job.key, _run_name(job))
        params = [Param(self._name(k), str(v)[:500]) for k, v in _config(job).items()]
        metrics = [Metric(self._name(name), value, 0, epoch + 1)
                   for epoch, values in _curves(summary) for name, value in values.items()]
        metrics.append(Metric("best_val_accuracy", summary.best_val_accuracy, 0, 0))
        for start in range(0, max(len(metrics), 1), 1000):  # log_batch takes 1,000 at most
            self.client.log_batch(run, metrics=metrics[start:start + 1000],
                                  params=params if start == 0 else [])

    def cell(self, record) -> None:
        from mlflow.entities import Metric

        run = self._run(record.provenance["job_key"],
                        f"{record.method.label}-seed{record.seed}")
        self.client.log_batch(run, metrics=[
            Metric(self._name(f"test/{name}/{record.condition.label}"), value, 0, 0)
            for name, value in record.metrics.items()])

    def close(self) -> None:
        for run in self.runs.values():
            self.client.set_terminated(run)


class WandB:
    def __init__(self, root: Path, study: str):
        import wandb

        self.wandb, self.root, self.study, self.runs = wandb, root, study, {}

    def _run(self, job_key: str, name: str, config: dict | None = None):
        if job_key not in self.runs:
            self.root.mkdir(parents=True, exist_ok=True)
            self.runs[job_key] = self.wandb.init(
                project=self.study, name=name, config=config or {},
                dir=os.environ.get("WANDB_DIR") or str(self.root),
                mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new")
        return self.runs[job_key]

    def job(self, job, summary) -> None:
        run = self._run(job.key, _run_name(job), _config(job))
        for epoch, values in _curves(summary):
            run.log({("val/" if k.startswith("val_") else "train/") + k: v
                     for k, v in values.items()}, step=epoch + 1)
        run.summary["best_val_accuracy"] = summary.best_val_accuracy

    def cell(self, record) -> None:
        run = self._run(record.provenance["job_key"],
                        f"{record.method.label}-seed{record.seed}")
        for name, value in record.metrics.items():
            run.summary[f"test/{name}/{record.condition.label}"] = value

    def close(self) -> None:
        for run in self.runs.values():
            run.finish()


def open_trackers(names, study_root: Path, study: str) -> list[Tracker]:
    """The trackers named (each once), writing under `<study_root>/tracking`; a UsageError
    naming the extra to install when a library is missing."""
    out: list[Tracker] = []
    for name in dict.fromkeys(names):
        if name not in TRACKERS:
            from corruptions.registry import unknown_name_message

            raise UsageError(unknown_name_message("tracker", name, TRACKERS))
        try:
            if name == "tensorboard":
                out.append(TensorBoard(study_root / "tracking" / "tensorboard"))
            elif name == "mlflow":
                out.append(MLflow(study_root / "tracking" / "mlruns", study))
            else:
                out.append(WandB(study_root / "tracking" / "wandb", study))
        except ImportError as err:
            raise UsageError(f"--track {name} needs the {PACKAGES[name]} package ({err}); "
                             f"pip install \"rambench[track]\"") from None
    return out
