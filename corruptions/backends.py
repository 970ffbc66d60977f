"""The one entry point to every corruption, `corrupt`, on either backend: "reference" (the
specs' own draw and apply, sample by sample on the CPU) and "torch" (batched
implementations on any device: `corruptions.torch_image`, `torch_audio`, `torch_av`).

`corrupt(batch, spec_or_name, severity, seeds, backend, device, ...) -> (batch, drawn)`
draws every sample's random parameters from its seed and applies them (the protocol of
`corruptions.spec`); `drawn` is what was applied, one JSON value per sample under each
name, and `corrupt(batch, spec, severity, drawn=drawn)` applies it again, bit for bit.
`backend_id` is the string recorded in results and hashed into cell keys, so results of
different backends (or of the torch backend on different device types, whose random
streams differ) never mix.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from corruptions import allocator, registry
from corruptions.scales import DEFAULT_SCALE
from corruptions.spec import (
    Draws,
    Spec,
    check_images,
    check_severity,
    drawn_seeds,
    unknown_name_message,
)

BACKENDS = ("torch", "reference")
DEFAULT_BACKEND = "torch"
# Values processed per chunk: bounds the memory of one batched call (~128 MB of float32).
CHUNK_ELEMENTS = 1 << 25

Drawn = dict[str, list]  # name -> one JSON value per sample


def frame_seed(sample_seed: int, frame: int) -> int:
    """Frame t of a clip is corrupted with its own seed, derived from the clip's."""
    return int(np.random.SeedSequence([sample_seed, frame]).generate_state(1)[0])


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(unknown_name_message("corruption backend", backend, BACKENDS))
    return backend


def backend_id(name: str, kind: str, backend: str, device: torch.device | str = "cpu") -> str:
    """What produces a corruption's data, e.g. 'imagecorruptions==1.1.2', 'rambench-av/1' or
    'rambench-torch/3 (torch 2.13.0+cpu, cpu) ~ imagecorruptions==1.1.2'."""
    check_backend(backend)
    spec = registry.get(name, kind)
    if backend == "reference":
        return spec.backend
    return (f"{spec.torch.backend} (torch {torch.__version__}, {torch.device(device).type}) "
            f"~ {spec.backend}")


def corrupt(
    batch: Any, spec: Spec | str, severity: int, seeds: Sequence[int] | None = None,
    backend: str = DEFAULT_BACKEND, device: torch.device | str = "cpu", *,
    kind: str | None = None, drawn: Mapping[str, list] | None = None,
    sample_rate: int | None = None, scale: str = DEFAULT_SCALE,
    pool: Sequence[np.ndarray] | None = None, pool_labels: Sequence[Any] | None = None,
    noise_dir: str | Path | None = None,
) -> tuple[Any, Drawn]:
    """Corrupt every sample of `batch` with `spec` (a spec, or the name of one of `kind`) at
    `severity`: each sample's parameters drawn from its seed (`seeds`), or applied as
    recorded (`drawn`, what an earlier call returned). Returns the corrupted batch (same
    shapes and dtypes) and the drawn parameters, one JSON value per sample under each name
    ({} for a deterministic corruption).

    image: uint8 (N, H, W, C), C in {1, 3}, or clips (N, T, H, W, C) whose frames are each
    corrupted with a seed derived from the clip's (`frame_seed`; drawn: one list per clip,
    of its frames' values), with the constants of severity `scale`
    (`corruptions.scales`; `auto`: from the image size); audio: float32 (N, T) with
    `sample_rate`; av (an audio-visual event, `corruptions.av_events`): (images, audio),
    images uint8 stills or clips (H, W >= 8), audio float32 (N, L) at `sample_rate`, either
    None, with `pool` (the clips the crowd babble is drawn from; with `pool_labels`, never
    from a clip of the sample's own class) and `noise_dir` (real noise recordings). A
    sample's output depends only on (sample, spec, severity, its seed or drawn parameters,
    backend, context), not on the batch."""
    if isinstance(spec, str):
        spec = registry.get(spec, kind)
    check_severity(severity)
    check_backend(backend)
    if (seeds is None) == (drawn is None):
        raise ValueError("corrupt takes seeds (to draw) or drawn (to apply what was drawn), "
                         "one of the two")
    if spec.kind == "image" and np.ndim(batch) == 5:  # clips: every frame an image of its own
        return _clips(batch, spec, severity, seeds, backend, device, drawn, scale)
    n, context = spec.prepare(batch, sample_rate=sample_rate, scale=scale, pool=pool,
                              pool_labels=pool_labels, noise_dir=noise_dir)
    if seeds is not None:
        seeds = [operator.index(s) for s in seeds]
        if len(seeds) != n:
            raise ValueError(f"{len(seeds)} seeds for {n} samples")
    elif any(len(v) != n for v in drawn.values()):
        raise ValueError(f"drawn parameters of {sorted({len(v) for v in drawn.values()})} "
                         f"samples for {n} samples")
    if n == 0:
        return _copy(batch), {}
    if backend == "reference":  # one sample at a time
        draw, apply = spec.draw, spec.apply
        chunks = [range(i, i + 1) for i in range(n)]
        parts = [_run(draw, apply, batch, severity, seeds, drawn, context, rows)
                 for rows in chunks]
    else:
        parts = _torch(spec, batch, severity, seeds, drawn, context, torch.device(device), n)
    out = _concatenate([p[0] for p in parts])
    params = dict(drawn) if drawn is not None else {
        k: [v for p in parts for v in p[1][k]] for k in parts[0][1]}
    return out, params


