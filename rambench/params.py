"""Hyper-parameters: declared once on a dataclass (type, default, allowed range), set from
`--set scope.key=value`, a grid file or the Python API, and checked in one place.

    @dataclass
    class Params:
        lr: float = param(1e-3, gt=0)            # a range
        norm: Literal["soft", "hard"] = "soft"   # a set of values
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from corruptions.registry import unknown_name_message
from rambench.errors import UsageError


def parse_assignments(items: typing.Iterable[str]) -> dict[str, dict[str, str]]:
    """['raml.alpha=0.5', 'train.epochs=3'] -> {'raml': {'alpha': '0.5'}, 'train': {...}}."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        scope, dot, name = key.strip().partition(".")
        if not sep or not dot or not scope or not name:
            raise UsageError(f"--set expects scope.key=value (e.g. raml.alpha=0.5); got {item!r}")
        out.setdefault(scope, {})[name] = value.strip()
    return out


def param(default: Any, *, ge: float | None = None, gt: float | None = None,
          le: float | None = None) -> Any:
    """A dataclass field with an allowed range: >= ge, > gt, <= le."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None}
    return dataclasses.field(default=default, metadata=bounds)


def check_params(obj: Any, scope: str) -> None:
    """UsageError naming the field if a value is outside its declared range or not finite."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        where = f"{scope}.{f.name}"
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{where} must be a finite number; got {value}")
        m = f.metadata
        if ("ge" in m and value < m["ge"]) or ("gt" in m and value <= m["gt"]) or (
                "le" in m and value > m["le"]):
            allowed = " and ".join(f"{op} {m[k]:g}" for k, op in
                                   (("ge", ">="), ("gt", ">"), ("le", "<=")) if k in m)
            raise UsageError(f"{where} must be {allowed}; got {value:g}")


def coerce(value: Any, annotation: Any, where: str) -> Any:
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        for choice in choices:
            if text == str(choice):
                return choice
        raise UsageError(f"{where} must be one of {', '.join(map(str, choices))}; "
                         f"got {text!r}")
    if not isinstance(value, str):
        value = str(value) if not isinstance(value, bool) else str(value).lower()
    try:
        if annotation is bool:
            lowered = value.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            return lowered in ("true", "1", "yes", "on")
        if annotation is int:
            return int(value)
        if annotation is float:
            return float(value)
        return value
    except ValueError:
        name = getattr(annotation, "__name__", str(annotation))
        raise UsageError(f"{where} expects a {name}; got {value!r}") from None


def apply_overrides(cls: type, scope: str, overrides: dict[str, Any], base: Any = None) -> Any:
    """An instance of dataclass `cls` (starting from `base`) with `overrides` applied."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values = dataclasses.asdict(base) if base is not None else {}
    for name, raw in overrides.items():
        if name not in fields:
            raise UsageError(unknown_name_message(f"key for {scope}", name, fields))
        values[name] = coerce(raw, hints[name], f"{scope}.{name}")
    try:
        obj = cls(**values)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    check_params(obj, scope)
    return obj
