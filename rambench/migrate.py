"""Stored results of an earlier way of keying carried over to this one, when their code is
the same.

Keys of identity 1 hashed the harness's source files with their paths, and method and
corruption code file by file (`ast.dump`), so a rename or a move made every stored result
stale. Identity 2 (`rambench.identity`) keys the harness by `HARNESS_VERSION` and code by
its definitions. Harness version 1 is the harness of identity 1 as it was last keyed: the
golden run (`tests/golden_run.py`) was recorded on that code and guards it since. So a
stored record of identity 1 is the result its planned cell would compute now exactly when
the cell's identity-1 key, worked out from the identity-1 values below, is the record's
key; such a record is re-keyed (`Plan.carried`), never recomputed, never dropped.

The identity-1 values are those of rambench 0.1.0 at its last identity-1 code (Python
3.11's `ast.dump`), each beside the identity-2 value of the same code.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rambench.plan import Cell
    from rambench.schema import Record

# identity 2 -> identity 1, for the code both were computed from
HARNESS = {"v1": "41022c793dd12897"}
TEST_INPUTS = {"v1": "6d21898a19087272"}  # identity 1 hashed the test-input code apart
CORRUPTION_CODE = {
    "7aa790f91cb50013": "3061f6c2b368369f",  # image, reference backend
    "84a8535d3a6eab94": "2136a854a16b6d9e",  # audio, reference backend
    "eebbff669ed0c28d": "e178f015d768e1d3",  # audio-visual events, reference backend
    "e0a8c765283636c4": "5653663a71fadd5a",  # image, torch backend
    "e688e918acaaa783": "1cce6e447aff8459",  # audio, torch backend
    "ba171364b508bc10": "fe84d5bea1924044",  # audio-visual events, torch backend
}
METHOD_CODE = {
    "b8ad53fd317a14d2": "e7e9fed2ae007984",  # audio_only, visual_only
    "00ac8e8ec843c78a": "6628690e94853005",  # augmix
    "4799a766722fdcb9": "6207a6af9d97861b",  # consistency
    "320981c981f1af3c": "1327276cadb3c28e",  # corrupt_aug
    "18db59e5fa8f08c6": "db8146aadb541e7f",  # late_fusion
    "4c4648b07dd02a7a": "a2e6c6d7877d2272",  # moddrop
    "1d8263140e9de21a": "9606bdc62c29982b",  # ogm_ge
    "51bf6594d6e8e6f5": "483d03662cc1ce5d",  # pdf
    "fd212326b6d7b60b": "7172a7e8b16d972e",  # qmf
    "b40ceac0c63c6442": "ac39b0316b5ff8fc",  # raml
    "094c2240e9e0bce9": "f8322a2a1ab8d444",  # reconstruct
    "b49ec7f9c03f3533": "633809dde7503f4a",  # tmc
}


def _legacy_file_hash(path: Path) -> str:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                              ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    dump = ast.dump(tree, annotate_fields=False, include_attributes=False)
    return hashlib.sha256(dump.encode()).hexdigest()


def legacy_plugin_code(cls: type, stored: str) -> str | None:
    """`stored` if it is a plug-in method's identity-1 code hash of its files as they are
    now (plug-ins live outside rambench: moving rambench's code does not move them), else
    None. Identity 1 hashed the files in the order of their absolute paths then, which a
    later install need not keep, so each order is tried."""
    from itertools import islice, permutations

    from rambench.identity import PACKAGE_ROOT, method_files

    files = sorted(set(method_files(cls)))
    if not files:
        return None
    parts = []
    for path in files:
        rel = path.relative_to(PACKAGE_ROOT) if path.is_relative_to(PACKAGE_ROOT) else path.name
        parts.append(f"{rel}\0{_legacy_file_hash(path)}\0".encode())
    version = getattr(cls, "version", None)
    for order in islice(permutations(parts), 120):
        digest = hashlib.sha256(b"".join(order)).hexdigest()[:16]
        if hashlib.sha256(f"{digest}\0{version}".encode()).hexdigest()[:16] == stored:
            return stored
    return None


def same_method_code(stored: str | None, method) -> bool:
    """Whether a stored record's method code (either identity) is the code of `method` (a
    `rambench.config.MethodSpec`)."""
    code = method.id.code
    if stored in (code, METHOD_CODE.get(code)):
        return True
    return ":" in method.id.name and legacy_plugin_code(method.cls, stored or "") is not None


def same_harness(stored: str | None, harness: str) -> bool:
    """Whether a stored record's harness (either identity) is `harness`."""
    return stored in (harness, HARNESS.get(harness))


def same_backend(stored: str, backend: str) -> bool:
    """Whether a stored record's corruption backend text (either identity) is `backend`."""
    head, sep, new = backend.rpartition("; code ")
    return stored == backend or (bool(sep) and new in CORRUPTION_CODE and
                                 stored == f"{head}; code {CORRUPTION_CODE[new]}")


def legacy_cell(cell: Cell, stored: Record) -> Cell | None:
    """`cell` as identity 1 keyed it (its `.key`, its `.job.key`), or None where its code is
    not the code of identity 1 (then `stored`, the record at its coordinates, is not its
    result)."""
    job = cell.job
    harness = HARNESS.get(job.harness)
    code = METHOD_CODE.get(job.method.id.code)
    if code is None and ":" in job.method.id.name:
        code = legacy_plugin_code(job.method.cls, stored.method.code or "")
    inputs = TEST_INPUTS.get(cell.inputs_code)
    backends = {}
    for name, text in cell.backends.items():
        head, sep, new = text.rpartition("; code ")
        if not sep or new not in CORRUPTION_CODE:
            return None
        backends[name] = f"{head}; code {CORRUPTION_CODE[new]}"
    if harness is None or code is None or inputs is None:
        return None
    method = dataclasses.replace(job.method, id=dataclasses.replace(job.method.id, code=code))
    legacy_job = dataclasses.replace(job, method=method, harness=harness)
    return dataclasses.replace(cell, job=legacy_job, backends=backends, inputs_code=inputs)