def _run(draw: Callable, apply: Callable, batch: Any, severity: int,
         seeds: list[int] | None, drawn: Mapping[str, list] | None, context: dict,
         rows: range) -> tuple[Any, Mapping[str, list]]:
    """The rows' draws (or their recorded ones) applied: (output, params)."""
    part = _rows(batch, rows.start, rows.stop)
    draws = (Draws(drawn).rows(rows.start, rows.stop) if drawn is not None
             else draw(part, severity, seeds[rows.start:rows.stop], context))
    return apply(part, severity, draws, context), draws.params


def _clips(clips: np.ndarray, spec: Spec, severity: int, seeds: Sequence[int] | None,
           backend: str, device: torch.device | str, drawn: Mapping[str, list] | None,
           scale: str) -> tuple[np.ndarray, Drawn]:
    """Clips (N, T, H, W, C) as N * T images, each frame with its `frame_seed`; the drawn
    parameters grouped by clip."""
    n, frames = clips.shape[:2]
    if seeds is not None and len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} samples")
    frame_seeds = None if seeds is None else [frame_seed(int(s), t) for s in seeds
                                              for t in range(frames)]
    frame_drawn = None if drawn is None else {k: [v for clip in values for v in clip]
                                              for k, values in drawn.items()}
    out, params = corrupt(clips.reshape(-1, *clips.shape[2:]), spec, severity, frame_seeds,
                          backend, device, drawn=frame_drawn, scale=scale)
    return out.reshape(clips.shape), {k: [v[i * frames:(i + 1) * frames] for i in range(n)]
                                      for k, v in params.items()}


def _torch(spec: Spec, batch: Any, severity: int, seeds: list[int] | None,
           drawn: Mapping[str, list] | None, context: dict, device: torch.device, n: int
           ) -> list[tuple[Any, Mapping[str, list]]]:
    """The torch backend: the numpy batch as it is where an image or audio spec says so
    (see `TorchImpl.array_function`), else in chunks of at most `CHUNK_ELEMENTS` values (on
    the CPU one chunk per torch thread, run in threads each on one intra-op thread)."""
    port = spec.torch
    on_arrays = port.array_function(device.type) if spec.kind != "av" else None
    if on_arrays is not None:  # the numpy batch as it is: no float round trip
        fn = registry.load(port.module, on_arrays)

        def apply_arrays(array, severity, draws, context):
            return fn(array, severity, drawn_seeds(draws, len(array)), **context)

        return [_run(spec.draw, apply_arrays, batch, severity, seeds, drawn, context,
                     range(n))]
    if device.type == "cpu":
        allocator.keep_freed_memory()  # large temporaries without page faults (see there)
    draw, apply, per_sample = _TORCH[spec.kind](spec, device)

    def run(rows: range) -> tuple[Any, Mapping[str, list]]:
        with torch.no_grad():
            return _run(draw, apply, batch, severity, seeds, drawn, context, rows)

    return map_chunks(run, n, per_sample(batch), device)


