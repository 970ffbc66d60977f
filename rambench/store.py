"""The results store: one JSON record per cell under <out>/<study>/records/<key>.json.

Records are written atomically (temp file, fsync, rename) and carry a checksum of their
content, so a half-written or edited record is detected, reported and recomputed rather
than silently read. Records of every schema version are read (`Record.from_json`
migrates them).

Several records can fill the same table position (`Record.coordinates`: dataset, method
label, seed, condition), e.g. after a method's code changed and it was re-run. The most
recently written one is *current*; the others are *stale*: kept on disk, listed by
`rambench ls studies`, never mixed into tables or exports.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rambench._fs import atomic_write_bytes
from rambench.errors import UsageError
from rambench.schema import Record


def record_checksum(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StoreIndex:
    by_key: dict[str, Record] = field(default_factory=dict)
    current: dict[tuple, Record] = field(default_factory=dict)  # coordinates -> newest
    stale: list[Record] = field(default_factory=list)


STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
STUDY_RULE = ("a study name is one folder name of 1-100 letters, digits, '_', '-' and '.', "
              "not starting with '.' or '-'")


def check_study_name(study: str) -> str:
    if not STUDY_NAME.fullmatch(study):
        raise UsageError(f"--study {study[:120]!r}: {STUDY_RULE}")
    return study


def check_writable(folder: Path, what: str, option: str) -> None:
    """Fail before any work if `folder` cannot be created and written (or the disk is
    nearly full), naming the folder and the option that chose it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check."):
            pass
    except OSError as err:
        raise UsageError(f"cannot write {what} to {folder} ({err.strerror or err}); choose "
                         f"another folder with {option}") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise UsageError(f"only {free / 2**20:.0f} MiB free under {folder}; rambench needs "
                         f"at least {MIN_FREE_BYTES / 2**20:.0f} MiB for {what} (choose "
                         f"another folder with {option})")


MIN_FREE_BYTES = 64 * 2**20


class Store:
    def __init__(self, out: Path | str, study: str):
        check_study_name(study)
        self.root = Path(out) / study
        self.study = study
        self.records_dir = self.root / "records"
        self.checkpoints_dir = self.root / "checkpoints"
        self.invalid: list[tuple[Path, str]] = []  # records found unreadable, with why

    def record_path(self, key: str) -> Path:
        return self.records_dir / f"{key}.json"

    def checkpoint_path(self, job_key: str) -> Path:
        return self.checkpoints_dir / f"{job_key}.pt"

    @property
    def settings(self) -> dict[str, Any]:
        """The study's reference and compared methods: `reference:` and `against:` of its
        study.yaml (`rambench.study`; a study of an earlier rambench: its settings.json)."""
        path, legacy = self.root / "study.yaml", self.root / "settings.json"
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        else:
            data = json.loads(legacy.read_text()) if legacy.is_file() else {}
        return {k: data[k] for k in ("reference", "against") if data.get(k)}

    def lock_path(self, job_key: str) -> Path:
        """The file lock of a job's training (`rambench.checkpoints.load_or_train`)."""
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{job_key}.lock"

    def write(self, record: Record) -> Path:
        data = record.to_json()
        data["checksum"] = record_checksum(data)
        path = self.record_path(record.key)
        atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())
        return path

    def read(self, path: Path) -> Record | None:
        """The record at `path`, or None (and a note in `invalid`) if it is not sound."""
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("checksum") != record_checksum(data):
                raise ValueError("checksum mismatch (half-written or edited)")
            if data.get("key") != path.stem:
                raise ValueError("key does not match the file name")
            return Record.from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as err:
            note = (path, str(err))
            if note not in self.invalid:
                self.invalid.append(note)
            return None

    def has(self, key: str) -> bool:
        path = self.record_path(key)
        return path.exists() and self.read(path) is not None

    def make_current(self, record: Record) -> None:
        """Make a stored record its cell's current result again (after a run whose code
        and settings produced it, e.g. when a change was reverted)."""
        import dataclasses
        import datetime

        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        self.write(dataclasses.replace(record, provenance={**record.provenance,
                                                           "current_since": now}))

    def rekey(self, record: Record, key: str, method_code: str,
              provenance: dict[str, Any], old_job_key: str, job_key: str) -> None:
        """Store `record` under `key` (the same result, keyed by a later identity scheme):
        the new record first, then its checkpoint renamed, then the old file removed, so
        an interruption at any point loses nothing."""
        import dataclasses
        import datetime

        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        method = dataclasses.replace(record.method, code=method_code)
        self.write(dataclasses.replace(record, key=key, method=method, provenance={
            **record.provenance, **provenance, "current_since": now,
            "rekeyed_from": record.key}))
        new = self.checkpoint_path(job_key)
        if self.checkpoint_path(old_job_key).exists() and not new.exists():
            for suffix in (".sha256", ""):  # the checksum first: a checkpoint never lacks one
                old = self.checkpoint_path(old_job_key).with_name(f"{old_job_key}.pt{suffix}")
                if old.exists():
                    os.replace(old, new.with_name(f"{job_key}.pt{suffix}"))
        self.record_path(record.key).unlink(missing_ok=True)

    def all_records(self) -> list[Record]:
        """Every sound record, current and stale."""
        if not self.records_dir.is_dir():
            return []
        found = (self.read(p) for p in sorted(self.records_dir.glob("*.json")))
        return [r for r in found if r is not None]

    def index(self) -> StoreIndex:
        index = StoreIndex()
        for record in sorted(self.all_records(), key=lambda r: (r.current_since, r.key)):
            index.by_key[record.key] = record
            previous = index.current.get(record.coordinates)
            if previous is not None:
                index.stale.append(previous)
            index.current[record.coordinates] = record
        return index

    def records(self) -> list[Record]:
        """The current records (see the module docstring), in key order."""
        return sorted(self.index().current.values(), key=lambda r: r.key)
