"""What makes a result the result of *this* code: method identities, the harness version
and the corruption code's hash, all part of every key.

* `MethodId(name, params, code)`: the registered name (or `stem:Class` for a file plug-in),
  the hyper-parameters that differ from the defaults, and a hash of the code that defines
  the method. Its `label` (`raml`, `raml[norm=hard]`) names the method in tables.
* `HARNESS_VERSION`: the code every method is trained and evaluated by (training loop,
  prediction, batching, encoders, fusion modules, test inputs) is identified by a number,
  guarded by a golden run (`tests/golden_run.py`): when the harness's outputs change, the
  golden test fails and says to bump it. A refactor that keeps the outputs keeps every
  stored result current.
* Method and corruption code is hashed by what it defines: each top-level definition's
  source as the syntax tree gives it back (`ast.unparse`: no comments, no docstrings, no
  formatting, no imports), keyed by its name, whichever file holds it. Editing a comment
  or moving a function to another file keeps stored results; any change to what the code
  does (a constant, an operator, a call, a name) makes them stale.
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

# Bump when the harness's outputs change (`tests/test_golden.py` says when): every stored
# result then becomes stale, as it must.
HARNESS_VERSION = 1

# The harness's code: the training loop, prediction, batching, encoders and fusion modules,
# the method base class. A method's hash leaves these files out (they are the harness's,
# identified by HARNESS_VERSION). Datasets carry their own version in the key; corruptions
# carry their backend's version and their code's hash in the data key.
HARNESS_FILES = ("rambench/train.py", "rambench/evaluate.py", "rambench/batch.py",
                 "rambench/device.py", "rambench/methods/base.py", "rambench/models/*.py",
                 "rambench/datasets/base.py", "rambench/test_inputs.py",
                 "corruptions/missing.py")


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
    # the test-time adaptation its test cells go through (`rambench.methods.adaptation`)
    adaptation: MethodId | None = None

    @property
    def label(self) -> str:
        label = self.name
        if self.params:
            label += "[" + ",".join(f"{k}={format_value(v)}" for k, v in self.params) + "]"
        return label if self.adaptation is None else f"{label}+{self.adaptation.label}"


def split_adaptation(text: str) -> tuple[str, str | None]:
    """'raml[norm=hard]+tent[lr=0.01]' -> ('raml[norm=hard]', 'tent[lr=0.01]'); a label
    without an adaptation -> (text, None). The '+' is the one outside brackets."""
    depth = 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "+" and depth == 0:
            return text[:i].strip(), text[i + 1:].strip()
    return text, None


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
        if key.strip() in values:
            raise UsageError(f"method {text!r}: {key.strip()!r} is given twice")
        values[key.strip()] = value.strip()
    return name.strip(), values


def harness_id() -> str:
    """The harness's identity in job and data keys."""
    return f"v{HARNESS_VERSION}"


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:] or [ast.Pass()]
    return body


def _defined_names(node: ast.stmt) -> str:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return ",".join(ast.unparse(t) for t in targets)
    return ""  # a bare statement (a call, an `if`): known by its source alone


