"""The corruption registry: every image corruption, audio corruption and audio-visual event
(`corruptions.spec.Spec`), by kind and name, found lazily.

The built-in specs are the `SPECS` of the modules named in `BUILTIN`, imported by name
when the registry is first asked (the modules that define corruptions never import the
registry); `load` finds a torch implementation's functions by name likewise. Other code
may `register` specs of its own.

A corruption never sees labels or models. It takes a batch, a severity and one integer
seed per sample, and must derive all of its randomness from those seeds (never from
global RNG state), so that a sample's corruption does not depend on batch size or on the
order of cells.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from corruptions.spec import SEVERITIES, Fidelity, Spec, TorchImpl, unknown_name_message

__all__ = ["BUILTIN", "HELD_OUT", "SEVERITIES", "Fidelity", "Spec", "TorchImpl", "all_corruptions",
           "get", "implementation_table", "load", "names", "register", "test_names",
           "unknown_name_message"]

# the modules that define the built-in specs (each a `SPECS` tuple), in listing order
BUILTIN = ("corruptions.image", "corruptions.audio", "corruptions.protocols",
           "corruptions.av_events", "corruptions.avrobustbench", "corruptions.read")
KIND_NAMES = {"image": "image corruption", "audio": "audio corruption", "av": "AV event"}

# Corruptions held out of the test grids, for choosing a method's settings on the validation
# split without touching the corruptions it is tested on: ImageNet-C's four validation
# corruptions (Hendrycks & Dietterich 2019, one per family), and for audio one of each
# family that has a second member in the test set. A grid's `all` leaves them out; its
# `held_out` names them.
HELD_OUT: dict[str, tuple[str, ...]] = {
    "image": ("speckle_noise", "gaussian_blur", "spatter", "saturate"),
    "audio": ("brown_noise", "clipping", "band_stop"),
}

# Keyed by (kind, name): image and audio may share a name (gaussian_noise).
_REGISTERED: dict[tuple[str, str], Spec] = {}


@functools.cache
def _builtin() -> dict[tuple[str, str], Spec]:
    specs: dict[tuple[str, str], Spec] = {}
    for module in BUILTIN:
        for spec in importlib.import_module(module).SPECS:
            specs[(spec.kind, spec.name)] = spec
    return specs


def _specs() -> dict[tuple[str, str], Spec]:
    return {**_builtin(), **_REGISTERED}


def register(spec: Spec) -> Spec:
    """Adds a spec of another library (the built-in ones are found by themselves)."""
    key = (spec.kind, spec.name)
    if key in _specs():
        raise ValueError(f"{spec.kind} corruption {spec.name!r} is already registered")
    _REGISTERED[key] = spec
    return spec


def get(name: str, kind: str | None = None) -> Spec:
    """The spec of `name` of `kind` ("image", "audio", "av"); without `kind`, the one
    corruption of any kind by that name."""
    specs = _specs()
    if kind is None:
        kinds = [k for (k, n) in specs if n == name]
        if len(kinds) > 1:
            raise KeyError(f"{name!r} names a corruption of each of {', '.join(kinds)}: say "
                           "which kind")
        if not kinds:
            raise KeyError(unknown_name_message("corruption", name, names()))
        kind = kinds[0]
    try:
        return specs[(kind, name)]
    except KeyError:
        raise KeyError(unknown_name_message(KIND_NAMES.get(kind, f"{kind} corruption"), name,
                                            names(kind))) from None


def names(kind: str | None = None, protocols: bool = False) -> list[str]:
    """Registered names (of one kind, or of all kinds), in `all_corruptions` order; with
    `protocols`, also the corruptions of papers' protocols (see `corruptions.protocols`)."""
    return list(dict.fromkeys(c.name for c in all_corruptions() if (kind is None or c.kind == kind)
                              and (protocols or not c.protocol)))


def test_names(kind: str) -> list[str]:
    """The corruptions of `kind` that test grids use: every common one but the held-out."""
    return [n for n in names(kind) if n not in HELD_OUT.get(kind, ())]


def all_corruptions() -> list[Spec]:
    """Every registered spec: the common ones, then those of papers' protocols, each in
    `BUILTIN` order, then registration order."""
    return sorted(_specs().values(), key=lambda c: c.protocol is not None)


def load(module: str, attribute: str) -> Any:
    """`module.attribute`, the module imported by name (a torch implementation's functions)."""
    return getattr(importlib.import_module(module), attribute)


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
