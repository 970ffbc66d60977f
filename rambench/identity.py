"""What makes a result the result of *this* code: method identities and the harness
fingerprint, both part of every job key.

* `MethodId(name, params, code)`: the registered name (or `stem:Class` for a file plug-in),
  the hyper-parameters that differ from the defaults, and a hash of the source files that
  define the method. Its `label` (`raml`, `raml[norm=hard]`) names the method in tables.
* `harness_fingerprint()`: a hash of the code every method is trained and evaluated by.

Code is hashed as its syntax tree (`ast.dump` without docstrings), so editing a comment,
a docstring or the formatting keeps stored results, while any change to what the code does
(a constant, an operator, a call) makes them stale. The alternative, an integer bumped by
hand when behaviour changes, depends on every contributor remembering to bump it; a hash
cannot forget.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# The code every method goes through: the training loop, prediction, batching, encoders
# and fusion modules, the method base class. Datasets carry their own version in the key;
# corruptions carry their backend's version and their code's hash in the data key.
HARNESS_FILES = ("rambench/train.py", "rambench/evaluate.py", "rambench/batch.py",
                 "rambench/device.py", "rambench/methods/base.py", "rambench/models/*.py",
                 "rambench/datasets/base.py")


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class MethodId:
    name: str  # registered name, or stem:Class for a file plug-in
    params: tuple[tuple[str, Any], ...] = ()  # non-default hyper-parameters, sorted
    code: str = ""  # hash of the method's source files (see `method_code_hash`)

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        inner = ",".join(f"{k}={format_value(v)}" for k, v in self.params)
        return f"{self.name}[{inner}]"


def parse_label(text: str) -> tuple[str, dict[str, str]]:
    """'raml[norm=hard,alpha=0.5]' -> ('raml', {'norm': 'hard', 'alpha': '0.5'})."""
    from rambench.errors import UsageError

    text = text.strip()
    if not text.endswith("]") or "[" not in text:
        if "[" in text or "]" in text:
            raise UsageError(f"method {text!r}: expected name[key=value,...], "
                             "e.g. raml[norm=hard]")
        return text, {}
    name, _, inner = text[:-1].partition("[")
    values: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in inner.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"method {text!r}: expected key=value inside [...]; "
                             f"got {item!r}")
        values[key.strip()] = value.strip()
    return name.strip(), values


def _normalised_source(path: Path) -> str:
    """The file's syntax tree without docstrings: comments and layout do not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                              ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


@lru_cache(maxsize=512)
def file_hash(path: Path, mtime_ns: int) -> str:  # mtime in the cache key: edits are seen
    return hashlib.sha256(_normalised_source(path).encode()).hexdigest()


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        rel = path.relative_to(PACKAGE_ROOT) if path.is_relative_to(PACKAGE_ROOT) else path.name
        digest.update(f"{rel}\0{file_hash(path, path.stat().st_mtime_ns)}\0".encode())
    return digest.hexdigest()[:16]


def harness_fingerprint() -> str:
    files = [p for pattern in HARNESS_FILES for p in PACKAGE_ROOT.glob(pattern)]
    return _hash_files(files)


# The corruption library's code per kind of data and backend: a changed severity table or
# algorithm gives new data keys, so corrupted test sets made by other code are never reused.
CORRUPTION_FILES = {
    ("image", "reference"): ("corruptions/image.py", "corruptions/scales.py",
                             "corruptions/small_images.py", "corruptions/protocols.py",
                             "corruptions/_imagecorruptions_compat.py"),
    ("audio", "reference"): ("corruptions/audio.py",),
    ("av", "reference"): ("corruptions/av_events.py",),
}
CORRUPTION_FILES[("image", "torch")] = (*CORRUPTION_FILES[("image", "reference")],
                                        "corruptions/torch_image.py", "corruptions/_torch_ops.py",
                                        "corruptions/reference_pool.py")
