"""Where computation runs: resolving `--device`, mixed precision, moving batches."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from rambench.batch import Batch
from rambench.errors import UsageError

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(device: str) -> torch.device:
    if not DEVICE.fullmatch(device):
        raise UsageError(f"--device: unknown device {device!r}; devices: auto, cpu, cuda, "
                         "cuda:N")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device} was asked for, but torch sees no CUDA device")
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: torch sees {torch.cuda.device_count()} "
                             "CUDA device(s)")
    return torch.device(device)


def autocast(device: torch.device):
    # bf16 autocast on CUDA; full precision on CPU so that CPU results are exact.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def to_device(batch: Batch, device: torch.device) -> Batch:
    batch = batch.to(device)
    if device.type == "cuda":
        for m, x in batch.inputs.items():
            if x.dim() == 4:
                batch.inputs[m] = x.contiguous(memory_format=torch.channels_last)
    return batch


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch on `threads` intra-op threads for the duration (a study's `threads`: on a CPU
    the order of floating-point sums depends on it); the former count is restored."""
    former = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(former)