def definitions(path: Path) -> list[tuple[str, str]]:
    """(name, source) of each top-level statement of `path` but imports and docstrings,
    the source as `ast.unparse` writes it (comments and layout do not count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            node.body = _without_docstring(node.body)
    return [(_defined_names(node), ast.unparse(node)) for node in tree.body
            if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass))]


@lru_cache(maxsize=512)
def _file_definitions(path: Path, mtime_ns: int) -> tuple[tuple[str, str], ...]:
    return tuple(definitions(path))  # mtime in the cache key: edits are seen


def code_hash(paths: list[Path]) -> str:
    """A hash of what the files define, independent of which file holds which definition."""
    items = sorted(item for path in set(paths)
                   for item in _file_definitions(path, path.stat().st_mtime_ns))
    digest = hashlib.sha256()
    for name, source in items:
        digest.update(f"{name}\0{source}\0".encode())
    return digest.hexdigest()[:16]


# The corruption library's code per kind of data and backend: a changed severity table or
# algorithm gives new data keys, so corrupted test sets made by other code are never reused.
CORRUPTION_FILES = {
    ("image", "reference"): ("corruptions/image.py", "corruptions/scales.py",
                             "corruptions/small_images.py", "corruptions/protocols.py",
                             "corruptions/_imagecorruptions_compat.py",
                             "corruptions/backends.py", "corruptions/spec.py"),
    ("audio", "reference"): ("corruptions/audio.py", "corruptions/backends.py",
                             "corruptions/spec.py"),
    ("av", "reference"): ("corruptions/av_events.py", "corruptions/backends.py",
                          "corruptions/spec.py"),
}
CORRUPTION_FILES[("image", "torch")] = (*CORRUPTION_FILES[("image", "reference")],
                                        "corruptions/torch_image.py", "corruptions/_torch_ops.py",
                                        "corruptions/reference_pool.py")
CORRUPTION_FILES[("audio", "torch")] = (*CORRUPTION_FILES[("audio", "reference")],
                                        "corruptions/torch_audio.py", "corruptions/_torch_ops.py",
                                        "corruptions/reference_pool.py")
CORRUPTION_FILES[("av", "torch")] = (*CORRUPTION_FILES[("av", "reference")],
                                     "corruptions/torch_av.py", "corruptions/_torch_ops.py")
# the protocols of AVRobustBench and READ: their module, the events' beds and noise reading,
# and the image corruptions their image sides call (both backends run the reference code)
for _protocol in ("avrobustbench", "read"):
    CORRUPTION_FILES[(_protocol, "reference")] = CORRUPTION_FILES[(_protocol, "torch")] = (
        *dict.fromkeys((f"corruptions/{_protocol}.py", "corruptions/avrobustbench.py")),
        "corruptions/av_events.py", *CORRUPTION_FILES[("image", "reference")])


# code hash -> the hash of earlier code that computes the same, bit for bit: a refactor of
# a method or of the corruptions that the golden run shows to keep every output adds its
# new hash here, and stored results stay current (a missing entry only makes them stale)
CODE_EQUIVALENTS: dict[str, str] = {
    # one spec type, registry and entry point for image, audio and audio-visual corruptions
    "2597a0963cf3ccb1": "7aa790f91cb50013",  # image, reference
    "b22fb607b207618b": "e0a8c765283636c4",  # image, torch
    "319693d512d20816": "84a8535d3a6eab94",  # audio, reference
    "0b6ad069a136ea78": "e688e918acaaa783",  # audio, torch
    "6655e36c3f4140c2": "eebbff669ed0c28d",  # av, reference
    "296b9559162691da": "ba171364b508bc10",  # av, torch
    # reconstruct filed under the imputation family (a label; its computation is unchanged)
    "effa8906dec2dcc4": "094c2240e9e0bce9",
    # corrupt() passes the babble pool's labels through (used by audio-visual events only)
    "9a02d4f61bb53ad3": "2597a0963cf3ccb1",  # image, reference
    "305bc210ed49a399": "b22fb607b207618b",  # image, torch
    "13b8b38b7aecb6a2": "319693d512d20816",  # audio, reference
    "33e0715d04dbc6e9": "0b6ad069a136ea78",  # audio, torch
}


def canonical(code: str) -> str:
    """The earliest hash of code that computes what `code` computes."""
    while code in CODE_EQUIVALENTS:
        code = CODE_EQUIVALENTS[code]
    return code


def corruption_code_hash(kind: str, backend: str) -> str:
    """A hash of the code that corrupts data of `kind` ("image", "audio", "av", or a
    protocol's events: "avrobustbench") on `backend`
    (`canonical`)."""
    files = CORRUPTION_FILES.get((kind, backend)) or CORRUPTION_FILES[(kind, "reference")]
    return canonical(code_hash([PACKAGE_ROOT / f for f in files]))


# Per-sample seeds of test inputs come from a cell's draw key (`rambench.plan.Cell.draw_key`):
# the data key's payload with these constants where the data key has code hashes, so that a
# change of code keeps the test data's random draws. They are the code hashes under which
# the first stored results drew theirs, so those results stay the results of this code.
DRAW_SALTS = {
    ("image", "reference"): "3061f6c2b368369f", ("image", "torch"): "5653663a71fadd5a",
    ("audio", "reference"): "2136a854a16b6d9e", ("audio", "torch"): "1cce6e447aff8459",
    ("av", "reference"): "e178f015d768e1d3", ("av", "torch"): "fe84d5bea1924044",
    ("avrobustbench", "reference"): "avrobustbench/1", ("avrobustbench", "torch"):
        "avrobustbench/1", ("read", "reference"): "read/1", ("read", "torch"): "read/1",
    "inputs": "6d21898a19087272",
}


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
    import. The harness (`Method` itself, encoders, training) is identified by `HARNESS_VERSION`."""
    from rambench.methods.adaptation import Adaptation
    from rambench.methods.base import Method

    roots = []
    for klass in cls.__mro__:
        if klass in (Method, Adaptation) or not issubclass(klass, (Method, Adaptation)):
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
    """Hash of the method's files (`method_files`) and its optional `version` attribute
    (`canonical`). A class with no source file (defined in a notebook cell) is hashed by its
    source text where inspect can find it, else by its qualified name only."""
    files = method_files(cls)
    version = getattr(cls, "version", None)
    digest = hashlib.sha256(f"{code_hash(files) if files else ''}\0{version}".encode())
    if not files:
        try:
            digest.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    return canonical(digest.hexdigest()[:16])


def non_default_params(params: Any) -> tuple[tuple[str, Any], ...]:
    """The fields of a Params dataclass instance that differ from the class defaults."""
    import dataclasses

    defaults = type(params)()
    return tuple(sorted(
        (f.name, getattr(params, f.name)) for f in dataclasses.fields(params)
        if getattr(params, f.name) != getattr(defaults, f.name)))

