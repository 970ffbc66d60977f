"""Trained models: load a job's checkpoint, or train it and store one.

A checkpoint holds the best validation epoch's weights and the `TrainSummary` (with the
per-epoch history), under the job key, so it is reused only by the identical job. Its
SHA-256 goes to a sidecar file written after it: a checkpoint without a sidecar (an
interrupted write) or whose bytes do not match (a damaged file) is reported by path, moved
aside and retrained, never used and never fatal.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
import traceback
from pathlib import Path
from typing import NamedTuple

import torch

from rambench._fs import atomic_write_bytes, sha256_file
from rambench.datasets import Dataset
from rambench.errors import TrainingError, error_location
from rambench.methods import Method
from rambench.store import Store
from rambench.train import TrainConfig, TrainSummary, build_method, train

log = logging.getLogger("rambench")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_checkpoint(path: Path, payload: dict) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_bytes(_sidecar(path), json.dumps(
        {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}).encode())


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint at `path`, or None if there is none or it is damaged (then it is moved
    aside to `<name>.damaged-<time>` with a warning naming it)."""
    if not path.exists():
        return None
    try:
        sidecar = _sidecar(path)
        if not sidecar.exists():
            raise ValueError("no checksum file (an interrupted write?)")
        if json.loads(sidecar.read_text())["sha256"] != sha256_file(path):
            raise ValueError("checksum mismatch (truncated or modified)")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is retrained
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        path.replace(aside)
        _sidecar(path).unlink(missing_ok=True)
        log.warning("damaged checkpoint %s (%s): moved to %s; retraining", path, err,
                    aside.name)
        return None


class Trained(NamedTuple):
    method: Method  # on the requested device, with the best epoch's weights
    summary: TrainSummary
    trained: bool  # trained now (False: loaded from its checkpoint)


def load_or_train(job, dataset: Dataset, store: Store, device: torch.device,
                  progress: bool = True, force: bool = False, on_epoch=None) -> Trained:
    """The trained method of `job` (a `rambench.plan.Job`) on `device`, how it trained and
    whether it was trained now. Raises TrainingError (naming the method and seed) if
    training fails.

    A file lock per job (`<study>/locks/<job key>.lock`) makes one process train a job
    while any other that needs it (a second `rambench run`, a worker, a SLURM task) waits
    and then loads its checkpoint. The lock is the operating system's: a process that dies
    releases it."""
    from filelock import FileLock, Timeout

    lock = FileLock(store.lock_path(job.key))
    try:
        lock.acquire(timeout=1)
    except Timeout:
        log.warning("waiting for another process that is training %s (seed %d)",
                    job.method.label, job.seed)
        lock.acquire()
    try:
        return _load_or_train(job, dataset, store, device, progress, force, on_epoch)
    finally:
        lock.release()


def _load_or_train(job, dataset: Dataset, store: Store, device: torch.device,
                   progress: bool, force: bool, on_epoch) -> Trained:
    cfg = TrainConfig(**job.train_config)
    method = build_method(job.method.cls, dataset, job.method.params, cfg, job.seed)
    path = store.checkpoint_path(job.key)
    checkpoint = None if force else load_checkpoint(path)
    if checkpoint is not None:
        method.load_state_dict(checkpoint["state_dict"])
        method.to(device)
        return Trained(method, TrainSummary(**checkpoint["training"]), False)
    try:
        result = train(method, dataset, cfg, job.seed, device, progress, on_epoch)
    except TrainingError as err:
        raise TrainingError(f"training {job.method.label} (seed {job.seed}) failed: {err}; "
                            "nothing was stored for it") from None
    except Exception as err:  # noqa: BLE001 - an error in the method's own code
        first = (str(err).strip().splitlines() or [""])[0]
        raise TrainingError(f"method {job.method.label} (seed {job.seed}) failed during "
                            f"training: {type(err).__name__}: {first}"
                            f"{error_location(err)}; nothing was stored for it",
                            "".join(traceback.format_exception(err))) from err
    save_checkpoint(path, {"state_dict": result.state_dict, "job_key": job.key,
                           "method": job.method.label, "training": result.summary.to_json()})
    if result.summary.status == "at_chance":
        log.warning("%s (seed %d) trained to chance: best validation accuracy %.1f%% "
                    "(always predicting the commonest class: %.1f%%); its results are "
                    "flagged", job.method.label, job.seed,
                    100 * result.summary.best_val_accuracy,
                    100 * result.summary.chance_accuracy)
    return Trained(method, result.summary, True)
