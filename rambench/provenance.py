"""Provenance recorded in every result: code version, packages, device."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

from rambench._version import __version__

PACKAGES = ("torch", "numpy", "scipy", "imagecorruptions", "audiomentations", "scikit-learn",
            "scikit-image")


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source tree rambench runs from, with '+dirty' for local edits."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty.strip() else "")


def code_version() -> str:
    commit = git_commit()
    return f"{__version__}+{commit[:12]}" if commit else __version__


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def device_description(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    # CPU results are exact for a given thread count, so it is part of the device.
    return f"cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads"


def numerics(device) -> str:
    """What a result's last digits depend on besides code, settings and seed: the library
    versions, the processor and its instruction set and the torch thread count on a CPU;
    the GPU, CUDA and cuDNN on a GPU. Records of one numerics environment are bit-identical
    for the same key; another environment may move them (`rambench.results` warns)."""
    import numpy as np
    import torch

    if device.type == "cuda":
        return (f"torch {torch.__version__}; cuda {torch.version.cuda}; cudnn "
                f"{torch.backends.cudnn.version()}; {torch.cuda.get_device_name(device)}; "
                "bfloat16 autocast")
    threads = torch.get_num_threads()
    return (f"torch {torch.__version__}; numpy {np.__version__}; {platform.machine()} "
            f"{torch.backends.cpu.get_cpu_capability()}; {threads} "
            f"thread{'s' if threads > 1 else ''}; float32")  # `rambench.device.autocast`