def _torch_images(spec: Spec, device: torch.device):
    port = spec.torch
    fn = registry.load(port.module, port.function)
    split = registry.load(port.module, port.draw) if port.draw else None

    def draw(images, severity, seeds, context):
        if split is None:
            return spec.draw(images, severity, seeds, context)
        check_images(images)
        n, h, w = images.shape[:3]
        drawn = split(severity, seeds, (n, 3, h, w), context["scale"], device)
        return Draws({k: v.tolist() for k, v in drawn.items()})

    def apply(images, severity, draws, context):
        tensors = None if split is None else {
            k: torch.tensor(v, dtype=torch.float64 if any(isinstance(x, float) for x in v)
                            else torch.int64, device=device) for k, v in draws.params.items()}
        return _images(fn, images, severity, drawn_seeds(draws, len(images)), device,
                       context["scale"], tensors)

    return draw, apply, lambda images: max(1, int(np.prod(images.shape[1:])) * 3)


def _torch_audio(spec: Spec, device: torch.device):
    fn = registry.load(spec.torch.module, spec.torch.function)

    def apply(clips, severity, draws, context):
        x = torch.from_numpy(np.ascontiguousarray(clips, dtype=np.float32)).to(device)
        return fn(x, severity, drawn_seeds(draws, len(clips)), context["sample_rate"]
                  ).cpu().numpy()

    return spec.draw, apply, lambda clips: max(1, int(np.prod(clips.shape[1:])))


def _torch_events(spec: Spec, device: torch.device):
    fn = registry.load(spec.torch.module, spec.torch.function)

    def apply(batch, severity, draws, context):
        return fn(spec.name, batch, severity, draws, context, device)

    def per_sample(batch):
        images, audio = batch
        return ((0 if images is None else 3 * math.prod(images.shape[1:-1]))
                + (0 if audio is None else audio.shape[1]))

    return spec.draw, apply, per_sample


_TORCH = {"image": _torch_images, "audio": _torch_audio, "av": _torch_events}


def map_chunks(fn: Callable[[range], Any], n: int, per_sample: int,
               device: torch.device | str = "cpu") -> list[Any]:
    """`fn` over consecutive chunks of range(n), in order: chunks of at most
    `CHUNK_ELEMENTS` values (`per_sample` each); on the CPU one chunk per torch thread, run
    in threads each on one intra-op thread. A sample's output does not depend on its
    chunk."""
    size = max(1, CHUNK_ELEMENTS // max(1, per_sample))
    workers = torch.get_num_threads() if torch.device(device).type == "cpu" else 1
    if workers > 1:
        size = min(size, -(-n // workers))
    chunks = [range(i, min(n, i + size)) for i in range(0, n, size)]
    if workers > 1 and len(chunks) > 1:
        # Coarse-grained threads (torch releases the GIL, so do the numpy draws and the
        # reference steps) rather than torch's fine-grained intra-op threads: these keep
        # their speed when other processes load the cores, the intra-op threads (which wait
        # for each other at every operation) do not.
        with single_threaded_torch(), ThreadPoolExecutor(workers) as pool:
            return list(pool.map(fn, chunks))
    return [fn(chunk) for chunk in chunks]


def _rows(batch: Any, start: int, stop: int) -> Any:
    if isinstance(batch, tuple):  # an event's (images, audio)
        return tuple(None if x is None else x[start:stop] for x in batch)
    return batch[start:stop]


def _copy(batch: Any) -> Any:
    if isinstance(batch, tuple):
        return tuple(None if x is None else x.copy() for x in batch)
    return batch.copy()


def _concatenate(parts: list[Any]) -> Any:
    if isinstance(parts[0], tuple):
        return tuple(None if x[0] is None else np.concatenate(x) for x in zip(*parts, strict=True))
    return np.concatenate(parts)


@contextlib.contextmanager
def single_threaded_torch():
    """torch on one intra-op thread for the duration; the former count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _images(fn, images: np.ndarray, severity: int, seeds: list[int],
            device: torch.device, scale: str,
            drawn: dict[str, torch.Tensor] | None = None) -> np.ndarray:
    """uint8 (B, H, W, C) -> the torch function on (B, 3, H, W) in [0, 1] -> uint8, as
    the reference: one-channel images are replicated to RGB, corrupted, and the rounded
    mean of the three channels is kept; outputs are truncated to uint8 like `np.uint8`.
    `drawn`: the parameters a function that draws them apart applies."""
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
    out = fn(x, severity, seeds, scale) if drawn is None else fn(x, severity, seeds, scale,
                                                                 drawn=drawn)
    out = out.clamp_(0, 255).to(torch.int32).to(torch.uint8)
    if gray:
        out = out.float().mean(1, keepdim=True).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()
