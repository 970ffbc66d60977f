"""Result bundles: a study's current records packed into a folder that is committed to git,
read back as the study it came from, and re-run to check it.

`rambench bundle --study S --to results/NAME` writes four files, and nothing that can drift
(no time, no path of the machine that packed it):

* ``study.yaml``: the study's settings (its study file, without the comment line that names
  where it was run): what `rambench reproduce` runs again;
* ``records.jsonl.xz``: the current records, one JSON line each as the store holds them
  (`Record.to_json` with its checksum; keys sorted, no spaces), in key order, xz-compressed
  (smaller than gzip by a fifth on records, whose per-sample arrays are already
  zlib-packed; the xz format has no time stamp). Stale records are left out;
* ``manifest.json``: the bundle format, the study's name, each record's key, coordinates
  and the sha256 of its line, the sha256 of study.yaml, counts, the rambench version and
  git commit that packed it, and the records' numerics environments (`Record.numerics`)
  and code versions;
* ``.gitignore``: tracks these four files and nothing else written there later (reports,
  figures and exports of `--from`).

Packing is deterministic: the same records and the same packing code give byte-identical
files. `read` verifies a bundle before anything is read from it (a record whose line does
not match its sha256 in the manifest, a record missing or added, an edited study.yaml: a
UsageError naming it); `rambench.results.ResultSet.from_bundle` makes the `ResultSet` of
its records, so every table and figure comes from the bundle as from the study folder.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rambench._fs import atomic_write_bytes
from rambench._version import __version__
from rambench.errors import UsageError
from rambench.schema import Record, numerics_of
from rambench.store import Store, check_writable, record_checksum

if TYPE_CHECKING:
    pass

FORMAT = 1
MANIFEST = "manifest.json"
STUDY_FILE = "study.yaml"
RECORDS_FILE = "records.jsonl.xz"
GITIGNORE = ".gitignore"
FILES = (GITIGNORE, MANIFEST, RECORDS_FILE, STUDY_FILE)
GITIGNORE_TEXT = (
    "# a rambench result bundle (rambench bundle): these files are tracked; what commands\n"
    "# reading it with --from write here (plots, reports, exports) is not\n"
    "*\n" + "".join(f"!{name}\n" for name in FILES))
XZ_PRESET = 9


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _dump_manifest(manifest: dict[str, Any]) -> bytes:
    """The manifest as JSON, keys sorted, its records last and one per line (a re-packed
    record is one changed line in a diff)."""
    head = json.dumps({k: v for k, v in manifest.items() if k != "records"}, indent=1,
                      sort_keys=True)
    rows = ",\n".join("  " + json.dumps(e, sort_keys=True) for e in manifest["records"])
    return (head[:-2] + ',\n "records": [\n' + rows + "\n ]\n}\n").encode()


@dataclass(frozen=True)
class Contents:
    """What a bundle folder holds, verified: its manifest, study file and records."""

    path: Path
    manifest: dict[str, Any]
    study_text: str
    records: list[Record]

    @property
    def study(self) -> str:
        return str(self.manifest["study"])

    @property
    def settings(self) -> dict[str, Any]:
        """The study's reference and compared methods (`reference:` and `against:`)."""
        data = yaml.safe_load(self.study_text) or {}
        return {k: data[k] for k in ("reference", "against") if data.get(k)}


# ---------------------------------------------------------------------------------- pack


def _study_text(store: Store) -> str:
    path = store.root / STUDY_FILE
    if not path.is_file():
        raise UsageError(f"study {store.study!r} has no {STUDY_FILE} under {store.root} (made by "
                         "an earlier rambench, or through the API with a class object); "
                         f"`rambench run --study {store.study} --out {store.root.parent}` "
                         "with its methods named writes it")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return (f"# the study of a rambench bundle of study {store.study!r}: `rambench reproduce "
            "BUNDLE` runs it again\n" + yaml.safe_dump(data, sort_keys=False))


