"""Corruption backends: "reference" (the per-sample library code, on the CPU) and "torch"
(batched implementations on any device, `corruptions.torch_image` / `torch_audio`).

`corrupt_batch` is the one entry point the harness uses; `backend_id` is the string
recorded in results and hashed into cell keys, so results of different backends (or of
the torch backend on different device types, whose random streams differ) never mix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from corruptions import registry
from corruptions.scales import DEFAULT_SCALE, resolve_scale

BACKENDS = ("torch", "reference")
DEFAULT_BACKEND = "torch"
# Bump when a torch implementation changes its output for the same seed.
TORCH_BACKEND_VERSION = 1
# Values processed per chunk: bounds the memory of one batched call (~128 MB of float32).
CHUNK_ELEMENTS = 1 << 25


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(registry.unknown_name_message("corruption backend", backend, BACKENDS))
    return backend


def backend_id(name: str, kind: str, backend: str, device: torch.device | str = "cpu") -> str:
    """What produced a corruption's data, e.g. 'imagecorruptions==1.1.2' or
    'rambench-torch/1 (torch 2.13.0+cpu, cpu) ~ imagecorruptions==1.1.2'."""
    reference = registry.get(name, kind).backend
    if check_backend(backend) == "reference":
        return reference
    device_type = torch.device(device).type
    return (f"rambench-torch/{TORCH_BACKEND_VERSION} (torch {torch.__version__}, "
            f"{device_type}) ~ {reference}")


def torch_function(name: str, kind: str):
    """The batched torch function of a corruption (its spec's `torch`)."""
    return registry.get(name, kind).torch.load()


def corrupt_batch(
    array: np.ndarray, name: str, kind: str, severity: int, seeds: Sequence[int],
    backend: str = DEFAULT_BACKEND, device: torch.device | str = "cpu",
    sample_rate: int | None = None, scale: str = DEFAULT_SCALE,
) -> np.ndarray:
    """Corrupt every sample of `array` with its own seed; same shape and dtype out.

    image: uint8 (N, H, W, C), C in {1, 3}, corrupted with the constants of severity `scale`
    (`corruptions.scales`; `auto`: from the image size); audio: float32 (N, T) with
    `sample_rate`. A sample's output depends only on (sample, name, severity, its seed,
    backend, scale)."""
    if severity not in registry.SEVERITIES:
        raise ValueError(f"severity must be one of {registry.SEVERITIES}, got {severity!r}")
    if len(seeds) != len(array):
        raise ValueError(f"{len(seeds)} seeds for {len(array)} samples")
    corruption = registry.get(name, kind)
    if kind == "image":
        scale = resolve_scale(scale, *array.shape[1:3]) if array.ndim == 4 else scale
        context = {"scale": scale}
    else:
        context = {"sample_rate": sample_rate}
    if check_backend(backend) == "reference":
        out = array.copy()
        for i, seed in enumerate(seeds):
            out[i] = corruption(array[i], severity, int(seed), **context)
        return out
    fn = torch_function(name, kind)
    device = torch.device(device)
    per_sample = max(1, int(np.prod(array.shape[1:])) * (3 if kind == "image" else 1))
    chunk = max(1, CHUNK_ELEMENTS // per_sample)
    parts = []
    with torch.no_grad():
        for start in range(0, len(array), chunk):
            part, part_seeds = array[start:start + chunk], list(seeds[start:start + chunk])
            if kind == "image":
                parts.append(_images(fn, part, severity, part_seeds, device, scale))
            else:
                x = torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32)).to(device)
                parts.append(fn(x, severity, part_seeds, sample_rate).cpu().numpy())
    return np.concatenate(parts) if parts else array.copy()


def _images(fn, images: np.ndarray, severity: int, seeds: list[int],
            device: torch.device, scale: str) -> np.ndarray:
    """uint8 (B, H, W, C) -> the torch function on (B, 3, H, W) in [0, 1] -> uint8, as
    the reference: one-channel images are replicated to RGB, corrupted, and the rounded
    mean of the three channels is kept; outputs are truncated to uint8 like `np.uint8`."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, C) with C in {{1, 3}}, got "
                         f"{images.dtype} {images.shape}")
    if min(images.shape[1:3]) < 32:
        raise ValueError(f"image height and width must be at least 32, got {images.shape[1:3]}")
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)
    gray = x.shape[1] == 1
    x = x.expand(-1, 3, -1, -1) if gray else x
    out = fn(x.float() / 255, severity, seeds, scale).clamp(0, 255).to(torch.uint8)
    if gray:
        out = out.float().mean(1, keepdim=True).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()
