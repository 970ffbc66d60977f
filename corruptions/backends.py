"""Corruption backends: "reference" (the per-sample library code, on the CPU) and "torch"
(batched implementations on any device, `corruptions.torch_image` / `torch_audio`).

`corrupt_batch` is the one entry point the harness uses; `backend_id` is the string
recorded in results and hashed into cell keys, so results of different backends (or of
the torch backend on different device types, whose random streams differ) never mix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from corruptions import allocator, registry
from corruptions.scales import DEFAULT_SCALE, resolve_scale

BACKENDS = ("torch", "reference")
DEFAULT_BACKEND = "torch"
# Bump when a torch implementation changes its output for the same seed.
TORCH_BACKEND_VERSION = 3
# Values processed per chunk: bounds the memory of one batched call (~128 MB of float32).
CHUNK_ELEMENTS = 1 << 25


def frame_seed(sample_seed: int, frame: int) -> int:
    """Frame t of a clip is corrupted with its own seed, derived from the clip's."""
    return int(np.random.SeedSequence([sample_seed, frame]).generate_state(1)[0])


def _frames(array: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    """Clips (N, T, H, W, C) as N * T images, each frame with its `frame_seed`."""
    frames = array.shape[1]
    return (array.reshape(-1, *array.shape[2:]),
            [frame_seed(int(s), t) for s in seeds for t in range(frames)])


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(registry.unknown_name_message("corruption backend", backend, BACKENDS))
    return backend


def backend_id(name: str, kind: str, backend: str, device: torch.device | str = "cpu") -> str:
    """What produced a corruption's data, e.g. 'imagecorruptions==1.1.2' or
    'rambench-torch/2 (torch 2.13.0+cpu, cpu) ~ imagecorruptions==1.1.2'."""
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

    image: uint8 (N, H, W, C), C in {1, 3}, or clips (N, T, H, W, C) whose frames are each
    corrupted with a seed derived from the clip's (`frame_seed`), with the constants of
    severity `scale` (`corruptions.scales`; `auto`: from the image size); audio: float32
    (N, T) with `sample_rate`. A sample's output depends only on (sample, name, severity,
    its seed, backend, scale)."""
    if severity not in registry.SEVERITIES:
        raise ValueError(f"severity must be one of {registry.SEVERITIES}, got {severity!r}")
    if len(seeds) != len(array):
        raise ValueError(f"{len(seeds)} seeds for {len(array)} samples")
    if kind == "image" and array.ndim == 5:  # clips: every frame is an image of its own
        images, frame_seeds = _frames(array, seeds)
        flat = corrupt_batch(images, name, kind, severity, frame_seeds, backend, device,
                             sample_rate, scale)
        return flat.reshape(array.shape)
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
    device = torch.device(device)
    on_arrays = corruption.torch.array_function(device.type)
    if on_arrays is not None:  # the numpy batch as it is: no float round trip
        return on_arrays(array, severity, seeds, **context)
    fn = torch_function(name, kind)
    if device.type == "cpu":
        allocator.keep_freed_memory()  # large temporaries without page faults (see there)
    per_sample = max(1, int(np.prod(array.shape[1:])) * (3 if kind == "image" else 1))
    size = max(1, CHUNK_ELEMENTS // per_sample)
    workers = torch.get_num_threads() if device.type == "cpu" else 1
    if workers > 1:  # CPU: one chunk per thread, each on one intra-op thread (see below)
        size = min(size, -(-len(array) // workers))
    chunks = [(array[i:i + size], list(seeds[i:i + size])) for i in range(0, len(array), size)]

    def run(chunk: tuple[np.ndarray, list[int]]) -> np.ndarray:
        part, part_seeds = chunk
        with torch.no_grad():
            if kind == "image":
                return _images(fn, part, severity, part_seeds, device, scale)
            x = torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32)).to(device)
            return fn(x, severity, part_seeds, sample_rate).cpu().numpy()

    if workers > 1 and len(chunks) > 1:
        # Coarse-grained threads (torch releases the GIL) rather than torch's fine-grained
        # intra-op threads: these keep their speed when other processes load the cores, the
        # intra-op threads (which wait for each other at every operation) do not. A
        # sample's output does not depend on its chunk.
        with single_threaded_torch(), ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(run, chunks))
    else:
        parts = [run(chunk) for chunk in chunks]
    return np.concatenate(parts) if parts else array.copy()


def drawn_parameters(array: np.ndarray, name: str, kind: str, severity: int,
                     seeds: Sequence[int], backend: str = DEFAULT_BACKEND,
                     device: torch.device | str = "cpu", scale: str = DEFAULT_SCALE
                     ) -> dict[str, list]:
    """The random parameters `corrupt_batch` draws for each sample (each frame of a clip, in
    order) of `array` with these arguments, e.g. {"angle": [...]} for motion_blur: what a
    record keeps. Drawn again from the seeds (cheap), so they are the same whether the
    corrupted data came from the cache or not. Empty for the reference backend and for
    corruptions whose draws are not split from their application."""
    port = registry.get(name, kind).torch
    draw = port.load_draw() if port is not None and check_backend(backend) == "torch" else None
    if draw is None or kind != "image":
        return {}
    if array.ndim == 5:
        array, seeds = _frames(array, seeds)
    n, height, width = array.shape[:3]
    drawn = draw(severity, [int(s) for s in seeds], (n, 3, height, width),
                 resolve_scale(scale, height, width), torch.device(device))
    return {key: [round(float(v), 4) if v.is_floating_point() else int(v) for v in value]
            for key, value in drawn.items()}


@contextlib.contextmanager
def single_threaded_torch():
    """torch on one intra-op thread for the duration; the former count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_images(images: np.ndarray) -> None:
    """A batch of images as every corruption takes it, or a ValueError saying why not."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, C) with C in {{1, 3}}, got "
                         f"{images.dtype} {images.shape}")
    if min(images.shape[1:3]) < 32:
        raise ValueError(f"image height and width must be at least 32, got {images.shape[1:3]}")


def _images(fn, images: np.ndarray, severity: int, seeds: list[int],
            device: torch.device, scale: str) -> np.ndarray:
    """uint8 (B, H, W, C) -> the torch function on (B, 3, H, W) in [0, 1] -> uint8, as
    the reference: one-channel images are replicated to RGB, corrupted, and the rounded
    mean of the three channels is kept; outputs are truncated to uint8 like `np.uint8`."""
    check_images(images)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)
    gray = x.shape[1] == 1
    x = x.expand(-1, 3, -1, -1) if gray else x
    # a contiguous (B, 3, H, W) float batch (elementwise operations with per-channel or
    # per-sample operands run far slower on the channels-last view): the uint8 values
    # reordered first, then converted (twice as fast as converting while reordering)
    x = x.contiguous().float().div_(255)
    # truncated to uint8 as `np.uint8` does; through int32, which torch converts to several
    # times faster than straight to uint8 on the CPU
    out = fn(x, severity, seeds, scale).clamp_(0, 255).to(torch.int32).to(torch.uint8)
    if gray:
        out = out.float().mean(1, keepdim=True).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()