def _environments(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct numerics environments of the records (`rambench.schema.numerics_of`),
    each with its number of records."""
    found = Counter(numerics_of(r.get("provenance") or {}) for r in records)
    return [{"numerics": k, "records": n} for k, n in sorted(found.items())]


def _check_target(to: Path, store: Store) -> None:
    if to.resolve() == store.root.resolve() or store.root.resolve() in to.resolve().parents:
        raise UsageError(f"--to {to}: inside the study folder {store.root}; a bundle goes "
                         "to a folder of its own, e.g. results/NAME")
    if to.exists() and not to.is_dir():
        raise UsageError(f"--to {to}: a file; a bundle is a folder")
    if to.is_dir() and any(to.iterdir()) and not (to / MANIFEST).is_file():
        raise UsageError(f"--to {to}: a folder that holds files and no bundle "
                         f"({MANIFEST}); choose an empty or new folder")


PER_SAMPLE = ("predictions", "correctness")


def _correctness_only(record: dict[str, Any]) -> dict[str, Any]:
    """`record` without its per-sample class probabilities (`predictions`), re-checksummed:
    each sample's correctness stays (accuracy, the paired bootstrap and every table of
    accuracy); confidence, calibration, NLL and Brier do not."""
    out = {k: v for k, v in record.items() if k != "checksum"}
    out["predictions"] = None
    out["checksum"] = record_checksum(out)
    return out


def pack(store: Store, to: str | Path, commit: str | None,
         per_sample: str = "predictions") -> dict[str, Any]:
    """Pack `store`'s current records and study file into the folder `to` (created, or a
    bundle there re-packed); `commit`: the git commit of the packing code
    (`rambench.provenance.git_commit()`). `per_sample`: "predictions" keeps every record as
    stored; "correctness" drops the per-sample class probabilities (a bundle a third the
    size or less, whose tables of accuracy are the same). Returns the manifest. UsageError
    for a study without results, with damaged records or without a study.yaml."""
    if per_sample not in PER_SAMPLE:
        raise UsageError(f"per_sample {per_sample!r}: choose from {', '.join(PER_SAMPLE)}")
    to = Path(to)
    _check_target(to, store)
    if not store.records_dir.is_dir():
        raise UsageError(f"no study {store.study!r} under {store.root.parent}/")
    index = store.index()
    if store.invalid:
        path, why = store.invalid[0]
        raise UsageError(f"study {store.study!r} has {len(store.invalid)} damaged record(s), "
                         f"e.g. {path} ({why}); `rambench run --study {store.study} --out "
                         f"{store.root.parent}` recomputes them before it is bundled")
    current = sorted(index.current.values(), key=lambda r: r.key)
    if not current:
        raise UsageError(f"study {store.study!r} has no results yet under {store.root}")
    study_text = _study_text(store)
    raw = [json.loads(store.record_path(r.key).read_text()) for r in current]
    if per_sample == "correctness":
        raw = [_correctness_only(d) for d in raw]
    lines = [_line(d) for d in raw]
    manifest = {
        "format": FORMAT,
        "study": store.study,
        "per_sample": per_sample,
        "packed_by": {"rambench": __version__, "git_commit": commit},
        "study_sha256": _sha256(study_text.encode()),
        "counts": {"records": len(current), "stale_left_out": len(index.stale),
                   "methods": len({r.method.label for r in current}),
                   "seeds": len({r.seed for r in current}),
                   "conditions": len({r.condition.label for r in current})},
        "datasets": sorted({r.dataset_version for r in current}),
        "methods": sorted({r.method.label for r in current}),
        "seeds": sorted({r.seed for r in current}),
        "environments": _environments(raw),
        "code_versions": dict(sorted(Counter(str((d.get("provenance") or {}).get(
            "code_version")) for d in raw).items())),
        "records": [{"key": r.key, "method": r.method.label, "seed": r.seed,
                     "condition": r.condition.label, "sha256": _sha256(line)}
                    for r, line in zip(current, lines, strict=True)],
    }
    data = b"".join(line + b"\n" for line in lines)
    check_writable(to, "the bundle", "--to FOLDER")
    atomic_write_bytes(to / RECORDS_FILE, lzma.compress(data, format=lzma.FORMAT_XZ,
                                                        check=lzma.CHECK_CRC64,
                                                        preset=XZ_PRESET))
    atomic_write_bytes(to / STUDY_FILE, study_text.encode())
    atomic_write_bytes(to / GITIGNORE, GITIGNORE_TEXT.encode())
    atomic_write_bytes(to / MANIFEST, _dump_manifest(manifest))  # last: then it is whole
    return manifest


# --------------------------------------------------------------------------- read, verify


def bundles_under(folder: Path) -> list[str]:
    return sorted(str(p.parent) for p in folder.glob(f"*/{MANIFEST}")) \
        if folder.is_dir() else []


def read(path: str | Path) -> Contents:
    """The bundle at `path`, verified (see `verify`); UsageError (one line, naming the
    bundle and the record or file) if it is not a sound bundle."""
    return _read(Path(path), first_only=True)[0]  # type: ignore[return-value]


def verify(path: str | Path) -> list[str]:
    """Every problem of the bundle at `path` (empty when it is sound): files missing or
    unreadable, a study.yaml or a record that does not match its sha256 in the manifest,
    records missing from it or added to it."""
    return _read(Path(path), first_only=False)[1]


def _read(path: Path, first_only: bool) -> tuple[Contents | None, list[str]]:
    problems: list[str] = []

    def problem(text: str) -> None:
        if first_only:
            raise UsageError(f"bundle {path}: {text}")
        problems.append(text)

    if not (path / MANIFEST).is_file():
        others = bundles_under(path.parent)
        raise UsageError(f"{path}: not a rambench bundle (no {MANIFEST}); "
                         + (f"bundles there: {', '.join(others)}" if others else
                            "`rambench bundle --study S --to FOLDER` makes one"))
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        version = manifest["format"]
        entries = {e["key"]: e for e in manifest["records"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"bundle {path}: unreadable {MANIFEST} ({err})") from None
    if not isinstance(version, int) or version > FORMAT:
        raise UsageError(f"bundle {path}: format {version!r} is newer than this rambench reads "
                         f"({FORMAT}); upgrade rambench")
    try:
        study_text = (path / STUDY_FILE).read_text(encoding="utf-8")
        data = lzma.decompress((path / RECORDS_FILE).read_bytes())
    except (OSError, UnicodeDecodeError, lzma.LZMAError) as err:
        raise UsageError(f"bundle {path}: unreadable {STUDY_FILE} or {RECORDS_FILE} "
                         f"({err})") from None
    if _sha256(study_text.encode()) != manifest.get("study_sha256"):
        problem(f"{STUDY_FILE} does not match its sha256 in {MANIFEST} (edited or damaged)")
    records, seen = [], set()
    for number, line in enumerate(data.splitlines(), 1):
        try:
            raw = json.loads(line)
            key = raw["key"]
        except (ValueError, KeyError, TypeError):
            problem(f"line {number} of {RECORDS_FILE} is not a record")
            continue
        entry = entries.get(key)
        if entry is None:
            problem(f"record {key} is not in {MANIFEST} (added after packing)")
            continue
        seen.add(key)
        if _sha256(line) != entry.get("sha256"):
            problem(f"record {key} ({entry.get('method')}, seed {entry.get('seed')}, "
                    f"{entry.get('condition')}) does not match its sha256 in {MANIFEST} "
                    "(edited or damaged)")
            continue
        try:
            records.append(Record.from_json(raw))
        except (ValueError, KeyError, TypeError) as err:
            problem(f"record {key} cannot be read ({err})")
    for key in entries.keys() - seen:
        entry = entries[key]
        problem(f"record {key} ({entry.get('method')}, seed {entry.get('seed')}, "
                f"{entry.get('condition')}) of {MANIFEST} is missing from {RECORDS_FILE}")
    if problems:
        return None, problems
    return Contents(path, manifest, study_text, sorted(records, key=lambda r: r.key)), []
