"""The corruption spec: one type for the image corruptions, the audio corruptions and the
audio-visual events, and the protocol every one of them follows.

A `Spec` holds a corruption's name, the kind of data it acts on ("image", "audio" or "av"),
its family, the unit of its parameter, its severity table(s), its reference backend's
`prepare`, `draw` and `apply`, its per-sample reference function, its torch implementation
(`TorchImpl`) with its fidelity class, and what its draws are (`randomness`, in words).

The protocol: a corruption's randomness is drawn first, then applied.

    draw(batch, severity, seeds, context) -> Draws
    apply(batch, severity, draws, context) -> batch

`prepare(batch, **options) -> (samples, context)` checks a batch and gives the context
(the image corruptions' resolved severity scale, the sample rate, an event's babble pool).
`Draws.params` holds one JSON value per sample under each name: what a record keeps, and
all that applying needs, so that applying recorded params again gives the same batch, bit
for bit. Where a corruption's randomness lies inside a reference library's call
(imagecorruptions and the small-image generators draw from numpy's global RNG,
audiomentations from `random` and `np.random`), its draw is the per-sample `seed` that
call is seeded with; an audio-visual event's draw is its `seed` (every array it draws
derives from it) and what it drew from it, in words and numbers. A deterministic
corruption draws nothing ({}). `Draws.derived` keeps in memory what derives from the
params alone (an event's drawn arrays), so that it is not derived twice.

`corruptions.backends.corrupt` is the one entry point that runs the protocol on either
backend; `corruptions.registry` finds every spec by kind and name. This module imports no
other module of the package.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)
KINDS = ("image", "audio", "av")
# The torch backend of the image and audio corruptions (`corruptions.torch_image`,
# `torch_audio`). Bump when a torch implementation changes its output for the same seed.
TORCH_BACKEND_VERSION = 3
TORCH_BACKEND = f"rambench-torch/{TORCH_BACKEND_VERSION}"

# draw(batch, severity, seeds, context) -> Draws; apply(batch, severity, draws, context) ->
# batch of the same shape and dtype. image batches: uint8 (N, H, W, C), C in {1, 3}, context
# {"scale": ...}; audio: float32 (N, T), context {"sample_rate": ...}; av: (frames uint8
# (N, T, H, W, C) or None, audio float32 (N, L) or None), context {"sample_rate", "pool",
# "noise"} (`corruptions.av_events`).
DrawFn = Callable[..., "Draws"]
ApplyFn = Callable[..., Any]


def unknown_name_message(what: str, name: str, valid: Sequence[str]) -> str:
    """'unknown X 'nam'; did you mean 'name'? valid: ...' — shared by every registry."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} Valid: {', '.join(valid)}"


def check_severity(severity: int) -> int:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    return severity


def check_images(images: np.ndarray, min_size: int = 32, clips: bool = False) -> bool:
    """A batch of uint8 images (N, H, W, C) (with `clips`, also clips (N, T, H, W, C)), C in
    {1, 3}, H and W at least `min_size`; or a ValueError saying why not. True for clips."""
    layout = "(N, H, W, C) or (N, T, H, W, C)" if clips else "(N, H, W, C)"
    if (not isinstance(images, np.ndarray) or images.dtype != np.uint8
            or images.ndim not in ((4, 5) if clips else (4,)) or images.shape[-1] not in (1, 3)):
        raise ValueError(f"images must be uint8 {layout} with C in {{1, 3}}, got "
                         f"{getattr(images, 'dtype', type(images).__name__)} "
                         f"{getattr(images, 'shape', '')}")
    if min(images.shape[-3:-1]) < min_size:
        raise ValueError(f"image height and width must be at least {min_size}, got "
                         f"{images.shape[-3:-1]}")
    if images.ndim == 5 and images.shape[1] < 1:
        raise ValueError("clips need at least one frame")
    return images.ndim == 5


class Fidelity(enum.Enum):
    """How a corruption's torch implementation relates to its reference code."""

    EXACT = "exact port"  # the same arithmetic (float32); equal up to rounding
    SAME_ALGORITHM = "same algorithm, torch's random numbers"
    REFERENCE = "the reference code, sample by sample on the CPU"


@dataclass(frozen=True)
class TorchImpl:
    """A corruption's torch implementation, `module.function`, found by name when used
    (`corruptions.registry.load`: torch is not needed to describe or run the reference).

    image and audio: the batched function `function(x, severity, seeds, scale | sample_rate)`
    on tensors (for fidelity REFERENCE: on the numpy batch, see `array_function`); av: the
    events' apply of a chunk, `function(name, batch, severity, draws, context, device)`."""

    module: str
    function: str
    fidelity: Fidelity
    note: str = ""  # what is particular about this port
    # the function that draws its random parameters, `draw(severity, seeds, shape, scale,
    # device) -> {name: (B,) tensor}`, which the corruption function also accepts as `drawn`
    # (drawing split from applying); None: the spec's `draw` is the torch backend's too
    draw: str | None = None
    # a function of the numpy batch that the CPU runs instead of `function`, where it is
    # faster than the tensor version (pixelate: Pillow's 8-bit resampling)
    cpu_function: str | None = None
    backend: str = TORCH_BACKEND  # its name and version in backend ids

    def array_function(self, device_type: str) -> str | None:
        """image and audio: the name of the function that runs on this device type with the
        numpy batch as it is (uint8 images, float32 clips, in and out; `fn(array, severity, seeds,
        **context)`), or None where the tensor function runs: the reference's own code
        (fidelity REFERENCE) on every device, `cpu_function` on the CPU."""
        if self.fidelity is Fidelity.REFERENCE:
            return self.function
        if self.cpu_function and device_type == "cpu":
            return self.cpu_function
        return None


