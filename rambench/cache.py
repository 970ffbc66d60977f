"""On-disk cache of corrupted test sets, shared by every method and study.

An entry is one corrupted modality of one test set, named by the cell's data key (which
hashes the dataset version, the condition, the seed and the corruption backend ids), so
an entry can only ever be reused for the identical data. Entries are plain `.npy` files,
loaded memory-mapped, each with a JSON sidecar holding its SHA-256; the sidecar is written
last, so an entry without one (an interrupted write) does not exist. A checksum mismatch
drops the entry, which is then rebuilt.

Entries are written behind the run: `put` hands the array to a writer thread and returns,
and until it is on disk `entry` gives it from memory. The arrays waiting hold memory of the
process's budget (`rambench.memory`); past it, `put` waits for the writer. `flush` waits
for every write. Its files are not synced to the disk (a cache is no record): after a crash,
a torn array fails its checksum and a torn sidecar does not parse, and the entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rambench._fs import atomic_write_bytes, sha256_file, user_cache_dir
from rambench.memory import MemoryBudget

ENV_VAR = "RAMBENCH_CACHE_DIR"
KEY_LENGTH = 20  # hex digits of every content key (`rambench.plan.content_key`), data keys too
log = logging.getLogger("rambench")


def default_cache_dir() -> Path:
    """$RAMBENCH_CACHE_DIR, else $XDG_CACHE_HOME/rambench, else ~/.cache/rambench."""
    return user_cache_dir(ENV_VAR)


@dataclass
class CacheInfo:
    root: Path
    entries: int
    bytes: int
    datasets: dict[str, int]  # dataset version -> entries


class CorruptionCache:
    """get/put corrupted arrays by (data key, modality); `root=None` disables caching.

    The cache only saves time: a location that cannot be written (not a folder, read-only,
    full) gives one warning and the run goes on uncached."""

    def __init__(self, root: str | Path | None, memory: MemoryBudget | None = None):
        self.root = Path(root) / "corrupted" if root is not None else None
        self.memory = memory or MemoryBudget()
        self.hits = 0
        self.misses = 0
        # (data key, modality) -> the array and description being written, and the write
        self._pending: dict[tuple[str, str], tuple[np.ndarray, dict[str, Any], Future]] = {}
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None

    def check(self) -> None:
        """Disable the cache, with a warning, if its folder cannot be written."""
        if self.root is None:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-check."):
                pass
        except OSError as err:
            self._disable(err)

    def _disable(self, err: OSError) -> None:
        log.warning("corrupted-data cache %s cannot be written (%s): continuing without it",
                    self.root, err.strerror or err)
        self.root = None

    def _paths(self, data_key: str, modality: str) -> tuple[Path, Path]:
        folder = self.root / data_key[:2] / data_key
        return folder / f"{modality}.npy", folder / f"{modality}.json"

    def get(self, data_key: str, modality: str) -> np.ndarray | None:
        found = self.entry(data_key, modality)
        return None if found is None else found[0]

    def entry(self, data_key: str, modality: str, needs: tuple[str, ...] = ()
              ) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The array and its description (what `put` was given); None, counted as a miss,
        where there is none or its description lacks a key of `needs` (an entry written
        before the cache kept it: rebuilt when put again)."""
        if self.root is None:
            return None
        with self._lock:
            pending = self._pending.get((data_key, modality))
        if pending is not None and all(key in pending[1] for key in needs):
            self.hits += 1
            return pending[0], pending[1]
        array_path, meta_path = self._paths(data_key, modality)
        try:
            meta = json.loads(meta_path.read_text())
            if not all(key in meta for key in needs):
                raise FileNotFoundError(meta_path)
            if sha256_file(array_path) != meta["sha256"]:
                raise ValueError("checksum mismatch")
            array = np.load(array_path, mmap_mode="r")
        except FileNotFoundError:
            self.misses += 1
            return None
        except (ValueError, KeyError, OSError):
            shutil.rmtree(array_path.parent, ignore_errors=True)  # corrupt: rebuild it
            self.misses += 1
            return None
        self.hits += 1
        return array, meta

    def put(self, data_key: str, modality: str, array: np.ndarray,
            description: dict[str, Any]) -> None:
        """Store `array` (not to be changed afterwards) and its description, written behind
        the run where the memory budget holds it, else here and now."""
        if self.root is None:
            return
        array = np.ascontiguousarray(array)
        if not self.memory.take(array.nbytes):
            self.flush()  # the writes waiting give their memory back
            if not self.memory.take(array.nbytes):
                self._write(data_key, modality, array, description)
                return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="rambench-cache")
        with self._lock:
            future = self._writer.submit(self._write_behind, data_key, modality, array,
                                         description)
            self._pending[(data_key, modality)] = (array, description, future)

    def flush(self) -> None:
        """Wait until every entry put is on disk (or given up: see `put`)."""
        with self._lock:
            futures = [future for _, _, future in self._pending.values()]
        for future in futures:
            future.result()

    def _write_behind(self, data_key: str, modality: str, array: np.ndarray,
                      description: dict[str, Any]) -> None:
        try:
            self._write(data_key, modality, array, description)
        finally:
            with self._lock:
                self._pending.pop((data_key, modality), None)
            self.memory.give(array.nbytes)

    def _write(self, data_key: str, modality: str, array: np.ndarray,
               description: dict[str, Any]) -> None:
        if self.root is None:  # disabled by an earlier write's error
            return
        array_path, meta_path = self._paths(data_key, modality)
        buffer = io.BytesIO()
        np.save(buffer, array)
        data = buffer.getbuffer()
        meta = {"sha256": hashlib.sha256(data).hexdigest(), "shape": list(array.shape),
                "dtype": str(array.dtype), **description}
        try:
            atomic_write_bytes(array_path, data, sync=False)
            atomic_write_bytes(meta_path, json.dumps(meta, indent=1, sort_keys=True,
                                                     default=str).encode(), sync=False)
        except OSError as err:  # e.g. the disk filled up: the entry is simply not cached
            shutil.rmtree(array_path.parent, ignore_errors=True)
            self._disable(err)

    def info(self) -> CacheInfo:
        self.flush()
        entries, size, datasets = 0, 0, {}
        if self.root is not None and self.root.exists():
            for meta_path in self.root.glob("*/*/*.json"):
                entries += 1
                size += meta_path.stat().st_size
                array_path = meta_path.with_suffix(".npy")
                if array_path.exists():
                    size += array_path.stat().st_size
                try:
                    version = json.loads(meta_path.read_text()).get("dataset_version", "?")
                except (OSError, ValueError):
                    version = "?"
                datasets[version] = datasets.get(version, 0) + 1
        return CacheInfo(self.root, entries, size, datasets)

    def clear(self) -> tuple[int, list[Path]]:
        """Delete every entry this cache wrote; returns the number of entries deleted and the
        files under the cache folder that it did not write, which are left alone. Its files
        are the `.npy` arrays, `.json` sidecars and `.tmp` partial writes in entry folders
        (`<key[:2]>/<key>/`, a data key of hex digits); a folder is removed once empty."""
        self.flush()
        deleted, foreign = 0, []
        if self.root is None or not self.root.is_dir():
            return deleted, foreign
        for path in sorted(self.root.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                continue
            if _written_here(self.root, path):
                deleted += path.suffix == ".json"
                path.unlink()
            else:
                foreign.append(path)
        for folder in sorted(self.root.rglob("*"), key=lambda p: -len(p.parts)):
            if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                folder.rmdir()
        if not any(self.root.iterdir()):
            self.root.rmdir()
        return deleted, foreign


def _written_here(root: Path, path: Path) -> bool:
    """Whether `path` is a file `CorruptionCache` writes: an array, sidecar or partial write
    in an entry folder `root/<key[:2]>/<key>/`."""
    rel = path.relative_to(root).parts
    if len(rel) != 3 or path.is_symlink() or not path.is_file():
        return False
    prefix, key, name = rel
    partial = name.startswith(".") and name.endswith(".tmp")
    return (len(key) == KEY_LENGTH and len(prefix) == 2 and key.startswith(prefix)
            and all(c in "0123456789abcdef" for c in key)
            and (name.endswith((".npy", ".json")) or partial))
