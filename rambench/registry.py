"""One small generic registry for methods, datasets and encoders.

Built-in entries register themselves when their module is imported; plug-ins come from
the `rambench.<kind>` entry-point group or, for methods, from `path/to/file.py:ClassName`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

from corruptions.registry import unknown_name_message
from rambench.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, builtin_modules: Iterable[str] = ()) -> None:
        self.kind = kind
        self._builtin_modules = tuple(builtin_modules)
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            existing = self._entries.setdefault(name, obj)
            # The same file loaded twice (as a package module and by path) is not a clash.
            if existing is not obj and _source_file(existing) != _source_file(obj):
                raise ValueError(f"{self.kind} {name!r} is already registered")
            return obj

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtin_modules:
            importlib.import_module(module)
        for ep in importlib.metadata.entry_points(group=f"rambench.{self.kind}s"):
            self._entries.setdefault(ep.name, ep.load())

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        self._load()
        if name in self._entries:
            return self._entries[name]
        if ":" in name and name.split(":", 1)[0].endswith(".py"):
            return load_from_file(name)
        if name.endswith(".py"):
            raise UsageError(f"{self.kind} {name!r}: name the class in the file too, as "
                             f"{name}:ClassName")
        raise UsageError(unknown_name_message(self.kind, name, self._entries))


def _source_file(obj) -> str | None:
    try:
        return str(Path(inspect.getfile(obj)).resolve())
    except TypeError:
        return None


def load_from_file(spec: str):
    """Load `ClassName` from `path/to/file.py:ClassName` without installing anything."""
    path_text, attr = spec.rsplit(":", 1)
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"no such file {path_text!r} (from {spec!r})")
    module_name = f"rambench_plugin_{path.stem}_{abs(hash(str(path))):x}"
    module = sys.modules.get(module_name)
    if module is None:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - any error in the user's file
            del sys.modules[module_name]
            where = f" (line {err.lineno})" if isinstance(err, SyntaxError) else ""
            first = (str(err).strip().splitlines() or [""])[0]
            raise UsageError(f"could not load {attr} from {path_text}{where}: "
                             f"{type(err).__name__}: {first}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        classes = [n for n, v in vars(module).items()
                   if isinstance(v, type) and v.__module__ == module.__name__]
        raise UsageError(unknown_name_message(f"class in {path_text}", attr, classes)) \
            from None
