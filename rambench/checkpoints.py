"""Trained models: load a job's checkpoint, or train it and store one.

A checkpoint holds the best validation epoch's weights and the `TrainSummary` (with the
per-epoch history), under the job key, so it is reused only by the identical job.
"""

from __future__ import annotations

import io

import torch

from rambench.datasets import Dataset
from rambench.methods import Method
from rambench.store import Store, atomic_write_bytes
from rambench.train import TrainConfig, TrainSummary, build_method, train


def load_or_train(job, dataset: Dataset, store: Store, device: torch.device,
                  progress: bool = True, force: bool = False) -> tuple[Method, TrainSummary]:
    """The trained method of `job` (a `rambench.plan.Job`) on `device`, and how it trained."""
    cfg = TrainConfig(**job.train_config)
    method = build_method(job.method.cls, dataset, job.method.params, cfg, job.seed)
    path = store.checkpoint_path(job.key)
    if path.exists() and not force:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        method.load_state_dict(checkpoint["state_dict"])
        method.to(device)
        return method, TrainSummary(**checkpoint["training"])
    result = train(method, dataset, cfg, job.seed, device, progress)
    buffer = io.BytesIO()
    torch.save({"state_dict": result.state_dict, "job_key": job.key,
                "method": job.method.label, "training": result.summary.to_json()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return method, result.summary
