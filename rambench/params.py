"""`--set scope.key=value` overrides, typed by the dataclass they land in."""

from __future__ import annotations

import dataclasses
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


def coerce(value: Any, annotation: Any, where: str) -> Any:
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
        return cls(**values)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