CORRUPTION_FILES[("audio", "torch")] = (*CORRUPTION_FILES[("audio", "reference")],
                                        "corruptions/torch_audio.py", "corruptions/_torch_ops.py",
                                        "corruptions/reference_pool.py")
CORRUPTION_FILES[("av", "torch")] = (*CORRUPTION_FILES[("av", "reference")],
                                     "corruptions/torch_av.py", "corruptions/_torch_ops.py")


# The code that turns a condition into test inputs, whatever the condition: per-sample seeds,
# which samples a mixed or random-missing condition selects, batching into the backends.
TEST_INPUT_FILES = ("rambench/test_inputs.py", "corruptions/backends.py",
                    "corruptions/missing.py")


def test_inputs_hash() -> str:
    """A hash of `TEST_INPUT_FILES`: part of every data key (clean and missing cells too)."""
    return _hash_files([PACKAGE_ROOT / f for f in TEST_INPUT_FILES])


def corruption_code_hash(kind: str, backend: str) -> str:
    """A hash of the code that corrupts data of `kind` ("image", "audio", "av") on `backend`."""
    files = CORRUPTION_FILES.get((kind, backend)) or CORRUPTION_FILES[(kind, "reference")]
    return _hash_files([PACKAGE_ROOT / f for f in files])


def _local_imports(path: Path) -> list[Path]:
    """Files imported by `path` that belong to the method's own code: modules of the
    `baselines` and `rambench.methods` packages, and files beside a plug-in file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside a package
                package = _module_name(path).rsplit(".", node.level)[0]
                base = f"{package}.{node.module}" if node.module else package
                names += [base] + [f"{base}.{a.name}" for a in node.names]
            elif node.module:
                names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    found = []
    for name in names:
        candidate = path.parent / f"{name.replace('.', '/')}.py"  # beside a plug-in file
        if not path.is_relative_to(PACKAGE_ROOT) and candidate.is_file():
            found.append(candidate.resolve())
            continue
        if not name.startswith(("baselines", "rambench.methods")):
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            found.append(Path(spec.origin).resolve())
    return found


def _module_name(path: Path) -> str:
    if path.is_relative_to(PACKAGE_ROOT):
        return ".".join(path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
    return path.stem


def method_files(cls: type) -> list[Path]:
    """The source files that define `cls`: the files of the classes in its MRO below
    `Method`, and, transitively, the method packages' modules and plug-in-local files they
    import. The harness (`Method` itself, encoders, training) is in `harness_fingerprint`."""
    from rambench.methods.base import Method

    roots = []
    for klass in cls.__mro__:
        if klass is Method or not issubclass(klass, Method):
            continue
        try:
            roots.append(Path(inspect.getfile(klass)).resolve())
        except TypeError:  # defined interactively: no file
            continue
    harness = {p.resolve() for pattern in HARNESS_FILES for p in PACKAGE_ROOT.glob(pattern)}
    seen: list[Path] = []
    todo = list(roots)
    while todo:
        path = todo.pop()
        if path in seen or path in harness or not path.is_file():
            continue
        seen.append(path)
        todo += _local_imports(path)
    return seen


def method_code_hash(cls: type) -> str:
    """Hash of the method's files (`method_files`) and its optional `version` attribute.
    A class with no source file (defined in a notebook cell) is hashed by its source text
    where inspect can find it, else by its qualified name only."""
    files = method_files(cls)
    version = getattr(cls, "version", None)
    digest = hashlib.sha256(f"{_hash_files(files) if files else ''}\0{version}".encode())
    if not files:
        try:
            digest.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    return digest.hexdigest()[:16]


def non_default_params(params: Any) -> tuple[tuple[str, Any], ...]:
    """The fields of a Params dataclass instance that differ from the class defaults."""
    import dataclasses

    defaults = type(params)()
    return tuple(sorted(
        (f.name, getattr(params, f.name)) for f in dataclasses.fields(params)
        if getattr(params, f.name) != getattr(defaults, f.name)))

