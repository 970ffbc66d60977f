"""The results store: one JSON record per cell under <out>/<study>/records/<key>.json.

Records are written atomically (temp file, fsync, rename) and carry a checksum of their
content, so a half-written or edited record is detected, reported and recomputed rather
than silently read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1
EXPORT_COLUMNS = [
    "study", "dataset", "method", "family", "seed", "train_condition", "test_modality",
    "corruption", "severity", "missing_pattern", "missing_rate", "metric", "value", "n",
    "higher_is_better", "corruption_backend", "key", "code_version",
]
HIGHER_IS_BETTER = {"accuracy": True, "missing_fraction": False}


def pack_bits(correct: np.ndarray) -> str:
    return base64.b64encode(np.packbits(correct.astype(bool)).tobytes()).decode()


def unpack_bits(text: str, n: int) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    return np.unpackbits(raw, count=n).astype(bool)


def _checksum(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def user_cache_dir(env_var: str, *parts: str) -> Path:
    """$env_var if set, else $XDG_CACHE_HOME/rambench/parts (~/.cache/rambench/parts)."""
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base, "rambench", *parts)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    def __init__(self, out: Path | str, study: str):
        self.root = Path(out) / study
        self.study = study
        self.records_dir = self.root / "records"
        self.checkpoints_dir = self.root / "checkpoints"
        self.invalid: list[tuple[Path, str]] = []  # records found unreadable, with why

    def record_path(self, key: str) -> Path:
        return self.records_dir / f"{key}.json"

    def checkpoint_path(self, job_key: str) -> Path:
        return self.checkpoints_dir / f"{job_key}.pt"

    def write(self, record: dict[str, Any]) -> Path:
        record = dict(record, schema=SCHEMA_VERSION)
        record["checksum"] = _checksum(record)
        path = self.record_path(record["key"])
        atomic_write_bytes(path, json.dumps(record, indent=1, sort_keys=True).encode())
        return path

    def read(self, path: Path) -> dict[str, Any] | None:
        """The record at `path`, or None (and a note in `invalid`) if it is not sound."""
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or record.get("checksum") != _checksum(record):
                raise ValueError("checksum mismatch (half-written or edited)")
            if record.get("key") != path.stem:
                raise ValueError("key does not match the file name")
        except (OSError, ValueError) as err:
            self.invalid.append((path, str(err)))
            return None
        return record

    def has(self, key: str) -> bool:
        path = self.record_path(key)
        return path.exists() and self.read(path) is not None

    def records(self) -> list[dict[str, Any]]:
        if not self.records_dir.is_dir():
            return []
        found = (self.read(p) for p in sorted(self.records_dir.glob("*.json")))
        return [r for r in found if r is not None]

    def tidy(self) -> pd.DataFrame:
        """One row per (cell, metric) with the public EXPORT_COLUMNS, in a stable order."""
        rows = []
        for r in self.records():
            for metric, value in r["metrics"].items():
                rows.append({
                    "study": self.study, "dataset": r["dataset"], "method": r["method"],
                    "family": r["family"], "seed": r["seed"],
                    "train_condition": r["train_condition"],
                    "test_modality": r["test_modality"], "corruption": r["corruption"],
                    "severity": r["severity"], "missing_pattern": r["missing_pattern"],
                    "missing_rate": r["missing_rate"], "metric": metric, "value": value,
                    "n": r["n"], "higher_is_better": HIGHER_IS_BETTER.get(metric, True),
                    # records from before the torch backend existed used the reference
                    "corruption_backend": r.get("corruption_backend", "reference"),
                    "key": r["key"], "code_version": r["provenance"]["code_version"],
                })
        frame = pd.DataFrame(rows, columns=EXPORT_COLUMNS)
        order = ["dataset", "method", "seed", "test_modality", "corruption", "severity",
                 "missing_pattern", "missing_rate", "metric"]
        return frame.sort_values(order, kind="stable").reset_index(drop=True)
