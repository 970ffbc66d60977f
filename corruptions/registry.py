"""The corruption registry: every corruption has a name, the kind of data it acts on,
a family, a parameter table for severities 1-5 and a per-sample reference function.

A corruption never sees labels or models. It takes one sample, a severity and an integer
seed, and must derive all of its randomness from that seed (never from global RNG state),
so that a sample's corruption does not depend on batch size or on the order of cells.
"""

from __future__ import annotations

import difflib
import enum
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)

# Corruptions held out of the test grids, for choosing a method's settings on the validation
# split without touching the corruptions it is tested on: ImageNet-C's four validation
# corruptions (Hendrycks & Dietterich 2019, one per family), and for audio one of each
# family that has a second member in the test set. A grid's `all` leaves them out; its
# `held_out` names them.
HELD_OUT: dict[str, tuple[str, ...]] = {
    "image": ("speckle_noise", "gaussian_blur", "spatter", "saturate"),
    "audio": ("brown_noise", "clipping", "band_stop"),
}

# `apply(sample, severity, seed, **context) -> sample` with the same shape and dtype.
# image samples: uint8 (H, W, C), C in {1, 3}; audio samples: float32 (T,), with
# context `sample_rate=...`.
ApplyFn = Callable[..., np.ndarray]


class Fidelity(enum.Enum):
    """How a corruption's torch implementation relates to its reference code."""

    EXACT = "exact port"  # the same arithmetic (float32); equal up to rounding
    SAME_ALGORITHM = "same algorithm, torch's random numbers"
    REFERENCE = "the reference code, sample by sample on the CPU"


@dataclass(frozen=True)
class TorchImpl:
    """A corruption's batched torch function, `module.function(x, severity, seeds, ctx)`
    on tensors (for fidelity REFERENCE: on the numpy batch, see `array_function`), imported
    only when used (torch is not needed to describe or run the reference)."""

    module: str
    function: str
    fidelity: Fidelity
    note: str = ""  # what is particular about this port
    # the function that draws its random parameters, `draw(severity, seeds, shape, scale,
    # device) -> {name: (B,) tensor}`, which the corruption function also accepts as `drawn`
    # (drawing split from applying, so that records can keep what was drawn)
    draw: str | None = None
    # a function of the numpy batch that the CPU runs instead of `function`, where it is
    # faster than the tensor version (pixelate: Pillow's 8-bit resampling)
    cpu_function: str | None = None

    def load(self) -> Callable:
        return getattr(importlib.import_module(self.module), self.function)

    def array_function(self, device_type: str) -> Callable | None:
        """The function that runs on this device type with the numpy batch as it is (uint8
        images, float32 clips, in and out; `fn(array, severity, seeds, **context)`), or None
        where the tensor function runs: the reference's own code (fidelity REFERENCE) on
        every device, `cpu_function` on the CPU."""
        if self.fidelity is Fidelity.REFERENCE:
            return self.load()
        if self.cpu_function and device_type == "cpu":
            return getattr(importlib.import_module(self.module), self.cpu_function)
        return None

    def load_draw(self) -> Callable | None:
        return getattr(importlib.import_module(self.module), self.draw) if self.draw else None


@dataclass(frozen=True)
class Corruption:
    """Everything about one corruption: its name, the kind of data it acts on, its family,
    the unit of its parameter, its severity table(s) in words, the reference function
    (`apply`) and the torch implementation with its fidelity class."""

    name: str
    kind: str  # "image" or "audio": the kind of data it acts on
    family: str  # e.g. noise / blur / weather / digital for images
    apply: ApplyFn
    severity_table: tuple[str, ...]  # a human-readable parameter for severities 1..5
    backend: str  # e.g. "imagecorruptions==1.1.2"
    torch: TorchImpl | None = None
    unit: str = ""  # what the severity table's numbers measure
    values: tuple = ()  # the parameter of each severity (unscaled corruptions)
    protocol: str | None = None  # set for a corruption of one paper's protocol (e.g. "qmf")
    # severity scale -> its table, for corruptions whose constants depend on the image size
    # (`corruptions.scales`); empty for the others, whose one table is `severity_table`
    scale_tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def scaled(self) -> bool:
        return bool(self.scale_tables)

    def describe(self, scale: str | None = None) -> tuple[str, ...]:
        """The severity table at a resolved scale (ignored by unscaled corruptions)."""
        return self.scale_tables[scale] if self.scaled and scale else self.severity_table

    def value(self, severity: int):
        """The parameter of a severity (unscaled corruptions)."""
        return self.values[severity - 1]

    def __call__(self, sample: np.ndarray, severity: int, seed: int, **context) -> np.ndarray:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        return self.apply(sample, severity, seed, **context)


# Keyed by (kind, name): image and audio may share a name (gaussian_noise).
_REGISTRY: dict[tuple[str, str], Corruption] = {}


def register(corruption: Corruption) -> Corruption:
    key = (corruption.kind, corruption.name)
    if key in _REGISTRY:
        raise ValueError(f"{corruption.kind} corruption {corruption.name!r} is already registered")
    _REGISTRY[key] = corruption
    return corruption


def _load_builtin() -> None:
    # Importing the modules registers their corruptions.
    from corruptions import audio, image, protocols  # noqa: F401


def get(name: str, kind: str) -> Corruption:
    _load_builtin()
    try:
        return _REGISTRY[(kind, name)]
    except KeyError:
        raise KeyError(unknown_name_message(f"{kind} corruption", name, names(kind))) from None


def names(kind: str | None = None, protocols: bool = False) -> list[str]:
    """Registered names (of one kind, or of all kinds), in `all_corruptions` order; with
    `protocols`, also the corruptions of papers' protocols (see `corruptions.protocols`)."""
    return list(dict.fromkeys(c.name for c in all_corruptions() if (kind is None or c.kind == kind)
                              and (protocols or not c.protocol)))


def test_names(kind: str) -> list[str]:
    """The corruptions of `kind` that test grids use: every common one but the held-out."""
    return [n for n in names(kind) if n not in HELD_OUT.get(kind, ())]


def all_corruptions() -> list[Corruption]:
    """Every registered corruption: the common ones, then those of papers' protocols, each
    in registration order (which module was imported first does not matter)."""
    _load_builtin()
    return sorted(_REGISTRY.values(), key=lambda c: c.protocol is not None)


def unknown_name_message(what: str, name: str, valid: Sequence[str]) -> str:
    """'unknown X 'nam'; did you mean 'name'? valid: ...' — shared by every registry."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} Valid: {', '.join(valid)}"


def implementation_table() -> str:
    """The Markdown table of how the torch backend implements each corruption, from the
    specs (the README's "Corruption backends" table is this output)."""
    rows = ["| how | image | audio |", "|---|---|---|"]
    for fidelity in Fidelity:
        cells = []
        for kind in ("image", "audio"):
            by_note: dict[str, list[str]] = {}  # note -> names, in registration order
            for c in all_corruptions():
                port = c.torch
                if c.kind != kind or port is None:
                    continue
                if port.fidelity is fidelity:
                    by_note.setdefault(port.note, []).append(c.name)
            cells.append("; ".join(", ".join(names) + (f" ({note})" if note else "")
                                   for note, names in by_note.items()) or "–")
        rows.append(f"| {fidelity.value} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)