@dataclass(frozen=True)
class Draws:
    """A batch's random draws: `params`, one JSON value per sample under each name (what a
    record keeps, and all that applying needs), and `derived`, one in-memory value per
    sample that derives from the params alone (None: derived when applied)."""

    params: Mapping[str, list] = field(default_factory=dict)
    derived: list | None = None

    def rows(self, start: int, stop: int) -> Draws:
        return Draws({k: v[start:stop] for k, v in self.params.items()},
                     None if self.derived is None else self.derived[start:stop])


def batch_context(batch: Any, **options) -> tuple[int, dict[str, Any]]:
    """The `prepare` of a corruption whose draw and apply take no context: the batch's
    number of samples and {}."""
    return len(batch), {}


def no_draw(batch: Any, severity: int, seeds: Sequence[int], context: Mapping) -> Draws:
    """The draw of a deterministic corruption: nothing."""
    return Draws({})


def seed_draw(batch: Any, severity: int, seeds: Sequence[int], context: Mapping) -> Draws:
    """The draw of a corruption whose randomness lies inside its reference's call: the
    seed of each sample, which the call is seeded with."""
    return Draws({"seed": [int(s) for s in seeds]})


def drawn_seeds(draws: Draws, n: int) -> list[int]:
    """The samples' drawn seeds; 0 for each where the corruption draws none (it is
    deterministic: the seed is not used)."""
    return [int(s) for s in draws.params.get("seed", [0] * n)]


def sample_by_sample(reference: Callable[..., np.ndarray]) -> ApplyFn:
    """The reference backend's apply of a per-sample function `reference(sample, severity,
    seed, **context)`: each sample with its drawn seed."""
    def apply(batch: np.ndarray, severity: int, draws: Draws, context: Mapping) -> np.ndarray:
        out = batch.copy()
        for i, seed in enumerate(drawn_seeds(draws, len(batch))):
            out[i] = reference(batch[i], severity, seed, **context)
        return out

    return apply


@dataclass(frozen=True)
class Spec:
    """Everything about one corruption: its name, the kind of data it acts on, its family,
    the unit of its parameter, its severity table(s) in words, its reference backend's
    `draw` and `apply` (see the module's docstring), its per-sample reference function
    (image and audio: `reference(sample, severity, seed, **context)`), its torch
    implementation with its fidelity class, and what it draws (`randomness`)."""

    name: str
    kind: str  # "image", "audio" or "av": the kind of data it acts on
    family: str  # e.g. noise / blur / weather / digital for images
    backend: str  # the reference's name and version, e.g. "imagecorruptions==1.1.2"
    draw: DrawFn
    apply: ApplyFn
    # prepare(batch, sample_rate=, scale=, pool=, noise_dir=) -> (number of samples,
    # context): checks a batch and gives the context its draw and apply take
    prepare: Callable[..., tuple[int, dict[str, Any]]] = batch_context
    reference: Callable[..., np.ndarray] | None = None
    torch: TorchImpl | None = None
    randomness: str = ""  # what `draw` draws, in words ("" for a deterministic corruption)
    severity_table: tuple[str, ...] = ()  # a human-readable parameter for severities 1..5
    unit: str = ""  # what the severity table's numbers measure
    values: tuple = ()  # the parameter of each severity (unscaled corruptions)
    protocol: str | None = None  # set for a corruption of one paper's protocol (e.g. "qmf")
    # severity scale -> its table, for corruptions whose constants depend on the image size
    # (`corruptions.scales`); empty for the others, whose one table is `severity_table`
    scale_tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""

    @property
    def scaled(self) -> bool:
        return bool(self.scale_tables)

    @property
    def random(self) -> bool:
        """Whether it draws anything (else its output depends on no seed)."""
        return bool(self.randomness)

    def describe(self, scale: str | None = None) -> tuple[str, ...]:
        """The severity table at a resolved scale (ignored by unscaled corruptions)."""
        return self.scale_tables[scale] if self.scaled and scale else self.severity_table

    def value(self, severity: int):
        """The parameter of a severity (unscaled corruptions)."""
        return self.values[severity - 1]

    def __call__(self, sample: np.ndarray, severity: int, seed: int, **context) -> np.ndarray:
        """The reference on one sample (image and audio)."""
        if self.reference is None:
            raise TypeError(f"{self.kind} corruption {self.name!r} has no per-sample "
                            "reference: corrupt batches with corruptions.backends.corrupt")
        check_severity(severity)
        return self.reference(sample, severity, seed, **context)
