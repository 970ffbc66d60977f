"""Hyper-parameters: declared once on a dataclass (type, default, allowed range), set from
`--set scope.key=value`, a grid file or the Python API, and checked in one place.

    @dataclass
    class Params:
        lr: float = param(1e-3, gt=0)            # a range
        norm: Literal["soft", "hard"] = "soft"   # a set of values
        kernel: tuple[int, ...] = param((3, 5), ge=1)  # --set m.kernel=3,5 or "(3, 5)"
        radius: float | None = None              # --set m.radius=none
"""

from __future__ import annotations

import dataclasses
import math
import types
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
    """UsageError naming the field if a value is outside its declared range or not finite.
    A tuple's bounds apply to each element; None (an optional left unset) is not checked."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        items = value if isinstance(value, tuple) else (value,)
        for i, item in enumerate(items):
            where = f"{scope}.{f.name}" + (f"[{i}]" if isinstance(value, tuple) else "")
            _check_number(item, f.metadata, where)


def _check_number(value: Any, m: Any, where: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where} must be a finite number; got {value}")
    if ("ge" in m and value < m["ge"]) or ("gt" in m and value <= m["gt"]) or (
            "le" in m and value > m["le"]):
        allowed = " and ".join(f"{op} {m[k]:g}" for k, op in
                               (("ge", ">="), ("gt", ">"), ("le", "<=")) if k in m)
        raise UsageError(f"{where} must be {allowed}; got {value:g}")


NONE_WORDS = ("none", "null")


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    if origin is tuple:
        return "a tuple"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _split_tuple(text: str) -> list[str]:
    """'(1, 2)', '[1,2]', '1,2', '1' -> ['1', '2'] / ['1']; '()' and '' -> []."""
    text = text.strip()
    if len(text) >= 2 and (text[0], text[-1]) in (("(", ")"), ("[", "]")):
        text = text[1:-1]
    parts = [p.strip() for p in text.split(",")]
    if parts and parts[-1] == "":  # '(1,)'
        parts = parts[:-1]
    if any(p == "" for p in parts):
        raise ValueError
    return parts


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """`value` (a string from --set or a grid file, or a Python value) as `annotation`:
    bool, int, float, str, a Literal, a tuple (`tuple[int, ...]`, `tuple[float, float]`;
    from '(1, 2)', '[1, 2]', '1,2' or a list), an optional (`X | None`; 'None' or 'none'
    or Python None give None) or another union (its first type that accepts the value)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        for choice in choices:
            if text == str(choice):
                return choice
        raise UsageError(f"{where} must be one of {', '.join(map(str, choices))}; "
                         f"got {text!r}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if type(None) in args and (value is None or (
                isinstance(value, str) and value.strip().lower() in NONE_WORDS)):
            return None
        arms = [a for a in args if a is not type(None)]
        for arm in arms:
            try:
                return coerce(value, arm, where)
            except UsageError:
                continue
        names = [_type_name(a) for a in arms] + (["none"] if type(None) in args else [])
        raise UsageError(f"{where} expects {' or '.join(names)}; got {value!r}") from None
    if origin is tuple:
        return _coerce_tuple(value, annotation, where)
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
        raise UsageError(f"{where} expects a {_type_name(annotation)}; got {value!r}") \
            from None


def _coerce_tuple(value: Any, annotation: Any, where: str) -> tuple:
    args = typing.get_args(annotation)
    try:
        items = _split_tuple(value) if isinstance(value, str) else list(value)
    except (ValueError, TypeError):
        raise UsageError(f"{where} expects a tuple such as (1, 2) or 1,2; got {value!r}") \
            from None
    if not args or (len(args) == 2 and args[1] is Ellipsis):  # tuple / tuple[X, ...]
        kinds = [args[0] if args else str] * len(items)
    else:
        if len(items) != len(args):
            raise UsageError(f"{where} expects {len(args)} values "
                             f"({', '.join(map(_type_name, args))}); got {len(items)}: "
                             f"{value!r}")
        kinds = list(args)
    return tuple(coerce(item, kind, f"{where}[{i}]")
                 for i, (item, kind) in enumerate(zip(items, kinds, strict=True)))


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
