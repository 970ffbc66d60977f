"""Files written so that a reader sees the old file or the whole new one, checksums, the
user's cache folder and the environment's on/off switches: the bottom of rambench,
importing nothing of it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def switched_off(env_var: str) -> bool:
    """Whether the environment variable `env_var` is 0, false, no or off (unset: on)."""
    return os.environ.get(env_var, "1").strip().lower() in ("0", "false", "no", "off")


def user_cache_dir(env_var: str, *parts: str) -> Path:
    """$env_var if set, else $XDG_CACHE_HOME/rambench/parts (~/.cache/rambench/parts)."""
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base, "rambench", *parts)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: a group-shared folder stays shared


def atomic_write_bytes(path: Path, data: bytes | memoryview, sync: bool = True) -> None:
    """Write `path` so that a reader sees the old file or the whole new one, never a part
    (temp file, fsync unless `sync` is False, rename), with the permissions of the user's
    umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
